"""System metrics from a run's stats records: as wandb writes them, and with odd values."""

import numpy as np
import pytest

from lib import runs
from lib.runs import system_metrics
from tests.unit.runs.test_offline import write_log


@pytest.mark.slow
def test_stats_written_by_wandb(tmp_path):
    import time

    import wandb
    run = wandb.init(mode="offline", dir=str(tmp_path), project="s",
                     settings=wandb.Settings(silent=True, console="off",
                                             x_stats_sampling_interval=0.2))
    for i in range(8):
        run.log({"a": i})
        time.sleep(0.2)
    run.finish()
    info = runs.load_offline(tmp_path)[0][0]
    m = system_metrics.system_metrics(info)
    assert len(m.frame) >= 2 and m.frame["seconds"].iloc[0] == 0
    assert "cpu" in m.group("CPU") and "memory_percent" in m.group("Memory")
    assert m.frame["seconds"].is_monotonic_increasing
    charts = dict(m.charts())
    assert "memory_percent" in charts["Memory (%)"] and all(
        k.endswith("MB") for k in charts.get("Memory (MB)", []))


def test_nan_text_and_no_stats(tmp_path):
    from wandb.proto import wandb_internal_pb2 as pb
    records = [pb.Record(run=pb.RunRecord(run_id="x1", project="p"))]
    for k, (cpu, gpu) in enumerate([("12.5", "NaN"), ("Infinity", "30"), ('"busy"', "31"),
                                    ("14", "32")]):
        stats = pb.StatsRecord()
        stats.timestamp.seconds = 1000 + 15 * k
        stats.item.add(key="cpu", value_json=cpu)
        stats.item.add(key="gpu.0.gpu", value_json=gpu)
        records.append(pb.Record(stats=stats))
    log = tmp_path / "wandb" / "offline-run-x" / "run-x1.wandb"
    write_log(log, records)
    info = runs.RunInfo(id="x1", name="x", project="p", path=str(log))
    m = system_metrics.system_metrics(info)
    assert m.left_out == 3 and m.frame["seconds"].tolist() == [0, 15, 30, 45]
    assert np.isfinite(m.frame[["cpu", "gpu.0.gpu"]].to_numpy()[~np.isnan(
        m.frame[["cpu", "gpu.0.gpu"]].to_numpy())]).all()
    assert m.group("GPU") == ["gpu.0.gpu"]
    write_log(log, records[:1])
    assert "no system metrics" in system_metrics.system_metrics(info).note
    cloud = runs.RunInfo(id="c", name="c", project="p", source="cloud", path="e/p/c")
    assert "local .wandb log" in system_metrics.system_metrics(cloud).note
