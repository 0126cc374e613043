"""A run's metadata, config and summary from a `scanner.Scan`, as `wandb leet inspect
--summary --json` gives them. A summary is the merge of per-step summary records, and the last
record that touches a key is the last record of its signature, so only those few records are
decoded (with wandb's own protobuf classes).
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np

from lib.core.compiled import njit
from lib.runs.scanner import CONFIG, EXIT, RUN, SUMMARY, Scan


def _set(target: dict, key: str, path: list[str], value_json: str) -> None:
    """Apply one config/summary item: a flat key, or a nested key path into nested dicts."""
    value = json.loads(value_json)
    if key:
        target[key] = value
        return
    for part in path[:-1]:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    if path:
        target[path[-1]] = value


def _remove(target: dict, key: str, path: list[str]) -> None:
    if key:
        target.pop(key, None)
        return
    for part in path[:-1]:
        target = target.get(part)
        if not isinstance(target, dict):
            return
    if path:
        target.pop(path[-1], None)


def _go_time(seconds: int, nanos: int) -> str:
    """A protobuf Timestamp as Go's RFC 3339 with nanoseconds (trailing zeros dropped)."""
    text = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{nanos:09d}".rstrip("0")
    return f"{text}.{frac}Z" if frac else f"{text}Z"


@njit(cache=True, nogil=True)
def _wanted(kind, signature, keep):
    """In file order: the config, run and exit records, and the last summary record of each
    signature, among the records `keep` marks."""
    seen = set()
    chosen = np.zeros(len(kind), dtype=np.bool_)
    for i in range(len(kind) - 1, -1, -1):
        if not keep[i]:
            continue
        if kind[i] == SUMMARY:
            if signature[i] not in seen:
                seen.add(signature[i])
                chosen[i] = True
        elif kind[i] == CONFIG or kind[i] == RUN or kind[i] == EXIT:
            chosen[i] = True
    return np.flatnonzero(chosen)


def summarize(s: Scan, into: dict | None = None) -> dict:
    """A run's metadata, config and summary, as `wandb leet inspect --summary --json` prints
    them (its keys: run_id, name, project, entity, tags, notes, start_time, state, exit_code,
    config, summary). `into`: the result for the log up to this scan's start (a live tail).

    Only the records that decide the result are decoded: run, config and exit records, and
    the last summary record of each key signature (summary records are per-step deltas; the
    last one touching a key is the last one of its signature).
    """

    from google.protobuf.message import DecodeError  # heavy: imported on first use
    from wandb.proto import wandb_internal_pb2 as pb  # heavy: imported on first use

    keep = np.ones(len(s), dtype=bool)
    while True:        # the last summary record of each signature, among uncorrupted ones
        wanted = _wanted(s.kind, s.signature, keep)
        bad = [i for i in wanted.tolist() if s.kind[i] == SUMMARY and not s.check(i)]
        if not bad:
            break
        for i in bad:
            keep[s.drop_from(i)] = False
            s.corrupt += 1
    out: dict = into if into is not None else {
        "run_id": "", "name": "", "project": "", "entity": "", "tags": [], "notes": "",
        "start_time": "", "state": "running", "exit_code": None, "config": {}, "summary": {}}
    record = pb.Record()
    for i in wanted.tolist():
        try:
            record.ParseFromString(s.record(i))
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run = record.run
                out.update(run_id=run.run_id, name=run.display_name, project=run.project,
                           entity=run.entity, tags=list(run.tags), notes=run.notes)
                if run.HasField("start_time"):
                    out["start_time"] = _go_time(run.start_time.seconds, run.start_time.nanos)
                for item in run.summary.update:
                    _set(out["summary"], item.key, list(item.nested_key), item.value_json)
                items, removed = run.config.update, ()
            elif kind == "config":
                items, removed = record.config.update, record.config.remove
            elif kind == "summary":
                items, removed = record.summary.update, record.summary.remove
            elif kind == "exit":
                out["exit_code"] = record.exit.exit_code
                out["state"] = "finished" if record.exit.exit_code == 0 else "failed"
                continue
            else:
                continue
            target = out["summary"] if kind == "summary" else out["config"]
            for item in items:
                _set(target, item.key, list(item.nested_key), item.value_json)
            for item in removed:
                _remove(target, item.key, list(item.nested_key))
        except (DecodeError, json.JSONDecodeError, RecursionError, ValueError):
            s.undecodable += 1
    out["config"].pop("_wandb", None)     # wandb's own bookkeeping; leet leaves it out too
    out["summary"].pop("_wandb", None)
    return out
