"""Scene classification and its explanations.

- `service`: one visitor's classification: models offered, predictions, maps, evaluations.
- `classify`: preprocessing and top-k predictions.
- `cam`: class activation maps with pytorch_grad_cam.
- `methods`, `layers`, `attention`, `occlusion`: the methods offered, target layers,
  attention rollout, occlusion sensitivity.
- `faithfulness`, `ranking`, `sanity`: how faithful a map is, every method ranked, and
  randomisation sanity checks.
- `whatif`: one image under corruptions: the sweep and its flip points.
- `robustness`: a labelled folder under corruptions: error, flip rate, mCE, relative mCE.
- `scenes`: video scene timelines.
"""

# the modules that build models, imported so their builders and names register (found by
# `lib.models.build.discover`, as timm.models imports its model modules)
from lib.classification import classify  # noqa: F401
