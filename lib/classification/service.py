"""Scene classification for one visitor: `ClassificationSession` owns what the Classification
page shows (the classifiers offered, predictions, CAMs and their faithfulness, what-if
versions of an image and its corruption sweep, a labelled folder's evaluation and its
robustness to corruptions, a clip's scenes), the process-wide cache keys they are kept under, and
what the visitor computed last. The page reads widgets, calls it, renders.

Predictions and maps are read-only and shared by every visitor (`cache.shared`, under the
memory budget), keyed by the image's content hash, the model and the method's settings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from lib.classification import cam, classify, faithfulness, robustness, scenes, whatif
from lib.core import paths
from lib.core.progress import Busy, Callback, idle
from lib.media import corruptions, edits, video
from lib.models import cache, registry


@dataclass(frozen=True)
class Offered:
    """A classifier the page offers, and whether it can run here."""
    name: str
    note: str          # ready | needs download | broken: why


class ClassificationSession:
    """One visitor's classification. `busy(what)` wraps heavy work that is not cached yet
    (the page passes the fair queue; scripts pass nothing)."""

    def __init__(self, busy: Busy = idle):
        self.busy = busy
        self.evaluation: tuple[str, classify.EvalResult] | None = None   # (model, result)
        self.video: tuple[Any, list] | None = None     # (clip, model, rate) -> predictions

    # -- models ------------------------------------------------------------------------------
    @staticmethod
    def offered(online: bool) -> list[Offered]:
        """Every classifier a visitor may pick (never a shuffled-label twin: its predictions
        mean nothing): the hub's default first when the hub answers, else the offline ones
        in the registry's order."""
        out = []
        for spec in registry.all_specs("classification"):
            if (spec.manifest or {}).get("shuffled_labels"):
                continue
            note = (f"broken: {spec.error}" if spec.error else
                    "ready" if registry.availability(spec).ready else "needs download")
            out.append(Offered(spec.name, note))
        if online:
            out.sort(key=lambda o: o.name != classify.CURATED_TIMM[0])
        return out

    @staticmethod
    def model(name: str) -> cache.ModelHandle:
        """The classifier, loaded once per process (`cache.load`)."""
        return cache.load(name, "classification")

    @staticmethod
    def loaded(name: str) -> bool:
        return cache.loaded(name, "classification")

    def methods(self, name: str) -> list[str]:
        """The explanation methods that apply to the model."""
        return cache.shared("cam methods", name,
                            lambda: cam.applicable(self.model(name).model.model))

    def layers(self, name: str) -> list[str]:
        """The layers a CAM may target, the model's default first."""
        return cache.shared("cam layers", name,
                            lambda: cam.layer_choices(self.model(name).model.model))

    # -- one image ---------------------------------------------------------------------------
    def predict(self, sha: str, name: str, k: int, image) -> classify.Classification:
        """Top-k classes of an image (keyed by its content hash)."""
        def build():
            with self.busy("Classifying"):
                return classify.classify(self.model(name).model, image, k)[0]
        return cache.shared("prediction", f"{sha}|{name}|{k}", build)

    def explain(self, sha: str, name: str, method: str, target: int, layer: str, image,
                options: tuple = ()) -> cam.CamResult:
        """A CAM of `target` on `layer` with the method's options (sorted pairs)."""
        def build():
            handle = self.model(name)
            with self.busy(method):
                return cam.explain(handle.model, image, method, target, layer, handle.lock,
                                   dict(options))
        return cache.shared("cam", f"{sha}|{name}|{method}|{target}|{layer}|{options}", build)

    def faithfulness_of(self, sha: str, name: str, method: str, target: int, layer: str,
                        options: tuple, image, explanation: cam.CamResult
                        ) -> faithfulness.Faithfulness:
        """How faithful that CAM is to the model (the perturbation measures)."""
        def build():
            handle = self.model(name)
            with self.busy("Faithfulness"):
                return faithfulness.explain_faithfulness(handle.model, image, explanation,
                                                         handle.lock)
        return cache.shared("faithfulness", f"{sha}|{name}|{method}|{target}|{layer}|{options}",
                            build)

    # -- what-if -------------------------------------------------------------------------------
    @staticmethod
    def altered(sha: str, image, corruption: str, severity: int,
                edit: edits.Edit) -> tuple[str, Image.Image]:
        """The image with `edit` applied, then `corruption` ("" for none) at `severity`, and
        the key it is cached and explained under (the clean image's hash and the change)."""
        key = f"{sha}|{corruption}|{severity if corruption else 0}|{edit}"

        def build():
            arr = edits.apply(image, edit)
            if corruption:
                arr = corruptions.corrupt(arr, corruption, severity)
            return Image.fromarray(arr)
        return key, cache.shared("altered", key, build)

    def sweep(self, sha: str, name: str, image, progress: Callback | None = None
              ) -> whatif.Sweep:
        """The image under all 19 corruptions × 5 severities through the model."""
        def build():
            with self.busy("Sweep"):
                return whatif.sweep(self.model(name).model, image, progress=progress)
        return cache.shared("sweep", f"{sha}|{name}", build)

    def folder_robustness(self, name: str, items: list[tuple[str, str]], names: tuple,
                          severities: tuple, progress: Callback | None = None
                          ) -> robustness.FolderRobustness:
        """A labelled folder's images under corruptions through the model (once per
        process for the same images, model and corruptions)."""
        digest = hashlib.sha256(repr((items, names, severities)).encode()).hexdigest()[:16]

        def build():
            with self.busy("Robustness"):
                return robustness.evaluate(self.model(name).model,
                                           [(Path(p), c) for p, c in items], names,
                                           severities, progress)
        return cache.shared("folder robustness", f"{name}|{digest}", build)

    # -- a folder, a clip ----------------------------------------------------------------------
    def evaluate(self, name: str, folder_text: str = "", zip_data: bytes | None = None,
                 progress: Callback | None = None) -> classify.EvalResult:
        """A labelled folder (typed, or an uploaded zip) through the model; kept as this
        visitor's last evaluation."""
        if zip_data is not None:
            folder = paths.extract_zip(zip_data)
        elif folder_text:
            folder = paths.data_path(folder_text, "dir")
        else:
            raise classify.DatasetError("Give a folder path or upload a zip.")
        items = classify.find_labelled_images(folder)
        with self.busy("Evaluation"):
            result = classify.evaluate(self.model(name).model, items, progress=progress)
        self.evaluation = (name, result)
        return result

    def scenes(self, clip: Path, clip_key: Any, name: str, every_s: float,
               progress: Callback | None = None) -> tuple[video.VideoInfo, list]:
        """A clip's frames classified one every `every_s` seconds (once per clip, model and
        rate for this visitor)."""
        info = video.open_video(clip)
        key = (clip_key, name, every_s)
        if self.video is None or self.video[0] != key:
            with self.busy("Video scenes"):
                preds = scenes.classify_frames(self.model(name).model, info, every_s,
                                               progress=progress)
            self.video = (key, preds)
        return info, self.video[1]
