"""The detection page's two model slots: imported predictions (a COCO results JSON from any
model) or a registry detector run as a background job with progress, cancel and resume.
UI only: the job is `lib.detection.jobs`, the checks `lib.detection.detections`, the mask
metrics the visitor's `DetectionBenchmark`."""

from pathlib import Path

import streamlit as st

from lib import ui
from lib.core.errors import LensError
from lib.detection import detections, jobs
from lib.detection.service import DetectionBenchmark
from lib.models import registry

IMPORT = "Import predictions (COCO results JSON)"
OTHER_ID = "Other transformers detector id…"


def imported_slot(bench: DetectionBenchmark, k: int, slot: str, linked_imports: dict[int, str],
                  speeds: dict[str, dict], masks: dict[str, dict]) -> tuple[str, dict | None]:
    """A slot fed by a COCO results JSON (any other model): its name and detections; where
    every prediction carries a mask, its mask and boundary metrics go into `masks`."""
    file = st.file_uploader("COCO results JSON", type=["json"], key=f"preds_{slot}")
    if k in linked_imports and file is None:
        st.caption(f"The logged benchmark compared imported predictions "
                   f"'{linked_imports[k]}': upload that file again.")
    stem = Path(file.name).stem if file else f"model {slot}"
    label = st.text_input("Name", value=linked_imports.get(k, ""), placeholder=stem,
                          key=f"name_{slot}") or stem
    if file is None:
        return label, None
    with ui.showing_errors():
        checked = detections.check_results(file.getvalue(), bench.dataset)
        if checked.refused:
            st.warning(f"{checked.refused} predictions with empty, negative or non-finite "
                       "boxes or scores were refused and not scored.")
        if not checked.results:
            st.warning("The file holds no predictions: every metric is 0.")
        speeds[label] = {"note": "imported: speed not measured"}
        if checked.bad_masks:
            st.warning(f"{checked.bad_masks} masks were malformed or of another size than "
                       "their image and were left out.")
        if checked.all_masks:
            masks[label] = bench.mask_metrics(checked.results, file.getvalue())
        elif checked.masks:
            st.caption(f"{checked.masks} of {len(checked.results)} predictions carry masks; "
                       "mask metrics need one on every prediction.")
        return label, checked.detections
    return label, None


def detector_slot(bench: DetectionBenchmark, choice: str, slot: str, options,
                  speeds: dict[str, dict]) -> tuple[str | None, dict | None]:
    """A slot running a registry detector (or any transformers id) as a background job:
    run, resume, cancel, its progress, and its detections once finished."""
    if choice == OTHER_ID:
        repo = st.text_input("Hugging Face id", key=f"hf_id_{slot}",
                             placeholder="e.g. PekingU/rtdetr_r18vd")
        if not repo:
            return None, None
        try:
            spec = registry.find(repo, "detection")
        except LensError as exc:
            ui.show_error(exc)
            return None, None
    else:
        spec = registry.find(choice, "detection")
    job = jobs.job_for(spec, bench.dataset, options.map_by, fingerprint=bench.fingerprint)
    if job.finished:
        dets, speeds[spec.name] = job.detections(), job.speed()
        st.caption(f"Cached predictions ({sum(map(len, dets.values()))} boxes).")
        failed = job.failed()
        if failed:
            st.warning(f"{len(failed)} images could not be read and count as images with no "
                       f"detections (e.g. {next(iter(failed.values()))}).")
        return spec.name, dets
    if not registry.availability(spec).ready and not registry.hub_reachable():
        st.error(f"Weights for {choice} are not on this machine. On a connected machine run "
                 f"`{spec.fetch_command}` and copy the caches here.")
        return spec.name, None
    job_controls(job, slot, "Inference", options.ray_options)
    return spec.name, None


def job_controls(job, key: str, what: str, ray=None) -> None:
    """Run (or Resume) and Cancel of a background job (`lib.detection.jobs`), and its
    progress, polled only while it runs; the page reruns when it finishes."""
    b1, b2 = st.columns(2)
    if b1.button("Run" if not job.done else "Resume", key=f"run_{key}", disabled=job.running):
        job.start(ray=ray)
    if b2.button("Cancel", key=f"cancel_{key}", disabled=not job.running):
        job.cancel()

    # polls only while the job runs (an idle job costs no reruns); the finished job's
    # st.rerun() redraws the page without the poll
    @st.fragment(run_every=1.0 if job.running else None)
    def progress(job=job):
        if job.running:
            ui.ProgressBar("images")(job.progress)
        elif job.finished:
            st.rerun()
        elif job.error:
            st.error(f"{what} failed: {job.error} (partial results are kept; Resume "
                     "continues).")
        elif job.done:
            st.caption(f"Stopped at {job.done}/{job.total} images; Resume continues.")
    progress()
