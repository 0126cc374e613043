"""lib.plots: pure figure builders."""


import numpy as np
import pytest

from lib import plots


def test_figure_builders_are_pure():
    bar = plots.topk_bar(["a", "b"], [0.7, 0.2])
    assert list(bar.data[0].y) == ["b", "a"] and list(bar.data[0].x) == pytest.approx([20, 70])
    heat = plots.confusion_heatmap(np.array([[1, 2], [3, 4]]), ["x", "y"], ["x", "y"])
    assert heat.data[0].z.tolist() == [[1, 2], [3, 4]]
    tl = plots.scene_timeline([0, 1], ["a", "b"], [0.9, 0.8], [(0, 1, "a"), (1, 2, "b")])
    assert len(tl.data) == 3
