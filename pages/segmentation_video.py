"""The segmentation page's video view: a clip, prompts on any frame, tracking through the clip,
effects rendered to MP4 and the masks exported."""

import functools
import hashlib
from pathlib import Path

import streamlit as st

from lib import plots, ui
from lib.core import paths, scratch, settings
from lib.core.errors import LensError
from lib.demo import synth
from lib.media import images, masks, video
from lib.segmentation import (
    classical,
    figures,
    grounding,
    point_track,
    prompts,
    segment,
    segment_video,
    text_track,
    timeline,
    video_export,
)
from lib.segmentation.service import ClipWork, SegmentationSession
from pages import segmentation_common
from pages.segmentation_common import DISPLAY_WIDTH

RATES = {"every frame": None, "10 frames/s": 10.0, "5 frames/s": 5.0, "2 frames/s": 2.0,
         "1 frame/s": 1.0}


@st.cache_resource(max_entries=8, show_spinner=False)
def _video_info(path: str, stamp: tuple):
    """Probe the clip and check the tracker's limits (cheap; no frames kept). `stamp` (size,
    modification time) makes a changed file a new entry."""
    return segment_video.open_clip(path)


def _clip() -> tuple[Path, str, bool] | None:
    """The clip to track: an upload (kept in the scratch area, named by its content), a file
    under the data roots, or the synthetic sample. Returns (path, shown name, synthetic) or
    None (a message was shown)."""
    upload = st.file_uploader("Video (MP4, MOV, WebM, AVI)", type=video.ACCEPTED_EXTENSIONS,
                              key="seg_video")
    typed = st.text_input("…or a clip's path on the server (large files need no upload)",
                          key="seg_video_path", placeholder="data/recordings/match.mp4")
    if upload is not None:
        return scratch.store_bytes(upload.getvalue(), Path(upload.name).suffix), upload.name, False
    if typed.strip():
        try:
            path = paths.data_path(typed, "file")
        except LensError as exc:
            ui.show_error(exc)
            return None
        return path, path.name, False
    s = settings.get()
    st.caption(f"Clips up to {s.sam_max_seconds / 60:.0f} minutes of frames up to "
               f"{s.sam_max_pixels:,} pixels; frames are decoded as the tracker reaches them "
               "and masks are kept on disk, so memory does not grow with the clip.")
    if not st.toggle("Use the sample clip (synthetic moving shapes)", key="seg_video_sample"):
        return None
    with ui.spinner("Generating the sample clip (once)…"):
        sample = synth.sample_clip()
    return sample, sample.name, True


def _rate_every(info) -> int:
    """Track one frame in N: the processing rate the visitor picks."""
    options = [k for k, v in RATES.items() if v is None or v < info.fps]
    pick = st.selectbox("Processing rate", options, key="seg_video_rate",
                        help="Below the clip's rate, one frame in N is tracked and its masks "
                             "are carried to the frames in between: a long clip on a CPU "
                             "is then a choice made knowingly.")
    rate = RATES[pick]
    return 1 if rate is None else max(1, round(info.fps / rate))


def video_mode(session: SegmentationSession) -> None:
    """A clip (an upload or the sample), objects prompted on any frame, tracked through it."""
    clip = _clip()
    name = segmentation_common.model_picker("seg_video_model", video=True)
    if clip is None:
        return
    path, upload_name, synthetic = clip
    try:
        stat = path.stat()
        # a scratch file is named by its content (and touched on use); another file is the
        # same clip while its size and modification time are
        stamp = (stat.st_size,) if path.parent == scratch.root() else (stat.st_size,
                                                                        stat.st_mtime_ns)
        info = _video_info(str(path), stamp)
    except LensError as exc:
        ui.show_error(exc)
        return
    except OSError:
        st.error(f"'{upload_name}' cannot be read.")
        return
    digest = hashlib.sha1(repr((str(path), *stamp)).encode()).hexdigest()[:16]
    if name == segment.GRABCUT:     # no SAM 2 here: classical tracking, said plainly
        vm = classical.ClassicalVideoModel()
        name = vm.name
        st.caption(f"Tracking with {classical.CLASSICAL}: drag a box to start an object.")
    else:
        demo = name in figures.untrained_memory()     # its memory path is not trained
        # the memory path where weights trained it; point tracking for the demo segmenter
        method = st.radio("Tracking", ["memory", "points"], horizontal=True, key="seg_vmethod",
                          index=1 if demo else 0,
                          format_func=lambda m: {
                              "memory": "the model's memory (SAM 2 / EdgeTAM video)",
                              "points": f"{point_track.LABEL} (any segmenter)"}[m],
                          help="Point tracking moves points with optical flow, re-prompts the "
                          "segmenter on every frame and finds a hidden object again by its "
                          "colours. Recommended for the demo segmenter, whose memory path is "
                          "untrained; with real SAM 2 weights, the memory.")
        try:
            with ui.spinner(f"Loading {name}…"):
                vm = (point_track.PointVideoModel(segment.load_segmenter(name))
                      if method == "points" else segment_video.load_video_model(name))
        except LensError as exc:
            ui.show_error(exc)
            return
        st.caption(f"Tracking with **{vm.name}**." + (
            f" Recommended for {name}: *{point_track.LABEL}* (its memory path is untrained)."
            if demo and method == "memory" else ""))
        if name in figures.own_models():
            better = segmentation_common.recommended_tracker(name) == "classical"
            measured = segmentation_common.clip_sentence(figures.measured_figures()[name])
            st.caption(f"Measured {measured}." + (
                f" On real footage pick **{segment.GRABCUT}** in the sidebar: it tracks with "
                f"{classical.CLASSICAL}, which measured better." if better else ""))
    ui.untrained_warning(vm)
    segmentation_common.off_distribution(name, synthetic, "footage (classical tracking)")
    every = _rate_every(info)
    # another clip, model or rate: the old tracker's decoder and mask file go now
    work = session.open_clip((digest, vm.name, every), lambda: vm.tracker(info, every=every))
    tracker: segment_video.Tracker = work.tracker
    st.caption(f"{info.width}×{info.height}, {tracker.num_frames} frames at {info.fps:.1f} fps "
               f"({info.duration_s:.1f} s)" + (f"; one frame in {every} is tracked"
                                                if every > 1 else ""))
    if st.session_state.get("seg_frame", 0) > tracker.num_frames - 1:
        st.session_state["seg_frame"] = tracker.num_frames - 1   # the clip ended early
    frame_idx = st.slider("Frame", 0, max(1, tracker.num_frames - 1), 0, key="seg_frame",
                          disabled=tracker.num_frames < 2)
    c1, c2, c3 = st.columns([2, 1, 1])
    ids = sorted(set(tracker.objects) | {work.active_id})
    work.active_id = c1.selectbox("Object", ids, index=ids.index(work.active_id),
                                  key=f"seg_vobj_{len(ids)}")
    if c2.button("New object", key="seg_vnew"):
        work.active_id = max(ids) + 1
        st.rerun()
    negative = c3.toggle("Negative", key="seg_vneg")
    try:
        shown = tracker.render_frame(frame_idx)
    except LensError as exc:          # a clip that ends before its header says
        ui.show_error(exc)
        return
    disp = images.fit_width(shown, DISPLAY_WIDTH)
    value = ui.clickable_image(disp, key=f"seg_vclick_{digest}_{frame_idx}")
    event = segmentation_common.click(value, info.width, work)
    if event:
        kind, d = event
        obj = tracker.objects.get(work.active_id)
        points, box = (obj.prompts.get(frame_idx, ([], None)) if obj else ([], None))
        points = list(points)
        if kind == "point":
            points.append((d[0], d[1], 0 if negative else 1))
        else:
            box = prompts.clip_box(d, info.width, info.height)
        try:
            tracker.add_prompt(frame_idx, work.active_id, points, box)
        except (segment.PromptError, video.VideoError) as exc:
            st.warning(f"{exc} Prompts kept.")
        else:
            st.rerun()
    with st.expander("Text prompt: find objects by name"):
        _video_text_prompt(tracker, frame_idx, work)
    if tracker.objects:
        _tracking(tracker)
    if tracker.propagated:
        st.success(f"Tracked {len(tracker.objects)} object(s) through {tracker.num_frames} "
                   "frames; scrub the frame slider to check.")
    if tracker.store.frames():
        picked = _where_when(tracker, upload_name, work)
        _video_exports(tracker, upload_name, picked, work)


def _tracking(tracker: segment_video.Tracker) -> None:
    """The objects, the Propagate and Cancel buttons, and what tracking holds."""
    tracked = {o for g in tracker.groups if g.tracked for o in g.objects}
    st.dataframe([{"object": o.name, "prompted frames": ", ".join(map(str, sorted(o.prompts))),
                   "tracked": "yes" if o.obj_id in tracked or tracker.propagated else "not yet"}
                  for o in tracker.objects.values()], hide_index=True)
    if tracker.propagated:
        go = False
    else:
        c1, c2 = st.columns([3, 1])
        fixes = getattr(tracker, "corrections", {})
        label = ("Re-track " + ", ".join(f"object {o} from frame {f}" for o, f in
                                          sorted(fixes.items())) if fixes else
                 "Track the new objects" if tracked else "Propagate through the clip")
        go = c1.button(label, type="primary", key="seg_propagate")
        c2.button("Cancel", key="seg_cancel", help="Stops tracking; the frames tracked so far "
                                                    "keep their masks.")
    if go:
        bar = ui.ProgressBar("frames tracked")
        with ui.showing_errors(), ui.queued("Tracking"):
            tracker.propagate(bar)
        bar.clear()
        st.rerun()
    started = any(g.started and not g.tracked for g in tracker.groups)
    if started and tracker.tracked_frames:
        st.info(f"Tracking stopped after {tracker.tracked_frames} frames; the masks tracked so "
                "far are kept. Propagate again to track the whole clip.")
    if tracker.peak_state_bytes:
        st.caption(f"Tracking state held: {_size(tracker.state_bytes)} now, "
                   f"{_size(tracker.peak_state_bytes)} at most; masks on disk: "
                   f"{_size(tracker.store.disk_bytes)}.")


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 // 10 else f"{max(1, round(n / 1024))} KB"


def _video_text_prompt(tracker, frame_idx: int, work: ClipWork) -> None:
    col1, col2 = st.columns([3, 2])
    phrase = col1.text_input("Find", placeholder="person, logo…", key="seg_vphrase")
    gname = segmentation_common.grounder_picker("seg_vgrounder", col2)
    c1, c2, c3 = st.columns([2, 1, 1])
    whole = c1.toggle("Through the whole clip", value=True, key="seg_vwhole",
                      help="Ground again every k frames, so objects that enter later are "
                           "found; off: this frame only.")
    every = c2.number_input("k (frames)", value=min(10, tracker.num_frames), step=1,
                            key="seg_vevery", disabled=not whole)
    threshold = segmentation_common.confidence("seg_vthreshold", c3)
    if not st.button("Find and track", key="seg_vfind"):
        return
    if not phrase.strip():
        st.warning("Type what to find first, e.g. 'person' or 'logo'.")
        return
    if whole:
        bar = ui.ProgressBar("grounded frames")
        try:
            with ui.queued("Grounding"):
                done = text_track.ground_through(tracker, grounding.load_grounder(gname, threshold),
                                                 phrase,
                                                 int(every), progress=bar)
        except LensError as exc:
            ui.show_error(exc)
            return
        finally:
            bar.clear()
        if not done.started:
            st.info(f"Nothing in the clip matched '{grounding.shown_text(phrase)}' on the "
                    f"{len(done.frames)} grounded frames.")
            return
        st.rerun()
    try:
        with ui.spinner(f"Grounding '{phrase}' on frame {frame_idx}…"), ui.queued("Grounding"):
            boxes = grounding.load_grounder(gname, threshold).boxes(tracker.frames[frame_idx],
                                                                    phrase)
    except LensError as exc:
        ui.show_error(exc)
        return
    if not boxes:
        st.info(f"Nothing on frame {frame_idx} matched '{phrase}'. Try another phrase or frame.")
        return
    next_id = max([*tracker.objects, work.active_id]) + 1
    for k, region in enumerate(boxes):
        tracker.add_prompt(frame_idx, next_id + k, [], region.box, label=region.label)
    st.rerun()


def _export(write, tracker, suffix: str):
    """A download built when clicked: the export streamed to a scratch file, then read."""
    def build() -> bytes:
        out = scratch.new_file(suffix, prefix="export-")
        try:
            return write(tracker, out).read_bytes()
        finally:
            out.unlink(missing_ok=True)
    return build


def _where_when(tracker, name: str, work: ClipWork) -> list[int]:
    """Which object is on screen when, and for how long; returns the objects picked in the
    table (all of them when none is), the most on screen first."""
    st.subheader("Where, what, when")
    mark = tracker.store.disk_bytes          # the masks on disk change only when tracking does
    if work.timeline is None or work.timeline[0] != mark:
        work.timeline = (mark, timeline.presence(tracker))
    rows = work.timeline[1]
    table = timeline.screen_time(tracker, rows)
    st.caption("Most on screen first. Select rows to choose the objects the effect applies "
               "to; with none selected, it applies to all.")
    # keyed by the masks on disk: tracking again re-sorts the rows, so a choice made on the
    # old order is let go rather than moved to other objects
    event = st.dataframe(table, hide_index=True, key=f"seg_timeline_table_{mark}",
                         on_select="rerun", selection_mode="multi-row")
    if not rows.empty:
        st.plotly_chart(plots.object_timeline(
            rows["frame"].tolist(), rows["time_s"].tolist(), rows["object"].tolist(),
            rows["label"].tolist(), rows["area"].tolist(),
            {o: masks.color_for(o) for o in tracker.objects}), key="seg_timeline")
    ui.download_button("Timeline: CSV", lambda: rows.to_csv(index=False),
                       f"{Path(name).stem}-timeline.csv", "text/csv", key="seg_timeline_csv")
    ranked = [int(o) for o in table["object"]] if not table.empty else []
    chosen = [ranked[i] for i in event.selection.rows if i < len(ranked)]
    return [o for o in chosen or ranked if o in tracker.objects] or list(tracker.objects)


def _video_exports(tracker, name: str, picked: list[int], work: ClipWork) -> None:
    st.subheader("Effects and export")
    st.caption("Applies to: " + ", ".join(f"{tracker.objects[o].name} #{o}" for o in picked))
    c2, c3 = st.columns([3, 1])
    effects = [e for e in masks.EFFECTS if e != "cutout"]
    effect = c2.selectbox("Effect", ["outline overlay", *effects],
                          key="seg_veffect")
    strength = c3.slider("Strength", 3, 99, 31, 2, key="seg_vstrength")
    stem = Path(name).stem
    if st.button("Render MP4", key="seg_render"):
        bar = ui.ProgressBar("frames rendered")
        out = scratch.new_file(".mp4", prefix="render-")
        with ui.showing_errors(), ui.queued("Rendering"):
            video_export.mp4(tracker, out, None if effect == "outline overlay" else effect,
                             picked, strength, progress=bar)
        bar.clear()
        work.render = out                                 # the file, not its bytes
    render = work.render
    if render is not None and render.is_file():
        st.video(str(render))
        ui.download_button("Download MP4", render.read_bytes, f"{stem}-lens.mp4",
                           "video/mp4", key="seg_download_mp4")
    c1, c2 = st.columns(2)
    # Exports are built when clicked, not on every rerun (a clip holds hundreds of masks).
    ui.download_button("Masks: zip of PNGs", _export(video_export.png_zip, tracker, ".zip"),
                       f"{stem}-masks.zip", "application/zip", key="seg_masks_zip_of_pngs",
                       where=c1)
    ui.download_button("Tracks: COCO video JSON (RLE)",
                       _export(functools.partial(video_export.coco, name=stem), tracker,
                               ".json"),
                       f"{stem}-tracks.json", "application/json", key="seg_tracks_coco_video",
                       where=c2)
