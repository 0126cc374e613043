"""Links between pages: one dataclass per page says what its URL holds; the same class writes
the URL (`url()`) and reads it back (`parse(query)`), so every link round-trips.

A link is visitor input like any other: `parse` caps text, clamps numbers, keeps only known
choices and falls back to the field's default for anything else; whoever uses a path from a
link still resolves it through `paths.data_path`.

- `DetectionLink`: the Detection page reopening a benchmark (data, models, subset, seed).
- `RunsLink`: the Runs page reopening a comparison (folder or cloud project, runs, metrics).
- `WhatIfLink`: a what-if (corruption and severity) on a model page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, get_type_hints
from urllib.parse import urlencode

MAX_TEXT = 2000      # characters of one parameter


def _number(default: float, lo: float, hi: float) -> Any:
    return field(default=default, metadata={"range": (lo, hi)})


def _choice(default: str, *others: str) -> Any:
    return field(default=default, metadata={"choices": (default, *others)})


@dataclass(frozen=True)
class Link:
    """What one page's URL holds. Subclasses name their `PAGE` and their fields: text,
    `_choice`s, `_number`s (int or float, clamped) and tuples of names (comma-separated)."""

    PAGE: ClassVar[str] = ""

    def query(self, only: tuple[str, ...] = ()) -> dict[str, str]:
        """The URL's parameters as text: every field that differs from its default, or the
        fields named in `only` whatever their value (a page writing what it just changed)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if (only and f.name not in only) or (not only and value == f.default):
                continue
            out[f.name] = ",".join(value) if isinstance(value, tuple) else str(value)
        return out

    def url(self) -> str:
        """The page's path with the query, relative to the app (`detection?data=demo&…`)."""
        query = self.query()
        return self.PAGE + ("?" + urlencode(query) if query else "")

    @classmethod
    def parse(cls, query: Mapping[str, Any]):
        """The link a URL's query holds (`st.query_params`, or `parse_qs` of a URL with one
        value per name); anything missing or invalid is the field's default."""
        hints = get_type_hints(cls)
        values = {}
        for f in dataclasses.fields(cls):
            raw = query.get(f.name)
            if isinstance(raw, list):           # parse_qs gives lists
                raw = raw[-1] if raw else None
            if raw is None:
                continue
            value = _read(str(raw)[:MAX_TEXT], hints[f.name], f)
            if value is not None:
                values[f.name] = value
        return cls(**values)


def _read(text: str, kind: Any, f: dataclasses.Field) -> Any:
    if "choices" in f.metadata:
        return text if text in f.metadata["choices"] else None
    if kind in (int, float):
        try:
            value = kind(float(text))
        except (ValueError, OverflowError):
            return None
        lo, hi = f.metadata["range"]
        return min(hi, max(lo, value)) if value == value else None
    if kind == tuple[str, ...]:
        return tuple(n for n in text.split(",") if n)
    return text


@dataclass(frozen=True)
class DetectionLink(Link):
    """A benchmark on the Detection page: demo data or COCO files by path (as `paths.shown`
    writes them), the models compared (registry names; imported results by the name they were
    given), the subset and its seed, how model labels map to categories, and the images
    selected on the Dataset tab's map (their ids; checked against the dataset by the page)."""

    PAGE: ClassVar[str] = "detection"
    data: str = _choice("", "demo", "path")
    ann: str = ""
    img: str = ""
    models: tuple[str, ...] = ()
    subset: int = _number(0, 0, 100_000)
    seed: int = _number(0, 0, 10_000)
    map_by: str = _choice("name", "id")
    selected: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunsLink(Link):
    """A comparison on the Runs page: a local folder (as `paths.shown` writes it) or a cloud
    project, the runs selected, the metrics pattern and smoothing of the curves, and the
    sweep view's brushed ranges (JSON, read by `pages/runs_sweep.py`)."""

    PAGE: ClassVar[str] = "runs"
    source: str = _choice("local", "cloud")
    path: str = ""
    entity: str = ""
    project: str = ""
    runs: tuple[str, ...] = ()
    metrics: str = "val/*"
    smooth: float = _number(0.0, 0.0, 0.99)
    brush: str = ""


@dataclass(frozen=True)
class WhatIfLink(Link):
    """A what-if on a model page: the corruption (checked by the page against
    `lib.media.corruptions`, which this layer does not import) and its severity."""

    PAGE: ClassVar[str] = "classification"
    corruption: str = ""
    severity: int = _number(3, 1, 5)
