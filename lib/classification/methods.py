"""The explanation methods Lens offers: every CAM class of the installed pytorch_grad_cam
(a class the installed version lacks is hidden), the extra arguments each takes, and how
`lib.classification.cam` runs it."""

from __future__ import annotations

from dataclasses import dataclass

from lib.classification.layers import _is_channels_last_model, default_target_layer
from lib.core.errors import ExplainError

FAST, LIBRARY, ATTENTION, OCCLUSION = "fast", "library", "attention", "occlusion"


@dataclass(frozen=True)
class Option:
    """An extra argument a method takes, with its default and what a widget offers."""

    name: str
    default: object
    choices: tuple = ()              # fixed choices, or (low, high) for a number
    at: str = "init"                 # passed to the method's constructor ("init") or call


@dataclass(frozen=True)
class Method:
    """One explanation method: the pytorch_grad_cam class behind it and how Lens runs it.

    `path`: FAST shares one forward pass (and a backward through only the layers after the
    target) among every method that reads the layer's activations and gradients, then lets
    the library's own method object turn them into a map; LIBRARY calls the library as is
    (methods with their own forward passes); ATTENTION is attention rollout for ViTs;
    OCCLUSION slides a patch over the image (`lib.classification.occlusion`).
    """

    name: str
    cls: str
    path: str = FAST
    gradients: bool = True
    options: tuple[Option, ...] = ()
    note: str = ""

    def defaults(self) -> dict:
        return {o.name: o.default for o in self.options}


CATALOGUE: tuple[Method, ...] = (
    Method("GradCAM", "GradCAM"),
    Method("GradCAM++", "GradCAMPlusPlus"),
    Method("XGradCAM", "XGradCAM"),
    Method("LayerCAM", "LayerCAM"),
    Method("HiResCAM", "HiResCAM"),
    Method("EigenCAM", "EigenCAM", gradients=False),
    Method("EigenGradCAM", "EigenGradCAM"),
    Method("GradCAMElementWise", "GradCAMElementWise"),
    Method("SegEigenCAM", "SegEigenCAM"),
    Method("KPCA-CAM", "KPCA_CAM", gradients=False, options=(
        Option("kernel", "sigmoid", ("sigmoid", "rbf", "poly", "cosine", "linear")),)),
    Method("FEM", "FEM", gradients=False, options=(Option("k", 2.0, (0.5, 4.0)),)),
    Method("ShapleyCAM", "ShapleyCAM", LIBRARY, note="gradient and Hessian-vector product"),
    Method("FinerCAM", "FinerCAM", LIBRARY, options=(Option("alpha", 1.0, (0.0, 2.0), "call"),),
           note="against the most similar classes"),
    Method("RefineCAM", "RefineCAM", LIBRARY, note="GradCAM++ over the layer and two stages "
                                                   "before it"),
    Method("FullGrad", "FullGrad", LIBRARY, note="every bias layer; ignores the target layer"),
    Method("ScoreCAM", "ScoreCAM", LIBRARY, gradients=False, note="one forward per channel"),
    Method("AblationCAM", "AblationCAM", LIBRARY, gradients=False,
           note="one forward per channel"),
    Method("SESS", "SESS", LIBRARY, options=(Option("num_scales", 3, (1, 12)),),
           note="GradCAM over scaled, sliding patches"),
    Method("Attention rollout", "", ATTENTION, gradients=False,
           note="ViTs only; class-agnostic (Abnar & Zuidema 2020)"),
    Method("Occlusion", "", OCCLUSION, gradients=False,
           note="a patch slid over the image: the drop in the class's probability"),
)
#: Methods slow enough (many forward passes) that a page says so before running them.
SLOW = {"ScoreCAM", "AblationCAM", "FullGrad", "SESS", "Occlusion"}


def installed() -> dict[str, Method]:
    """Name -> method, for the methods the installed pytorch_grad_cam has (others hidden)."""
    import pytorch_grad_cam  # heavy: imported on first use
    return {m.name: m for m in CATALOGUE if not m.cls or hasattr(pytorch_grad_cam, m.cls)}


def method(name: str) -> Method:
    """The method of that name; a clear error for a name Lens does not know (e.g. from a URL)."""
    found = installed().get(name)
    if found is None:
        shown = name if len(name) <= 40 and name.isprintable() else "that name"
        raise ExplainError(f"Unknown CAM method '{shown}'; one of {', '.join(installed())}.")
    return found


def is_vit(model) -> bool:
    """A timm ViT-like model whose blocks have a standard self-attention (`attn.qkv`)."""
    blocks = getattr(model, "blocks", None)
    return bool(blocks) and hasattr(model, "num_prefix_tokens") and all(
        hasattr(getattr(b, "attn", None), "qkv") for b in blocks)


def applicable(model) -> list[str]:
    """The installed methods that apply to this model, in catalogue order."""
    try:
        default_target_layer(model)
        has_layer = True
    except ExplainError:
        has_layer = False
    vit = is_vit(model)
    convs = any(type(m).__name__ == "Conv2d" for m in model.modules())
    out = []
    for m in installed().values():
        if m.path == ATTENTION:
            ok = vit
        elif m.name == "FullGrad":
            ok = convs and not vit and not _is_channels_last_model(model)
        else:
            ok = has_layer
        if ok:
            out.append(m.name)
    return out


FAST_METHODS = {m.name for m in CATALOGUE if m.path == FAST}
