"""A run's system metrics (CPU, memory, GPU utilisation and memory, disk, network) from the
stats records of its `.wandb` log, decoded with wandb's own record classes.

Values that are not finite numbers (NaN, infinity, text) are left out and counted; at most the
last MAX_RECORDS samples are kept, so a week-long run costs the same as an hour's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lib.runs import offline
from lib.runs.info import RunInfo

STATS = 7                 # the stats field of wandb's Record oneof
MAX_RECORDS = 20_000
GROUPS = {"CPU": ("cpu", "proc.cpu"), "Memory": ("memory", "proc.memory"),
          "GPU": ("gpu.",), "Disk": ("disk",), "Network": ("network",)}


@dataclass
class SystemMetrics:
    frame: pd.DataFrame      # "seconds" since the first sample, then one column per metric
    left_out: int = 0        # values that were not finite numbers
    note: str = ""

    def charts(self) -> list[tuple[str, list[str]]]:
        """(title, columns) per chart: each group split by unit, so a percentage is never
        drawn on the scale of megabytes."""
        out = []
        for name in GROUPS:
            units: dict[str, list[str]] = {}
            for c in self.group(name):
                unit = ("MB" if c.endswith(("MB", "GB", "Bytes")) else
                        "%" if "percent" in c.lower() or c in ("cpu",) or c.endswith(
                            (".gpu", ".memory")) else "")
                units.setdefault(unit, []).append(c)
            out += [(f"{name} ({u})" if u else name, cols) for u, cols in units.items()]
        return out

    def group(self, name: str) -> list[str]:
        """The columns of one group (CPU, Memory, GPU, Disk, Network)."""
        prefixes = GROUPS[name]
        return [c for c in self.frame.columns if c != "seconds" and c.startswith(prefixes)]


def system_metrics(info: RunInfo) -> SystemMetrics:
    from wandb.proto import wandb_internal_pb2 as pb  # heavy: imported on first use
    if info.source != "offline" or not info.path:
        return SystemMetrics(pd.DataFrame(), note="System metrics are read from a run's local "
                                                  ".wandb log; this run has none here.")
    scanned = offline.scan_log(Path(info.path), verify=np.zeros(256, dtype=np.bool_))
    rows, left_out = [], 0
    for i in np.flatnonzero(scanned.kind == STATS)[-MAX_RECORDS:]:
        if not scanned.check(int(i)):
            continue
        try:
            stats = pb.Record.FromString(scanned.record(int(i))).stats
        except Exception:       # noqa: BLE001 - a record protobuf cannot decode: skipped
            continue
        row = {"time": stats.timestamp.seconds + stats.timestamp.nanos / 1e9}
        for item in stats.item:
            try:
                value = json.loads(item.value_json)
            except ValueError:
                value = None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and \
                    math.isfinite(value):
                row[item.key[:100]] = float(value)
            else:
                left_out += 1
        rows.append(row)
    if not rows:
        return SystemMetrics(pd.DataFrame(), left_out, "This run's log holds no system "
                                                        "metrics (wandb samples them every "
                                                        "15 s unless disabled).")
    frame = pd.DataFrame(rows).sort_values("time", kind="stable")
    time = frame.pop("time")
    frame.insert(0, "seconds", time - time.min())
    return SystemMetrics(frame.reset_index(drop=True), left_out)
