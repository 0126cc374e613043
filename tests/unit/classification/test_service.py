"""The Classification page's service without Streamlit, on the packaged ImageNet
EfficientNet-Lite0: what is offered, predictions and maps shared between visitors and equal
to the library's, a folder's evaluation kept for the visitor."""

import pytest

from lib.classification import cam, classify
from lib.classification.service import ClassificationSession
from lib.core.errors import LensError
from lib.demo import samples
from lib.media import images

LITE0 = "EfficientNet-Lite0 ImageNet (packaged)"


def test_offered_classifiers_never_include_a_shuffled_twin_and_put_the_hub_default_first():
    offline = [o.name for o in ClassificationSession.offered(online=False)]
    assert LITE0 in offline and "demo-classifier" in offline
    assert "demo-classifier-shuffled" not in offline
    online = [o.name for o in ClassificationSession.offered(online=True)]
    assert online[0] == classify.CURATED_TIMM[0] and sorted(online) == sorted(offline)


def test_predictions_and_maps_equal_the_library_s_and_are_shared():
    image = images.load_image(samples.sample_bytes("cat (chelsea)"), "cat.png").image
    sha = "sample-under-test"
    a, b = ClassificationSession(), ClassificationSession()
    got = a.predict(sha, LITE0, 3, image)
    lm = a.model(LITE0).model
    assert [p.index for p in got.top] == [p.index for p in classify.classify(lm, image, 3)[0].top]
    assert b.predict(sha, LITE0, 3, image) is got                   # another visitor: shared
    layer = a.layers(LITE0)[0]
    ex = a.explain(sha, LITE0, "GradCAM", got.best.index, layer, image)
    direct = cam.explain(lm, image, "GradCAM", got.best.index, layer)
    assert ex.heatmap == pytest.approx(direct.heatmap, abs=1e-5)


def test_an_evaluation_needs_a_folder_and_is_kept_for_the_visitor(tmp_path, monkeypatch):
    session = ClassificationSession()
    with pytest.raises(LensError, match="Give a folder path"):
        session.evaluate(LITE0)
    monkeypatch.setenv("LENS_DATA_ROOTS", str(tmp_path))
    image = images.load_image(samples.sample_bytes("cat (chelsea)"), "cat.png").image
    for label in ("tabby", "goldfish"):
        (tmp_path / label).mkdir()
        image.save(tmp_path / label / "a.jpg")
    result = session.evaluate(LITE0, str(tmp_path))
    assert session.evaluation == (LITE0, result) and len(result.items) == 2
