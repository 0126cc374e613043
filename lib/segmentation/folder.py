"""Text to tracks over a folder of clips, off the page: each clip's phrase grounded every k
frames and tracked through (`text_track.ground_through`, as the page does), written as one
COCO video JSON (RLE masks) and one timeline CSV per clip. Locally, one clip after another,
or on Ray (one clip per task, the model loaded once per worker), with the same engine,
address and worker options as detection (`lib.core.ray_cluster`).

Resumable: a clip's two files are written whole (atomically) before its line is appended to
OUT/tracks.jsonl (`lib.core.journal`); a run killed at any instant is run again with only the
clips that have no line, or whose file or options changed since. A clip that cannot be
read gets a line with the reason (and is tried again only when the file changes).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lib.core import journal, paths
from lib.core.errors import InputError, LensError
from lib.core.progress import Progress
from lib.core.ray_cluster import RayOptions
from lib.media import video as video_io

JOURNAL = "tracks.jsonl"
METHODS = ("points", "memory", "classical")


@dataclass(frozen=True)
class TrackOptions:
    """What to find and how to track it."""

    text: str
    every: int = 10                       # ground every k frames (capped at a clip's length)
    model: str = "demo-segmenter"         # the segmenter (or video model)
    grounder: str = "demo-fasterrcnn"     # a grounding model, or a detector (closed vocabulary)
    method: str = "points"                # points (any segmenter) | memory | classical
    threshold: float = 0.3                # the confidence a grounded box needs


def grounder_name(name: str) -> str:
    """A grounding model's name, or a detector's name as a closed-vocabulary grounder."""
    from lib.models import catalogue
    from lib.segmentation import grounding
    if name.endswith(grounding.CLOSED):
        return name
    try:
        spec = catalogue.find(name)
    except LensError:
        return name                       # loading it names the fix
    return name if spec.task == "grounding" else name + grounding.CLOSED


class Models:
    """The grounder and the video model, loaded once per process (or per Ray worker)."""

    def __init__(self, options: TrackOptions):
        from lib.segmentation import classical, grounding, point_track, segment, segment_video
        if options.method not in METHODS:
            raise InputError(f"Unknown tracking method '{options.method}'.",
                             f"Use one of: {', '.join(METHODS)}.")
        self.grounder = grounding.load_grounder(grounder_name(options.grounder),
                                                options.threshold)
        if options.method == "classical":
            self.video = classical.ClassicalVideoModel()
        elif options.method == "points":
            self.video = point_track.PointVideoModel(segment.load_segmenter(options.model))
        else:
            self.video = segment_video.load_video_model(options.model)


def check_options(options: TrackOptions) -> None:
    """Bad text or k refused before any clip is opened (a closed-vocabulary grounder's words
    are checked from its registry entry, without loading it)."""
    from lib.core.errors import PromptError
    from lib.segmentation import grounding
    if not 0 < options.threshold < 1:
        raise PromptError(f"The confidence threshold is a number between 0 and 1; got "
                          f"{options.threshold}.")
    if isinstance(options.every, bool) or not isinstance(options.every, int) \
            or options.every < 1:
        raise PromptError(f"Ground every k frames with k a whole number from 1; got "
                          f"{str(options.every)[:20]!r}.")
    if not options.text.strip():
        raise PromptError("Type what to find, e.g. 'person' or 'logo'.")
    name = grounder_name(options.grounder)
    if words := grounding.known_words(name):
        grounding.closed_classes(options.text, words, name.removesuffix(grounding.CLOSED))


def find_clips(root: Path) -> list[tuple[Path, str]]:
    """Every video file under `root` (its resolved path and its name relative to root),
    sorted; links that lead outside root are not followed."""
    root = root.resolve()
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if name.rsplit(".", 1)[-1].lower() not in video_io.ACCEPTED_EXTENSIONS:
                continue
            path = paths.contained(Path(folder) / name, root)
            if path is not None and path.is_file():
                found.append((path, str((Path(folder) / name).relative_to(root))))
    return found


def clip_key(path: Path, options: TrackOptions) -> str:
    """The clip's identity for resuming: its size, modification time and the options."""
    stat = path.stat()
    return hashlib.sha1(json.dumps([stat.st_size, stat.st_mtime_ns, asdict(options)])
                        .encode()).hexdigest()[:16]


def outputs(out: Path, rel: str) -> tuple[Path, Path]:
    """Where a clip's COCO video JSON and timeline CSV go (its relative path, kept)."""
    stem = out / Path(rel).with_suffix("")
    return stem.with_name(stem.name + ".tracks.json"), stem.with_name(stem.name + ".timeline.csv")


def track_clip(path: Path, rel: str, out: Path, options: TrackOptions, models: Models
               ) -> dict[str, Any]:
    """Ground and track one clip; write its two files; return its journal line."""
    from lib.segmentation import segment_video, text_track, timeline, video_export
    t0 = time.perf_counter()
    record: dict[str, Any] = {"clip": rel, "key": clip_key(path, options)}
    try:
        info = segment_video.open_clip(path)
        tracker = models.video.tracker(info)
        try:
            done = text_track.ground_through(tracker, models.grounder, options.text,
                                             min(options.every, max(1, tracker.num_frames)))
            coco, csv = outputs(out, rel)
            with journal.atomic_path(coco) as tmp:
                video_export.coco(tracker, tmp, Path(rel).stem)
            journal.write_atomic(csv, timeline.presence(tracker).to_csv(index=False))
            record.update(frames=tracker.num_frames, objects=len(done.started),
                          json=str(coco.relative_to(out)), csv=str(csv.relative_to(out)))
        finally:
            tracker.close()
    except LensError as exc:
        record["failed"] = str(exc)
    record["seconds"] = round(time.perf_counter() - t0, 3)
    return record


def finished(out: Path) -> dict[str, dict]:
    """The clips the journal says are done (the last line of each), outputs present."""
    done = {}
    for r in journal.read(out / JOURNAL).records:
        if isinstance(r.get("clip"), str) and isinstance(r.get("key"), str):
            done[r["clip"]] = r
    return {c: r for c, r in done.items()
            if "failed" in r or all((out / r.get(k, "")).is_file() for k in ("json", "csv"))}


def run_folder(root: str | Path, out: str | Path, options: TrackOptions,
               ray: RayOptions | None = None,
               progress: Callable[[Progress], None] | None = None) -> list[dict]:
    """Track every clip under `root` into `out`; returns every clip's journal line."""
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder of clips.", "Pass the folder that holds them.")
    check_options(options)
    out.mkdir(parents=True, exist_ok=True)
    clips = find_clips(root)
    done = finished(out)
    todo = [(p, rel) for p, rel in clips
            if done.get(rel, {}).get("key") != clip_key(p, options)]
    journal.repair(out / JOURNAL)                 # a torn last line is cut, never glued to
    t0, count = time.perf_counter(), len(clips) - len(todo)
    for record in (_ray_records(todo, out, options, ray) if ray is not None
                   else _local_records(todo, out, options)):
        journal.append(out / JOURNAL, [record])
        done[record["clip"]] = record
        count += 1
        if progress:
            progress(Progress(count, len(clips), time.perf_counter() - t0))
    return [done[rel] for _, rel in clips if rel in done]


def _local_records(todo, out: Path, options: TrackOptions) -> Iterator[dict]:
    if not todo:
        return
    models = Models(options)
    for path, rel in todo:
        yield track_clip(path, rel, out, options, models)


class ClipWorker:
    """One Ray actor: loads the models once, then tracks the clips it is given."""

    def __init__(self, out: str, options: dict, threads: int):
        import torch  # heavy: imported on first use
        torch.set_num_threads(threads)
        self.out, self.options = Path(out), TrackOptions(**options)
        self.models = Models(self.options)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        lines = [json.dumps(track_clip(Path(p), rel, self.out, self.options, self.models))
                 for p, rel in zip(batch["path"], batch["rel"])]
        return {"line": lines}


def _ray_records(todo, out: Path, options: TrackOptions, ray_options: RayOptions
                 ) -> Iterator[dict]:
    """One clip per task on Ray Data; the workers write the files, the driver the journal."""
    if not todo:
        return
    from lib.core.ray_cluster import connect
    connect(ray_options)
    import ray.data  # heavy: imported on first use
    items = [{"path": str(p), "rel": rel} for p, rel in todo]
    tracked = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        ClipWorker, batch_size=1, batch_format="numpy",
        fn_constructor_kwargs={"out": str(out.resolve()), "options": asdict(options),
                               "threads": ray_options.threads_per_worker},
        compute=ray.data.ActorPoolStrategy(size=max(1, ray_options.workers)),
        num_cpus=ray_options.threads_per_worker, num_gpus=ray_options.gpus_per_worker or None)
    for batch in tracked.iter_batches(batch_size=None, batch_format="numpy"):
        for line in batch["line"]:
            yield json.loads(line)
