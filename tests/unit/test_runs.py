"""W&B runs: the offline reader against `wandb leet`, broken logs, diff, smoothing, downsampling,
export CLI, and the cloud path with a fake API."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib import runs
from lib.core.errors import CloudError, InputError, RunReadError
from lib.runs import __main__ as runs_cli
from lib.runs import cloud, offline
from tests.helpers import leet_history, leet_summary


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))


def test_reader_matches_wandb_leet(project):
    infos, problems = runs.load_offline(project)
    assert not problems and sorted(r.name for r in infos) == ["alpha", "beta", "gamma"]
    for info in infos:
        ref = leet_summary(info.path)
        assert info.id == ref["run_id"] and info.project == ref["project"] == "proj"
        assert info.config == {k: v for k, v in ref["config"].items() if k != "_wandb"}
        assert info.summary == {k: v for k, v in ref["summary"].items() if k != "_wandb"}
        assert info.state == ref["state"] == "finished"
        assert info.tags == ref["tags"] and info.notes == ref["notes"]
        assert info.created == ref["start_time"] and info.runtime == ref["summary"]["_runtime"]


def test_full_history_matches_logged_values(project):
    infos, _ = runs.load_offline(project)
    beta = next(r for r in infos if r.name == "beta")
    hist = runs.read_history(Path(beta.path))
    assert len(hist) == 50 and hist["_step"].tolist() == list(range(50))
    assert hist["train/loss"].tolist() == pytest.approx([1.0 / (s + 2) for s in range(50)])
    assert sorted(runs.numeric_metrics(hist)) == ["lr_now", "train/loss", "val/acc"]


def test_cut_off_log_reads_up_to_last_whole_record(project, tmp_path):
    infos, _ = runs.load_offline(project)
    src = Path(infos[0].path)
    data = src.read_bytes()
    cut = tmp_path / "wandb" / "offline-run-cut-abc123"
    cut.mkdir(parents=True)
    (cut / "run-abc123.wandb").write_bytes(data[: int(len(data) * 0.6)])
    info = runs.read_run_info(cut / "run-abc123.wandb")
    assert info.state.startswith("running")
    hist = runs.read_history(cut / "run-abc123.wandb")
    assert 0 < len(hist) < 50
    assert hist["_step"].tolist() == list(range(len(hist)))


def test_corrupt_log_is_reported_and_others_still_load(project, tmp_path):
    import shutil
    root = tmp_path / "mixed"
    shutil.copytree(project, root)
    bad = root / "wandb" / "offline-run-bad-zzz"
    bad.mkdir()
    (bad / "run-zzz.wandb").write_bytes(b"garbage, not a transaction log")
    infos, problems = runs.load_offline(root)
    assert len(infos) == 3 and len(problems) == 1
    assert "not a readable W&B run log" in problems[0].message


def test_folder_without_runs(tmp_path):
    assert runs.load_offline(tmp_path) == ([], [])
    with pytest.raises(RunReadError, match="is not a folder"):
        runs.load_offline(tmp_path / "missing")


def test_second_load_comes_from_disk_cache(project, monkeypatch):
    runs.load_offline(project)
    monkeypatch.setattr(offline, "scan_log", lambda *a, **k: pytest.fail("not cached"))
    infos, problems = runs.load_offline(project)
    assert len(infos) == 3 and not problems



def test_a_cache_file_torn_by_a_kill_is_read_again_from_the_log(project, tmp_path, monkeypatch):
    """A process killed while writing its cache leaves half a file: the next read rebuilds it
    from the log instead of failing, and writes it whole."""
    monkeypatch.setenv("LENS_CACHE", str(tmp_path / "cache"))
    path = runs.find_run_files(project)[0]
    info, history = runs.read_run_info(path), runs.read_history(path)
    for kind in ("info.json", "history.parquet"):
        cache = offline._cache_key(path, kind)
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    assert runs.read_run_info(path) == info
    pd.testing.assert_frame_equal(runs.read_history(path), history)
    monkeypatch.setattr(offline, "scan_log", lambda *a, **k: pytest.fail("not cached"))
    assert runs.read_run_info(path) == info                     # rewritten whole
    pd.testing.assert_frame_equal(runs.read_history(path), history)
    assert not list(offline._cache_key(path, "info.json").parent.glob(".*.tmp"))


def test_config_diff_flattens_and_hides_equal_keys(project):
    infos = sorted(runs.load_offline(project)[0], key=lambda r: r.name)
    diff = runs.config_diff(infos)
    assert list(diff.index) == ["lr", "model.arch", "model.depth"]
    assert diff.loc["model.arch"].tolist() == ["b0", "b0", "b3"]
    two = runs.config_diff(infos[1:])
    assert list(two.index) == ["model.arch"]
    # all keys: the differing ones first
    assert list(runs.config_diff(infos[1:], all_keys=True).index) == ["model.arch", "lr",
                                                                      "model.depth"]


def test_metric_patterns():
    cols = ["train/loss", "val/acc", "val/loss", "lr_now", "_step"]
    assert runs.match_metrics(cols, "val/*") == ["val/acc", "val/loss"]
    assert runs.match_metrics(cols, "val/acc, train/*") == ["train/loss", "val/acc"]
    assert runs.match_metrics(cols, "nothing*") == []


def test_ema_matches_debiased_wandb_formula():
    values = pd.Series([1.0, 3.0, 2.0, 5.0])
    w = 0.6
    expected, acc, norm = [], 0.0, 0.0
    for v in values:
        acc = acc * w + (1 - w) * v
        norm = norm * w + (1 - w)
        expected.append(acc / norm)
    assert runs.smooth_ema(values, w).tolist() == pytest.approx(expected)
    assert runs.smooth_ema(values, 0).tolist() == values.tolist()


def test_downsampling_keeps_extremes():
    x = np.arange(100_000)
    y = np.sin(x / 1000.0)
    y[31_337] = 50.0   # a spike
    y[77_777] = -50.0  # a dip
    xs, ys = runs.downsample_minmax(x, y, max_points=1000)
    assert len(xs) <= 1000 and xs[0] == 0 and xs[-1] == 99_999
    assert 31_337 in xs and 77_777 in xs and ys.max() == 50.0 and ys.min() == -50.0
    assert np.all(np.diff(xs) > 0)


def test_group_band_and_stats():
    h1 = pd.DataFrame({"_step": [0, 1, 2], "m": [1.0, 2.0, 3.0]})
    h2 = pd.DataFrame({"_step": [0, 1, 2], "m": [3.0, 4.0, 5.0]})
    band = runs.group_band([h1, h2], "m")
    assert band["mean"].tolist() == [2.0, 3.0, 4.0] and band["max"].tolist() == [3.0, 4.0, 5.0]
    stats = runs.metric_stats({"a": h1, "b": h2}, "m")
    assert stats[["min", "max", "last"]].values.tolist() == [[1, 3, 3], [3, 5, 5]]


def test_group_band_keeps_mean_and_envelope_at_sweep_scale():
    rng = np.random.default_rng(0)
    steps = np.arange(100_000)
    hs = [pd.DataFrame({"_step": steps, "m": rng.normal(i, 1, len(steps))}) for i in range(20)]
    hs[3].loc[77_777, "m"] = 1e6                              # one spike in one run
    band = runs.group_band(hs, "m", max_points=2000)
    assert len(band) <= 2000 and (band["runs"] == 20).all()
    everything = np.concatenate([h["m"].to_numpy() for h in hs])
    assert band["max"].max() == 1e6 and band["min"].min() == everything.min()
    assert np.average(band["mean"], weights=np.full(len(band), 1)) == \
        pytest.approx(everything.mean(), rel=1e-3)
    assert (band["min"] <= band["mean"]).all() and (band["mean"] <= band["max"]).all()
    # small: exact, per step (pandas' groupby as the reference)
    small = runs.group_band([h.iloc[:50] for h in hs], "m")
    ref = pd.concat([h.iloc[:50] for h in hs]).groupby("_step")["m"]
    assert np.allclose(small["mean"], ref.mean()) and np.allclose(small["min"], ref.min())


def test_export_cli_json_and_csv(project, capsys, tmp_path):
    assert runs_cli.main(["export", str(project), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    alpha = next(r for r in rows if r["name"] == "alpha")
    assert alpha["config.model.depth"] == 2 and alpha["summary.best"] == 0.5
    assert set(alpha) >= {"id", "name", "project", "state", "tags", "created", "runtime"}
    out = tmp_path / "runs.csv"
    assert runs_cli.main(["export", str(project), "--format", "csv", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 3 and "config.lr" in frame.columns


class FakeRun:
    def __init__(self, i):
        self.id, self.name, self.state = f"id{i}", f"r{i}", "finished"
        self.tags, self.notes = [], ""
        self.created_at = "2026-01-01T00:00:00"
        self.config = {"lr": 0.1 * i, "_private": 1}
        self.summary = {"acc": 0.5 + i / 10, "_runtime": 10.0 * i, "_wandb": {"x": 1}}


def http_error(status: int):
    """What the W&B client raises for an HTTP status: requests' HTTPError in a CommError."""
    import requests
    import wandb.errors
    response = requests.Response()
    response.status_code = status
    return wandb.errors.CommError(f"HTTP {status}", requests.HTTPError(response=response))


class FakeApi:
    def __init__(self, fail_times=0, error=None):
        self.calls, self.fail_times = 0, fail_times
        self.error = error if error is not None else http_error(429)

    def runs(self, path, filters=None, per_page=100):
        self.calls += 1
        if self.calls <= self.fail_times:
            raise self.error
        return [FakeRun(i) for i in range(3)]


def test_cloud_runs_with_backoff(monkeypatch):
    slept = []
    monkeypatch.setattr(cloud.time, "sleep", slept.append)
    api = FakeApi(fail_times=2)
    progress = []
    infos = runs.load_cloud("team", "proj", api=api,
                            progress=lambda p: progress.append((p.done, p.total)))
    assert [r.name for r in infos] == ["r0", "r1", "r2"] and api.calls == 3
    assert slept == [1.0, 2.0] and progress[-1] == (3, 3)
    assert infos[2].config == {"lr": pytest.approx(0.2)} and infos[2].runtime == 20.0
    assert infos[0].source == "cloud" and infos[0].path == "team/proj/id0"


def _errors():
    import requests
    import wandb.errors
    return {
        "401": (http_error(401), "refused the API key"),
        "403": (http_error(403), "refused the API key"),
        "auth": (wandb.errors.AuthenticationError("bad key"), "refused the API key"),
        "404": (http_error(404), "has no project 'team/proj'"),
        "missing project": (ValueError("Could not find project proj"),
                            "has no project 'team/proj'"),
        "no network": (wandb.errors.CommError("down", requests.ConnectionError("resolve")),
                       "no network"),
        "still busy": (http_error(503), "busy or rate-limiting"),
        "other": (KeyError("x"), r"W&B request failed \(KeyError\)"),
    }


@pytest.mark.parametrize("case", list(_errors()))
def test_cloud_errors_are_sorted_by_type_and_status(case, monkeypatch):
    """Classified by the client's exception types and status codes (their texts here say
    nothing), raised as one `CloudError`; only busy answers are retried."""
    error, message = _errors()[case]
    monkeypatch.setattr(cloud.time, "sleep", lambda s: None)
    api = FakeApi(fail_times=9, error=error)
    with pytest.raises(CloudError, match=message):
        runs.load_cloud("team", "proj", api=api)
    assert api.calls == (5 if case == "still busy" else 1)


@pytest.mark.parametrize("text,expect", [
    ("", None), ('{"state": "finished"}', {"state": "finished"}),
])
def test_run_filters(text, expect):
    assert runs.parse_filters(text) == expect


@pytest.mark.parametrize("text", ["[1]", "{bad", '"x"'])
def test_run_filters_that_are_not_an_object(text):
    with pytest.raises(InputError, match="Filters must be a JSON object"):
        runs.parse_filters(text)


def test_bundled_sample_runs_are_readable():
    infos, problems = runs.load_offline(runs.SAMPLE_RUNS, source="sample")
    assert not problems and len(infos) == 4
    assert all("sample" in r.tags and r.summary["best/val_acc"] > 0.5 for r in infos)


def test_history_equals_wandb_leet(project, tmp_path):
    infos, _ = runs.load_offline(project)
    for info in infos:
        path = Path(info.path)
        fast = runs.read_history(path)
        ref = leet_history(path)
        pd.testing.assert_frame_equal(fast[sorted(fast.columns)], ref[sorted(ref.columns)])
    # and on a log cut off mid-record
    data = Path(infos[0].path).read_bytes()
    cut = tmp_path / "run-cut.wandb"
    cut.write_bytes(data[: len(data) // 2 + 3])
    fast, ref = runs.history_frame(runs.scan_log(cut)), leet_history(cut)
    assert len(fast) == len(ref) > 0
    pd.testing.assert_frame_equal(fast[sorted(fast.columns)], ref[sorted(ref.columns)])


@pytest.fixture(scope="module")
def odd_runs(tmp_path_factory):
    """Logs that stress a summary reader: a key logged once early, nested values, a late
    config update, a deleted summary key, a failed exit; then cut-off and corrupted copies."""
    import wandb
    root = tmp_path_factory.mktemp("odd")
    run = wandb.init(mode="offline", dir=str(root), project="odd", name="failed",
                     config={"lr": 0.1, "nest": {"a": 1, "b": [1, 2]}}, tags=["t"],
                     settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
    for step in range(1500):
        row = {"loss": 1 / (step + 1), "deep": {"x": step}}
        if step == 5:
            row["best"] = 3.5
        run.log(row, step=step)
    run.config.update({"late": 5})
    run.summary.update({"nestsum": {"q": 1}})
    del run.summary["loss"]
    run.finish(exit_code=3)
    log = next(root.glob("wandb/offline-run-*/*.wandb"))
    data = log.read_bytes()
    logs = [log]
    for frac in (0.05, 0.3, 0.5, 0.77, 0.999):
        cut = root / f"cut{frac}" / "run-cut.wandb"
        cut.parent.mkdir()
        cut.write_bytes(data[:int(len(data) * frac)])
        logs.append(cut)
    return logs


def test_summary_reader_equals_leet_on_failed_and_cut_off_logs(odd_runs):
    for log in odd_runs:
        ref = leet_summary(log)
        info = runs.read_run_info(log)
        assert info.summary == ref["summary"], log
        assert info.config == ref["config"] and info.state == ref["state"], log
        assert info.created == ref["start_time"] and info.tags == ref["tags"] == ["t"]
        hist, ref_hist = runs.read_history(log), leet_history(log)
        assert len(hist) == len(ref_hist), log
        if len(hist):
            pd.testing.assert_frame_equal(hist[sorted(hist.columns)],
                                          ref_hist[sorted(ref_hist.columns)])
    first = runs.read_run_info(odd_runs[0])
    assert first.state == "failed" and first.summary["best"] == 3.5
    assert first.config["late"] == 5 and first.summary["nestsum"] == {"q": 1}
    assert runs.read_run_info(odd_runs[1]).state == "running"


def corrupt_copy(log, tmp_path, kind: int, which: int):
    """A copy of `log` with one byte flipped inside the `which`-th record of `kind`."""
    scanned = runs.scan_log(log)
    i = int(np.flatnonzero(scanned.kind == kind)[which])
    data = bytearray(log.read_bytes())
    data[int(scanned.start[i]) + int(scanned.length[i]) // 2] ^= 0xFF
    bad = tmp_path / f"wandb-{kind}-{which}" / "offline-run-x-bad" / "run-bad.wandb"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(bytes(data))
    return bad


def test_corrupt_records_are_skipped_counted_and_agree_with_leet(odd_runs, tmp_path):
    from lib.runs import scanner as runlog
    full = runs.read_history(odd_runs[0])
    # a corrupt history record: it and the rest of its 32 KiB block are lost, as leet does
    bad = corrupt_copy(odd_runs[0], tmp_path, runlog.HISTORY, 700)
    hist = runs.read_history(bad)
    ref = leet_history(bad)
    assert hist.attrs["dropped"] == 1 and 1400 < len(hist) == len(ref) < len(full) == 1500
    pd.testing.assert_frame_equal(hist[sorted(hist.columns)], ref[sorted(ref.columns)])
    assert runs.read_run_info(bad).summary == leet_summary(bad)["summary"]
    # a corrupt summary record that decides the summary: found, dropped, the earlier one used
    bad = corrupt_copy(odd_runs[0], tmp_path, runlog.SUMMARY, -2)
    info = runs.read_run_info(bad)
    assert info.dropped >= 1 and info.summary == leet_summary(bad)["summary"]


def sweep(n=60, seed=0):
    """A synthetic sweep: val/acc depends on lr (strongly) and on the optimizer, not on seed."""
    rng = np.random.default_rng(seed)
    infos = []
    for i in range(n):
        lr = float(10 ** rng.uniform(-4, -1))
        opt = ["adam", "sgd", "lion"][i % 3]
        acc = 0.9 - 0.1 * abs(np.log10(lr) + 2.5) + (0.05 if opt == "adam" else 0.0) \
            + rng.normal(0, 0.003)
        config = {"lr": lr, "optimizer": opt, "seed": int(rng.integers(1000)),
                  "augment": bool(i % 2), "batch": 64, "model": {"depth": 3}}
        summary = {"val/acc": acc, "_step": 10} if i % 10 else {"_step": 10}   # some unfinished
        infos.append(runs.RunInfo(id=f"r{i}", name=f"run-{i}", project="p", config=config,
                                  summary=summary))
    return infos


def test_parameter_importance_like_wandb():
    infos = sweep()
    table = runs.parameter_importance(infos, "val/acc")
    params = list(table["parameter"])
    # constant keys (batch, model.depth) left out; categorical one-hot; booleans 0/1
    assert set(params) == {"lr", "seed", "augment", "optimizer=adam", "optimizer=lion",
                           "optimizer=sgd"}
    assert params[0] == "lr" and table["importance"].sum() == pytest.approx(1.0)
    assert table.set_index("parameter").loc["lr", "importance"] > \
        5 * table.set_index("parameter").loc["seed", "importance"]
    assert set(table["runs"]) == {54}                     # runs without val/acc left out
    # correlation: Pearson, against numpy's
    used = [r for r in infos if "val/acc" in r.summary]
    acc = [r.summary["val/acc"] for r in used]
    adam = [1.0 if r.config["optimizer"] == "adam" else 0.0 for r in used]
    expected = np.corrcoef(adam, acc)[0, 1]
    assert table.set_index("parameter").loc["optimizer=adam", "correlation"] == \
        pytest.approx(expected)
    assert expected > 0.3                                 # adam helps: positive
    # nothing to say: too few runs, or a metric no run has
    assert runs.parameter_importance(infos[:2], "val/acc").empty
    assert runs.parameter_importance(infos, "missing").empty


def test_diffs_have_no_run_cap_and_list_differing_keys_first():
    infos = sweep(100)
    config = runs.config_diff(infos, all_keys=True)
    assert config.shape[1] == 100 and config.attrs["differing"] == 4
    assert list(config.index[:4]) == ["augment", "lr", "optimizer", "seed"]
    assert set(config.index[4:]) == {"batch", "model.depth"}
    summary = runs.summary_diff(infos)
    assert summary.shape == (1, 100) and list(summary.index) == ["val/acc"]
    assert summary.loc["val/acc", "run-0"] == "—"          # no value: a dash, not an error


def test_skipped_runs_are_counted_by_reason(tmp_path):
    for i, content in enumerate([b"garbage", b"", b":W&B\x00\x01\x00\x00"]):
        d = tmp_path / "wandb" / f"offline-run-x-bad{i}"
        d.mkdir(parents=True)
        (d / f"run-bad{i}.wandb").write_bytes(content)
    infos, problems = runs.load_offline(tmp_path)
    assert not infos and len(problems) == 3
    reasons = dict(runs.problem_reasons(problems))
    assert reasons == {"not a readable W&B run log (bad header)": 2,
                       "the log has no run record (empty, or not a W&B run)": 1}


LIVE_WRITER = """
import sys, time, wandb
run = wandb.init(mode="offline", dir=sys.argv[1], project="live", name="live",
                 settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
for step in range(int(sys.argv[2])):
    run.log({"loss": 1 / (step + 1), "step_sq": step * step}, step=step)
    if step % 50 == 49:
        time.sleep(0.3)
run.finish()
"""


def test_live_run_reads_only_what_was_appended(tmp_path):
    import sys
    import time
    writer = subprocess.Popen([sys.executable, "-c", LIVE_WRITER, str(tmp_path), "1500"])
    try:
        deadline = time.time() + 120
        logs = []
        while not logs and time.time() < deadline:
            logs = list(tmp_path.glob("wandb/offline-run-*/*.wandb"))
            time.sleep(0.1)
        live = runs.LiveRun(logs[0])
        seen, offsets, grew = 0, [], 0
        while writer.poll() is None and time.time() < deadline:
            new = live.poll()
            grew += new > 0
            seen += new
            offsets.append(live.offset)
            assert len(live.history) == seen                    # rows arrive once each
            time.sleep(0.2)
        assert writer.wait(60) == 0
        seen += live.poll()
    finally:
        writer.kill()
    assert grew >= 2 and offsets == sorted(offsets)             # read in pieces, forwards
    full = runs.read_history(logs[0])
    pd.testing.assert_frame_equal(live.history, full)
    assert live.info.state == "finished" and live.info.summary == leet_summary(logs[0])["summary"]
    assert live.poll() == 0                                     # nothing new: nothing read


def test_duplicate_names_are_told_apart():
    infos = [runs.RunInfo(id=i, name=n, project="p", path=f"/x/offline-run-{k}/run-{i}.wandb")
             for k, (i, n) in enumerate([("a1", "same"), ("a2", "same"), ("a2", "same"),
                                         ("b", "other")])]
    names = [r.name for r in runs.disambiguate(infos)]
    assert len(set(names)) == 4 and names[3] == "other" and names[0] == "same · a1"
    assert names[1] == "same · a2 · offline-run-1"


def test_a_fifo_or_a_link_out_named_like_a_log_never_blocks_the_folder(project, tmp_path):
    import os
    import shutil
    root = tmp_path / "mixed"
    shutil.copytree(project, root)
    fifo = root / "wandb" / "offline-run-x-fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "run-fifo.wandb")                  # opening it would wait for a writer
    out = root / "wandb" / "offline-run-x-link"
    out.mkdir()
    (out / "run-link.wandb").symlink_to("/etc/passwd")  # leads outside the folder
    infos, problems = runs.load_offline(root)
    assert len(infos) == 3 and not problems             # neither is read


def test_record_field_numbers_match_wandbs_protobuf():
    from wandb.proto import wandb_internal_pb2 as pb

    from lib.runs import scanner as runlog
    fields = pb.Record.DESCRIPTOR.fields_by_name
    assert tuple(
        fields[n].number for n in ("history", "summary", "config", "run", "exit")) == (
        runlog.HISTORY, runlog.SUMMARY, runlog.CONFIG, runlog.RUN, runlog.EXIT)
    oneof = {f.number for f in pb.Record.DESCRIPTOR.oneofs_by_name["record_type"].fields}
    outside = {f.number for f in pb.Record.DESCRIPTOR.fields} - oneof
    assert outside == set(np.flatnonzero(runlog.NOT_TYPE))


def write_log(path, records) -> None:
    """A .wandb log of protobuf Records, framed as wandb writes it (one FULL chunk each)."""
    import zlib
    data = bytearray(b":W&B\x00\x01\x00")
    for record in records:
        body = record.SerializeToString()
        assert len(body) < 30_000
        left = 32768 - len(data) % 32768
        if left < 7 + len(body):                       # pad to the next block
            data += b"\x00" * left
        crc = zlib.crc32(bytes([1]) + body)
        data += crc.to_bytes(4, "little") + len(body).to_bytes(2, "little") + b"\x01" + body
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))


def test_a_row_with_a_value_that_is_not_json_is_dropped_and_counted(tmp_path):
    from wandb.proto import wandb_internal_pb2 as pb
    records = [pb.Record(run=pb.RunRecord(run_id="x1", project="p"))]
    for step, value in enumerate(["0.5", "{not json", "0.25", "0.125"]):
        history = pb.HistoryRecord()
        history.step.num = step
        history.item.add(key="loss", value_json=value)
        history.item.add(key="_step", value_json=str(step))
        if step == 2:                                   # a key twice in one row: the last wins
            history.item.add(key="loss", value_json="0.3")
        records.append(pb.Record(history=history))
    log = tmp_path / "wandb" / "offline-run-x-x1" / "run-x1.wandb"
    write_log(log, records)
    hist = runs.read_history(log)
    assert hist["_step"].tolist() == [0, 2, 3] and hist.attrs["dropped"] == 1
    assert hist["loss"].tolist() == [0.5, 0.3, 0.125]


def test_a_live_run_replaced_or_cut_shorter_is_read_again_from_the_start(project, tmp_path):
    import shutil
    logs = sorted(project.glob("wandb/offline-run-*/*.wandb"))
    log = tmp_path / "wandb" / "offline-run-x-live" / "run-live.wandb"
    log.parent.mkdir(parents=True)
    data = logs[0].read_bytes()
    log.write_bytes(data[: len(data) // 2])               # half written
    live = runs.LiveRun(log)
    first = live.poll()
    assert 0 < first < 50
    log.write_bytes(data[: len(data) // 4])               # cut shorter: read from the start
    again = live.poll()
    assert again == len(live.history) < first
    shutil.copy(logs[1], log.with_suffix(".new"))         # replaced by another run's log
    log.with_suffix(".new").replace(log)
    live.poll()
    pd.testing.assert_frame_equal(live.history, runs.read_history(logs[1]))
    assert live.info.id == runs.read_run_info(logs[1]).id
