"""The Runs page for one visitor: `RunsComparison` owns where the runs come from (a bundled
folder, a folder typed or linked, a W&B cloud project), the visitor's W&B client (in server
memory only, released when the visitor leaves), the runs it followed live, and the page's
link. The page reads widgets, calls it, renders.

What is the visitor's alone (the cloud runs fetched with their key, the live runs) lives on
the object and goes with the session. How a folder's run table is read is the caller's
(`read_folder`: the page caches it per folder and stamp).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lib.core import links, paths, settings
from lib.core.progress import Callback
from lib.runs import cloud, compare, offline
from lib.runs.info import ReadProblem, RunInfo
from lib.runs.live import LiveRun


@dataclass(frozen=True)
class Bundled:
    """A folder of runs that ships with Lens, as the visitor sees it."""
    shown: str            # its path as typed (`paths.shown`)
    folder: Path
    label: str            # the bundled-runs picker's name for it
    what: str             # a sentence for the page


@dataclass
class Opened:
    """Runs read from one source: the runs, those that could not be read, and the bundled
    folder they came from (None for the visitor's own)."""
    infos: list[RunInfo] = field(default_factory=list)
    problems: list[ReadProblem] = field(default_factory=list)
    bundled: Bundled | None = None


class RunsComparison:
    """One visitor's comparison. `visitor` names their W&B client in server memory;
    `read_folder(root, source, stamp)` reads a folder's runs (`read_folder` below, or a
    cached wrapper of it)."""

    def __init__(self, visitor: str, read_folder=None):
        self.visitor = visitor
        self.cloud_runs: list[RunInfo] = []
        self.live: dict[str, LiveRun] = {}      # log path -> the run followed live
        self._read_folder = read_folder or read_folder_runs

    # -- where runs come from ----------------------------------------------------------------
    @staticmethod
    def bundled() -> list[Bundled]:
        """The demo pack's training runs (opened first) and the sample sweep."""
        demo, sample = settings.get().checkpoints, offline.SAMPLE_RUNS
        return [Bundled(paths.shown(demo), demo, "demo pack",
                        "the **demo pack's training runs** (the classifier and detectors in "
                        "`checkpoints/demo-*`, trained by `python -m lib.train`)"),
                Bundled(paths.shown(sample), sample, "spirals sweep",
                        "the bundled **sample runs** (a tiny MLP trained on two spirals by "
                        "`python -m lib.demo.samples runs`)")]

    def bundled_as(self, text: str) -> Bundled | None:
        """The bundled folder a typed path names: as it is shown, or any path to it."""
        text = text.strip()
        for b in self.bundled():
            if text == b.shown or _same_folder(text, b.folder):
                return b
        return None

    def open_folder(self, text: str) -> Opened:
        """The runs of a folder: a bundled one by the path it is shown as, else a typed path
        resolved inside the allowed roots (`PathNotAllowedError` otherwise)."""
        bundled = self.bundled_as(text)
        root = bundled.folder if bundled else paths.data_path(text, "any")
        infos, problems = self._read_folder(str(root), "sample" if bundled else "offline",
                                            offline.folder_stamp(root))
        return Opened(infos, problems, bundled)

    def fetch_cloud(self, entity: str, project: str, filters: str, key: str | None,
                    progress: Callback | None = None) -> list[RunInfo]:
        """A cloud project's runs with the visitor's key (used for this request and kept
        only as their client in server memory, for the histories they open next)."""
        flt = cloud.parse_filters(filters)
        api = cloud.cloud_api(key)
        self.cloud_runs = cloud.load_cloud(entity, project, filters=flt, api=api,
                                           progress=progress)
        cloud.remember_client(self.visitor, api)
        return self.cloud_runs

    def client(self):
        """The visitor's W&B client (made with the key they typed), or None."""
        return cloud.client_for(self.visitor)

    def follow(self, info: RunInfo) -> LiveRun:
        """A run still being written, followed from where this visitor last read it."""
        return self.live.setdefault(info.path, LiveRun(info.path, info.source))

    def close(self) -> None:
        """The visitor left: their W&B client and followed runs go."""
        cloud.forget_client(self.visitor)
        self.live.clear()
        self.cloud_runs = []

    # -- links -------------------------------------------------------------------------------
    @staticmethod
    def read_link(query: Mapping) -> links.RunsLink:
        """The comparison a page URL asks for (visitor input: checked field by field)."""
        return links.RunsLink.parse(query)

    @staticmethod
    def detection_link(info: RunInfo) -> str | None:
        """The Detection page link of a benchmark run logged from it (None for others)."""
        return compare.detection_link(info)


def _same_folder(text: str, folder: Path) -> bool:
    try:
        return (settings.PROJECT_ROOT / Path(text).expanduser()).resolve() == folder.resolve()
    except (OSError, RuntimeError, ValueError):
        return False


def read_folder_runs(root: str, source: str, stamp: tuple = ()) -> tuple[list, list]:
    """A folder's runs, names made unique, and those that could not be read (`stamp`, from
    `offline.folder_stamp`, only keys a caller's cache)."""
    infos, problems = offline.load_offline(root, source=source)
    return compare.disambiguate(infos), problems
