"""W&B runs, offline and cloud, read into one `RunInfo` type: the runs package's interface.

Pages and other packages use the names below; the modules behind them:

- `info`: one run's metadata, config and summary (`RunInfo`).
- `offline`: offline runs read in-process from their `.wandb` logs (cached).
- `scanner`: the compiled `.wandb` record scanner (numba), for sweep-scale folders.
- `summary`, `history_rows`: a run's summary and history from a scan, as `wandb leet` gives them.
- `live`: a run still being written, followed record by record.
- `cloud`: the W&B API (one client per visitor's key, in server memory only).
- `compare`: the run table, filters, config and summary diffs, parameter importance.
- `curves`: metric series, smoothing, bands across runs.
- `sweep`: what a sweep says, with intervals and a noise floor.
- `logged_media`: images and tables a run logged.
- `console_log`: a run's console output, read from its end.
- `system_metrics`: a run's CPU, memory, GPU, disk and network metrics.
- `service`: one visitor's comparison: sources, their W&B client, followed runs, the link.
- `__main__`: the command line, `python -m lib.runs`.
"""

from lib.runs.cloud import (
    MAX_CLIENTS,
    api_key,
    client_for,
    cloud_api,
    cloud_error,
    cloud_history,
    forget_client,
    load_cloud,
    parse_filters,
    remember_client,
)
from lib.runs.compare import (
    ParallelAxes,
    config_diff,
    detection_link,
    disambiguate,
    export_rows,
    filter_table,
    flatten,
    parallel_axes,
    parameter_importance,
    problem_reasons,
    runs_table,
    summary_diff,
    summary_keys,
)
from lib.runs.curves import (
    downsample_minmax,
    group_band,
    grouped_bands,
    match_metrics,
    metric_stats,
    numeric_metrics,
    series,
    smooth_ema,
    x_values,
)
from lib.runs.info import ReadProblem, RunInfo, info_from_summary
from lib.runs.live import LiveRun
from lib.runs.offline import (
    SAMPLE_RUNS,
    find_run_files,
    folder_stamp,
    history_frame,
    list_logs,
    load_offline,
    read_columns,
    read_histories,
    read_history,
    read_run_info,
    scan_log,
)

__all__ = [
    "api_key", "grouped_bands",
    "MAX_CLIENTS", "SAMPLE_RUNS", "LiveRun", "ParallelAxes", "list_logs", "parallel_axes",
    "read_columns", "summary_keys", "ReadProblem", "RunInfo", "client_for",
    "cloud_api", "cloud_error", "cloud_history", "config_diff", "detection_link",
    "disambiguate", "downsample_minmax", "export_rows", "filter_table", "find_run_files",
    "flatten", "folder_stamp", "forget_client", "group_band", "history_frame",
    "info_from_summary", "load_cloud", "load_offline", "match_metrics", "metric_stats",
    "numeric_metrics", "parameter_importance", "parse_filters", "problem_reasons", "read_histories",
    "read_history", "read_run_info", "remember_client", "runs_table", "scan_log", "series",
    "smooth_ema", "summary_diff", "x_values",
]
