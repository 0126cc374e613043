"""One run's metadata, config and summary (`RunInfo`), whatever it was read from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RunInfo:
    """One run's metadata, config and summary (no history)."""

    id: str
    name: str
    project: str
    entity: str = ""
    state: str = ""
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    created: str = ""             # ISO start time, as the reader reports it
    runtime: float | None = None  # seconds (summary `_runtime`)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    source: str = "offline"       # offline | cloud | sample
    path: str = ""                # .wandb file, or entity/project/id for cloud runs
    dropped: int = 0              # corrupt or undecodable records skipped while reading

    @property
    def key(self) -> str:
        return f"{self.source}:{self.path or self.id}"


@dataclass(frozen=True)
class ReadProblem:
    path: str
    message: str


def info_from_summary(data: dict[str, Any], path: str, source: str = "offline") -> RunInfo:
    summary = {k: v for k, v in (data.get("summary") or {}).items() if k != "_wandb"}
    config = {k: v for k, v in (data.get("config") or {}).items() if k != "_wandb"}
    return RunInfo(id=data.get("run_id", ""), name=data.get("name") or data.get("run_id", ""),
                   project=data.get("project", ""), entity=data.get("entity", ""),
                   state=data.get("state", ""), tags=list(data.get("tags") or []),
                   notes=data.get("notes") or "", created=data.get("start_time", ""),
                   runtime=summary.get("_runtime"), config=config, summary=summary,
                   source=source, path=path)
