"""Offline runs: the reader against `wandb leet`, broken and odd logs, the disk cache."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lib import runs
from lib.core.errors import RunReadError
from lib.runs import offline
from tests.helpers import leet_history, leet_summary


@pytest.mark.slow
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
    for cache in (offline._index_path(path, "offline"),
                  offline._cache_key(path, "history.parquet")):
        cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    assert runs.read_run_info(path) == info
    pd.testing.assert_frame_equal(runs.read_history(path), history)
    monkeypatch.setattr(offline, "scan_log", lambda *a, **k: pytest.fail("not cached"))
    assert runs.read_run_info(path) == info                     # rewritten whole
    pd.testing.assert_frame_equal(runs.read_history(path), history)
    assert not list(offline._index_path(path, "offline").parent.glob(".*.tmp"))


def test_bundled_sample_runs_are_readable():
    infos, problems = runs.load_offline(runs.SAMPLE_RUNS, source="sample")
    assert not problems and len(infos) == 4
    assert all("sample" in r.tags and r.summary["best/val_acc"] > 0.5 for r in infos)


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_corrupt_records_are_skipped_counted_and_agree_with_leet(odd_runs, tmp_path):
    from lib.runs import scanner
    full = runs.read_history(odd_runs[0])
    # a corrupt history record: it and the rest of its 32 KiB block are lost, as leet does
    bad = corrupt_copy(odd_runs[0], tmp_path, scanner.HISTORY, 700)
    hist = runs.read_history(bad)
    ref = leet_history(bad)
    assert hist.attrs["dropped"] == 1 and 1400 < len(hist) == len(ref) < len(full) == 1500
    pd.testing.assert_frame_equal(hist[sorted(hist.columns)], ref[sorted(ref.columns)])
    assert runs.read_run_info(bad).summary == leet_summary(bad)["summary"]
    # a corrupt summary record that decides the summary: found, dropped, the earlier one used
    bad = corrupt_copy(odd_runs[0], tmp_path, scanner.SUMMARY, -2)
    info = runs.read_run_info(bad)
    assert info.dropped >= 1 and info.summary == leet_summary(bad)["summary"]


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

    from lib.runs import scanner
    fields = pb.Record.DESCRIPTOR.fields_by_name
    assert tuple(
        fields[n].number for n in ("history", "summary", "config", "run", "exit")) == (
        scanner.HISTORY, scanner.SUMMARY, scanner.CONFIG, scanner.RUN, scanner.EXIT)
    oneof = {f.number for f in pb.Record.DESCRIPTOR.oneofs_by_name["record_type"].fields}
    outside = {f.number for f in pb.Record.DESCRIPTOR.fields} - oneof
    assert outside == set(np.flatnonzero(scanner.NOT_TYPE))


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


def test_a_folders_index_rereads_only_the_logs_that_changed(project, tmp_path, monkeypatch):
    """One index file per folder: a second load reads no log; a log that grew is read again
    alone; an index torn by a kill is rebuilt from the logs."""
    import shutil
    root = tmp_path / "copy"
    shutil.copytree(project, root)
    first, _ = runs.load_offline(root)
    grown = runs.find_run_files(root)[0]
    with open(grown, "ab") as f:                    # a running run appended a cut-off record
        f.write(b"\x00\x01")
    read = []
    real = offline._run_info
    monkeypatch.setattr(offline, "_run_info", lambda p, s: read.append(p) or real(p, s))
    again, problems = runs.load_offline(root)
    assert read == [grown] and not problems
    assert sorted(r.summary["best"] for r in again) == sorted(r.summary["best"] for r in first)
    index = offline._index_path(root, "offline")
    index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    read.clear()
    assert len(runs.load_offline(root)[0]) == 3 and len(read) == 3


def test_the_walk_skips_run_subfolders_and_links_out(project, tmp_path):
    """Logs sit directly in run folders: a `.wandb` file inside a run's files/ is not a run,
    and a log linked from outside the folder is not read."""
    import shutil
    root = tmp_path / "walk"
    shutil.copytree(project, root)
    run_dir = runs.find_run_files(root)[0].parent
    (run_dir / "files").mkdir(exist_ok=True)
    shutil.copy(runs.find_run_files(root)[0], run_dir / "files" / "run-stray.wandb")
    outside = tmp_path / "outside.wandb"
    shutil.copy(runs.find_run_files(root)[0], outside)
    linked = root / "wandb" / "offline-run-linked"
    linked.mkdir()
    (linked / "run-linked.wandb").symlink_to(outside)
    assert len(runs.find_run_files(root)) == 3
    assert runs.folder_stamp(root)[0] == 3


def test_some_columns_of_a_history(project):
    path = runs.find_run_files(project)[0]
    cold = runs.read_columns(path, {"val/acc"})                  # parsed from the log alone
    full = runs.read_history(path)
    assert set(cold.columns) == {"_step", "val/acc"}
    pd.testing.assert_frame_equal(cold, full[["_step", "val/acc"]], check_like=True)
    warm = runs.read_columns(path, {"val/acc", "missing"})        # from the cached history
    pd.testing.assert_frame_equal(warm.reset_index(drop=True), cold[list(warm.columns)])


@pytest.mark.slow
def test_a_folder_of_ten_thousand_empty_runs(tmp_path, monkeypatch):
    """10,000 run folders whose logs are empty: each is counted as a problem, once (the
    folder's index keeps them), and the second load reads none of them."""
    for i in range(10_000):
        d = tmp_path / "wandb" / f"offline-run-x-{i:05d}"
        d.mkdir(parents=True)
        (d / f"run-{i:05d}.wandb").write_bytes(b"")
    infos, problems = runs.load_offline(tmp_path)
    assert not infos and len(problems) == 10_000
    assert runs.problem_reasons(problems) == [("not a readable W&B run log (bad header)",
                                               10_000)]
    monkeypatch.setattr(offline, "_run_info", lambda *a: pytest.fail("read again"))
    assert len(runs.load_offline(tmp_path)[1]) == 10_000
