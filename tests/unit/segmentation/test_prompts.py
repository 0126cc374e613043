"""Prompts as a visitor makes them: clicks and drags in displayed pixels, typed edits."""

import numpy as np
import pytest

from lib.core.errors import PromptError
from lib.segmentation import prompts


def test_a_click_on_a_half_size_display_lands_at_twice_the_coordinates():
    value = {"x": 50, "y": 20, "width": 360, "unix_time": 1}
    event, seen = prompts.click_event(value, 720, None)
    assert event == ("point", (100.0, 40.0)) and seen == 1
    assert prompts.click_event(value, 720, seen) == (None, 1)        # the same value again


def test_a_drag_is_a_box_and_a_tiny_drag_is_a_click():
    drag = {"x1": 10, "y1": 10, "x2": 60, "y2": 40, "width": 720, "unix_time": 2}
    assert prompts.click_event(drag, 720, None)[0] == ("box", (10.0, 10.0, 60.0, 40.0))
    jitter = {"x1": 10, "y1": 10, "x2": 12, "y2": 13, "width": 720, "unix_time": 3}
    assert prompts.click_event(jitter, 720, None)[0] == ("point", (10.0, 10.0))
    assert prompts.click_event(None, 720, None) == (None, None)


def test_typed_edits_are_parsed_clipped_and_checked():
    points, box = prompts.parse_edits([(5, 6, True), ("7", "8", 0)], "90, 40, -5, 2", 80, 60)
    assert points == [(5.0, 6.0, 1), (7.0, 8.0, 0)] and box == (0.0, 2.0, 80.0, 40.0)
    assert prompts.parse_edits([], "", 80, 60) == ([], None)


@pytest.mark.parametrize("rows,box,message", [
    ([("x", 1, True)], "", "must be numbers"),
    ([], "1, 2, 3", "four numbers"),
    ([], "1, 2, 3, four", "must be numbers"),
    ([(500, 5, True)], "", "outside the 80 x 60 image"),
    ([], "10, 10, 11, 11", "no area"),
    ([(float("nan"), 5, True)], "", "finite"),
])
def test_bad_edits_say_what_is_wrong(rows, box, message):
    with pytest.raises(PromptError, match=message):
        prompts.parse_edits(rows, box, 80, 60)


def test_zoom_windows_are_square_around_the_box_and_inside_large_images():
    from lib.segmentation.prompts import MIN_ZOOM_SIDE, crop_window, paste_window, zoom_window
    x0, y0, x1, y1 = zoom_window((100, 50, 140, 70), 640, 480, 1.5)
    assert x1 - x0 == y1 - y0 == 60 and (x0 + x1) / 2 == 120 and (y0 + y1) / 2 == 60
    # near an edge: shifted inside; a tiny box: at least MIN_ZOOM_SIDE
    assert zoom_window((600, 0, 640, 40), 640, 480, 2.0) == (560, 0, 640, 80)
    assert zoom_window((10, 10, 12, 12), 640, 480, 1.5)[2] - 0 >= MIN_ZOOM_SIDE
    # larger than the image: it reaches past the edges, padded grey, pasted back exactly
    image = np.arange(30 * 40 * 3, dtype=np.uint8).reshape(30, 40, 3)
    win = zoom_window((0, 0, 40, 30), 40, 30, 1.5)
    crop = crop_window(image, win)
    assert crop.shape == (60, 60, 3) and (crop[0, 0] == 128).all()
    inside = crop[-win[1]:-win[1] + 30, -win[0]:-win[0] + 40]
    assert np.array_equal(inside, image)
    masks = (crop[None, ..., 0] > 100)
    back = paste_window(masks, win, 30, 40)
    assert back.shape == (1, 30, 40) and np.array_equal(back[0], image[..., 0] > 100)
