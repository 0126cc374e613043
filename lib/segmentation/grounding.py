"""Text prompts: a phrase grounded to boxes on an image (Florence-2 phrase grounding), which
become box prompts for the segmenter or the tracker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from lib.core.errors import PromptError
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
        phrase = phrase.strip()
        if not phrase:
            raise PromptError("Type what to find, e.g. 'person' or 'logo'.")
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
        return [Region(str(lab), tuple(float(v) for v in box))
                for box, lab in zip(found.get("bboxes", []), found.get("labels", []))]


@builder(Task.GROUNDING, Source.TRANSFORMERS, Source.CHECKPOINT)
def build_grounder(spec: registry.ModelSpec, device: str | None = None) -> Grounder:
    from transformers import (  # heavy: imported on first use
        AutoProcessor,
        Florence2ForConditionalGeneration,
    )
    model, processor, device = load_pretrained(spec, Florence2ForConditionalGeneration,
                                               AutoProcessor, device, half_on_gpu=False)
    return Grounder(spec.name, model, processor, device)


def load_grounder(name: str) -> Grounder:
    return cache.load(name, "grounding").model


def grounder_choices() -> list[tuple[str, bool]]:
    return [(s.name, registry.availability(s).ready) for s in registry.all_specs("grounding")]
