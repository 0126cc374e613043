"""Text prompts: a phrase grounded to boxes on an image, which become box prompts for the
segmenter or the tracker. Grounders: Florence-2 phrase grounding (open vocabulary, with
weights), and any detector in the registry as a closed-vocabulary grounder (the phrase's
words matched to its class names: offline, the demo detectors know the synthetic shapes)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from lib.core.errors import LensError, PromptError
from lib.models import cache, registry
from lib.models.build import builder
from lib.models.spec import HubModel, Source, Task
from lib.segmentation.segment import load_pretrained


@dataclass(frozen=True)
class Region:
    """One region a phrase was grounded to: its label and xyxy box in image pixels."""

    label: str
    box: tuple[float, float, float, float]


@dataclass
class Grounder(HubModel):
    """Phrase grounding (Florence-2): a phrase to the boxes it names."""

    def boxes(self, image: np.ndarray, phrase: str) -> list[Region]:
        """Each region Florence-2 grounds the phrase to."""
        import torch  # heavy: imported on first use
        split_terms(phrase)                 # PromptError for an empty or overlong phrase
        phrase = phrase.strip()
        task = "<CAPTION_TO_PHRASE_GROUNDING>"
        pil = Image.fromarray(image)
        inputs = self.processor(text=task + phrase, images=pil, return_tensors="pt")
        inputs = {k: (v.to(self.device, self.model.dtype) if v.is_floating_point()
                      else v.to(self.device)) for k, v in inputs.items()}
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=256, num_beams=3,
                                      do_sample=False)
        text = self.processor.batch_decode(ids, skip_special_tokens=False)[0]
        parsed = self.processor.post_process_generation(text, task=task,
                                                        image_size=(pil.width, pil.height))
        found = parsed.get(task, {})
        return [Region(str(lab), tuple(min(max(0.0, float(v)), float(lim))
                                       for v, lim in zip(box, (pil.width, pil.height) * 2)))
                for box, lab in zip(found.get("bboxes", []), found.get("labels", []))]


@dataclass
class OpenVocabGrounder(HubModel):
    """An open-vocabulary detector (OWLv2, Grounding DINO) as a grounder: each term of the
    phrase (comma, 'and' or 'or' separated) is a query; its boxes above `threshold`, best
    first, labelled with the term."""

    threshold: float = 0.3

    def boxes(self, image: np.ndarray, phrase: str) -> list[Region]:
        import torch  # heavy: imported on first use
        terms = split_terms(phrase)
        pil = Image.fromarray(image)
        owl = "owl" in type(self.model).__name__.lower()
        # OWLv2 takes one query per term; Grounding DINO one text, terms ended by periods
        text = [[f"a photo of a {t}" for t in terms]] if owl else [". ".join(terms) + "."]
        # a long term is cut to the text encoder's length (OWLv2's is 16 tokens)
        inputs = self.processor(text=text, images=pil, return_tensors="pt", truncation=True)
        inputs = {k: (v.to(self.device, self.model.dtype) if v.is_floating_point()
                      else v.to(self.device)) for k, v in inputs.items()}
        with torch.inference_mode():
            out = self.model(**inputs)
        # OWLv2 pads the image to a square (bottom and right): its boxes are on that square
        size = [(max(pil.size),) * 2] if owl else [(pil.height, pil.width)]
        if owl:
            found = self.processor.post_process_grounded_object_detection(
                out, threshold=self.threshold, target_sizes=size, text_labels=[terms])[0]
        else:
            found = self.processor.post_process_grounded_object_detection(
                out, inputs["input_ids"], threshold=self.threshold,
                text_threshold=self.threshold, target_sizes=size)[0]
        labels = found.get("text_labels") or found.get("labels")
        order = np.argsort(-found["scores"].float().cpu().numpy(), kind="stable")
        regions = []
        for i in order:
            # Grounding DINO labels a box with the words above text_threshold: its term
            label = str(labels[i])
            term = next((t for t in terms if t in label), terms[0])
            box = [min(max(0.0, float(v)), float(lim)) for v, lim in
                   zip(found["boxes"][i].tolist(), (pil.width, pil.height) * 2)]
            regions.append(Region(term, tuple(box)))
        return regions


@dataclass
class Sam3Grounder(HubModel):
    """SAM 3 (transformers `Sam3Model`): text prompts are its own ("concept" prompts); each
    term's instances above `threshold`, best first, as boxes labelled with the term."""

    threshold: float = 0.5

    def boxes(self, image: np.ndarray, phrase: str) -> list[Region]:
        import torch  # heavy: imported on first use
        terms = split_terms(phrase)
        pil = Image.fromarray(image)
        found = []
        for term in terms:
            inputs = self.processor(images=pil, text=term, return_tensors="pt")
            sizes = inputs.pop("original_sizes").tolist()
            inputs = {k: (v.to(self.device, self.model.dtype) if v.is_floating_point()
                          else v.to(self.device)) for k, v in inputs.items()}
            with torch.inference_mode():
                out = self.model(**inputs)
            result = self.processor.post_process_instance_segmentation(
                out, threshold=self.threshold, mask_threshold=0.5, target_sizes=sizes)[0]
            for score, box in zip(result["scores"].tolist(), result["boxes"].tolist()):
                found.append((score, Region(term, tuple(
                    min(max(0.0, float(v)), float(lim))
                    for v, lim in zip(box, (pil.width, pil.height) * 2)))))
        return [r for _, r in sorted(found, key=lambda x: -x[0])]


def _arch_of(spec: registry.ModelSpec) -> str:
    return f"{spec.arch} {spec.description}".lower().replace("_", "-")


#: phrase grounders on the hub: Florence-2, then the open-vocabulary detectors (id -> what)
GROUNDERS = {"florence-community/Florence-2-base": "Florence-2 phrase grounding",
             "florence-community/Florence-2-large": "Florence-2 phrase grounding",
             "google/owlv2-base-patch16-ensemble": "OWLv2 open-vocabulary detection",
             "IDEA-Research/grounding-dino-tiny": "Grounding DINO open-set detection",
             "facebook/sam3": "SAM 3 text (concept) prompts"}


registry.known(*(registry.ModelSpec(name=i, task="grounding", source="transformers", arch=i,
                                    weights=i, description=d) for i, d in GROUNDERS.items()))


@builder(Task.GROUNDING, Source.TRANSFORMERS, Source.CHECKPOINT)
def build_grounder(spec: registry.ModelSpec, device: str | None = None
                   ) -> Grounder | OpenVocabGrounder | Sam3Grounder:
    """Florence-2, OWLv2, Grounding DINO or SAM 3, by the spec's architecture."""
    import transformers  # heavy: imported on first use
    arch = _arch_of(spec)
    if "sam3" in arch:
        model, processor, device = load_pretrained(spec, transformers.Sam3Model,
                                                   transformers.Sam3Processor, device,
                                                   half_on_gpu=False)
        return Sam3Grounder(spec.name, model, processor, device)
    if "owlv2" in arch or "grounding-dino" in arch:
        cls = (transformers.Owlv2ForObjectDetection if "owlv2" in arch
               else transformers.GroundingDinoForObjectDetection)
        model, processor, device = load_pretrained(spec, cls, transformers.AutoProcessor,
                                                   device, half_on_gpu=False)
        return OpenVocabGrounder(spec.name, model, processor, device)
    model, processor, device = load_pretrained(spec, transformers.Florence2ForConditionalGeneration,
                                               transformers.AutoProcessor, device,
                                               half_on_gpu=False)
    return Grounder(spec.name, model, processor, device)


CLOSED = " (closed vocabulary)"     # a detector used as a grounder: its name + this
MAX_PHRASE = 200                    # characters of a phrase
MAX_TERMS = 10                      # comma-separated things to find at once


def shown_text(text: str) -> str:
    """Visitor text as it may appear in a message: letters, digits, spaces, hyphens."""
    return re.sub(r"[^\w \-]", "", text)[:40]


def split_terms(phrase: str, example: str = "'person' or 'logo'") -> list[str]:
    """The things a phrase asks for (comma, 'and' or 'or' separated, lower case);
    `PromptError` for an empty phrase, or more than MAX_TERMS or MAX_PHRASE characters."""
    phrase = phrase.strip().lower()
    terms = [t.strip() for t in re.split(r",|;|\band\b|\bor\b", phrase) if t.strip()]
    if not terms:
        raise PromptError(f"Type what to find, e.g. {example}.")
    if len(phrase) > MAX_PHRASE or len(terms) > MAX_TERMS:
        raise PromptError(f"Type at most {MAX_TERMS} things to find, comma-separated, in "
                          f"{MAX_PHRASE} characters.")
    return terms


def closed_classes(phrase: str, words: list[str], model: str) -> set[str]:
    """The class names among `words` a phrase asks for (comma, 'and' or 'or' separated;
    plurals accepted); `PromptError` naming the words `model` knows for anything else."""
    terms = split_terms(phrase, " or ".join(f"'{w}'" for w in words[:2]))
    known, wanted = set(words), set()
    for term in terms:
        match = next((w for w in (term, term.removesuffix("s"), term.removesuffix("es"))
                      if w in known), None)
        if match is None:
            raise PromptError(f"'{shown_text(term)}' is not a class {model} knows. It knows: "
                              f"{', '.join(words)}.")
        wanted.add(match)
    return wanted


@dataclass
class DetectorGrounder:
    """A detector as a closed-vocabulary grounder: each term of the phrase (comma, 'and' or
    'or' separated; plurals accepted) must be one of its class names; the regions are its
    detections of those classes above `threshold`, best first."""

    name: str
    detector: Any
    threshold: float = 0.5

    @property
    def words(self) -> list[str]:
        return sorted(n for n in self.detector.labels.values() if n != "__background__")

    def classes(self, phrase: str) -> set[str]:
        """The class names a phrase asks for; `PromptError` for anything else."""
        return closed_classes(phrase, self.words, self.name.removesuffix(CLOSED))

    def boxes(self, image: np.ndarray, phrase: str) -> list[Region]:
        wanted = self.classes(phrase)
        labels = self.detector.labels
        det = self.detector.predict([Image.fromarray(image)], [0], {k: k for k in labels},
                                    self.threshold)[0]
        order = np.argsort(-det.scores, kind="stable")
        return [Region(labels[int(det.class_ids[i])], tuple(float(v) for v in det.xyxy[i]))
                for i in order if labels[int(det.class_ids[i])] in wanted]


def known_words(name: str) -> list[str]:
    """The class names a closed-vocabulary grounder knows, from its registry entry (no model
    is loaded); empty for an open-vocabulary grounder, or where only loading tells."""
    if not name.endswith(CLOSED):
        return []
    try:
        spec = registry.find(name.removesuffix(CLOSED), "detection")
    except LensError:
        return []
    return sorted(n for n in spec.labels if n != "__background__")


THRESHOLD = 0.3         # the confidence a grounded box needs, unless the visitor sets one


def load_grounder(name: str, threshold: float | None = None):
    """The grounder `name` (a grounding model, or a detector + CLOSED), with its confidence
    threshold set to `threshold` (THRESHOLD by default; Florence-2 has none). The model is the
    process's cached one; the threshold is this caller's own."""
    if name.endswith(CLOSED):
        grounder = DetectorGrounder(name, cache.load(name.removesuffix(CLOSED), "detection").model)
    else:
        grounder = cache.load(name, "grounding").model
    if hasattr(grounder, "threshold"):
        grounder = dataclasses.replace(grounder, threshold=THRESHOLD if threshold is None
                                       else float(threshold))
    return grounder


def grounder_choices() -> list[tuple[str, bool]]:
    """(name, ready) of every grounder, those that can run here first."""
    choices = [(s.name, registry.availability(s).ready) for s in registry.all_specs("grounding")]
    choices += [(s.name + CLOSED, True) for s in registry.all_specs("detection")
                if registry.availability(s).ready]
    return sorted(choices, key=lambda c: not c[1])
