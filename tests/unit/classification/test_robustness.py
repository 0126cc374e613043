"""Folder robustness: errors and flip rate against classifying each corrupted image alone,
and CE / relative CE against ImageNet-C's formulas written out per severity."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lib.classification import classify, robustness
from lib.core.errors import InputError
from lib.media import corruptions
from tests.unit.classification.test_cam import tiny


def test_errors_and_flip_rate_are_each_image_classified_alone(tmp_path):
    from skimage import data
    model = tiny("resnet18", classes=3, size=48)
    photos = {"c0": [data.chelsea()[::6, ::6], data.coffee()[::6, ::6]],
              "c2": [data.astronaut()[::8, ::8]]}
    for cls, arrs in photos.items():
        (tmp_path / cls).mkdir()
        for k, arr in enumerate(arrs):
            Image.fromarray(arr).save(tmp_path / cls / f"{k}.png")
    (tmp_path / "c0" / "broken.png").write_bytes(b"not a png")
    items = classify.find_labelled_images(tmp_path)
    got = robustness.evaluate(model, items, ["fog", "impulse_noise"], "2,4")
    assert got.images == 3 and len(got.skipped) == 1
    readable = [(p, c) for p, c in items if p.name != "broken.png"]
    pics = [np.asarray(Image.open(p).convert("RGB")) for p, _ in readable]
    truth = np.array([int(c[1]) for _, c in readable])

    def top1(arrs):
        return np.array([classify.classify(model, Image.fromarray(a), 1)[0].best.index
                         for a in arrs])
    clean = top1(pics)
    assert got.clean_error == pytest.approx(np.mean(clean != truth))
    for row in got.errors.itertuples():
        pred = top1([corruptions.corrupt(p, row.corruption, row.severity, seed=k)
                     for k, p in enumerate(pics)])
        assert row.error == pytest.approx(np.mean(pred != truth))
        assert row._4 == pytest.approx(np.mean(pred != clean))   # flip rate


def fake(name, clean, table):
    rows = [{"corruption": c, "severity": s + 1, "error": e, "flip rate": 0.0}
            for c, errs in table.items() for s, e in enumerate(errs)]
    return robustness.FolderRobustness(name, 10, clean, pd.DataFrame(rows))


def test_ce_and_relative_ce_follow_imagenet_c():
    model = fake("m", 0.2, {"fog": [0.3, 0.4, 0.5], "snow": [0.2, 0.2, 0.2]})
    base = fake("b", 0.4, {"fog": [0.5, 0.6, 0.8], "snow": [0.5, 0.7, 0.9]})
    ce = robustness.corruption_error(model, base).per_corruption.set_index("corruption")
    assert ce.loc["fog", "CE"] == pytest.approx((0.3 + 0.4 + 0.5) / (0.5 + 0.6 + 0.8))
    assert ce.loc["fog", "relative CE"] == pytest.approx(
        ((0.3 - 0.2) + (0.4 - 0.2) + (0.5 - 0.2)) / ((0.5 - 0.4) + (0.6 - 0.4) + (0.8 - 0.4)))
    assert ce.loc["snow", "relative CE"] == pytest.approx(0.0)
    both = robustness.corruption_error(model, base)
    assert both.mce == pytest.approx(ce["CE"].mean())
    with pytest.raises(InputError, match="different corruptions"):
        robustness.corruption_error(model, fake("b", 0.4, {"fog": [0.5, 0.6, 0.8]}))
