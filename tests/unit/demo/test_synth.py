"""lib.demo.synth: synthetic clips and the command line's flags."""

import numpy as np
import pytest


def test_synthetic_clips_have_occlusions_late_objects_and_consistent_masks(tmp_path):
    import json

    from lib.demo import synth
    from lib.media import masks as mask_ops
    from lib.media import video as video_io
    out = synth.write_clips(tmp_path / "clips", 3, frames=30, size=128, seed=0)
    index = json.loads((out / "clips.json").read_text())["clips"]
    assert len(index) == 3
    for clip in index:
        info = video_io.open_video(out / clip["file"])
        assert (info.width, info.height, info.frame_count) == (128, 128, 30)
        masks = [{int(k): mask_ops.from_rle(r) for k, r in fm.items()} for fm in clip["masks"]]
        for fm in masks:                                 # visible masks never overlap
            stack = np.stack(list(fm.values()))
            assert stack.sum(0).max() <= 1
        late = next(o for o in clip["objects"] if o["id"] == 2)
        assert late["first_frame"] > 0 and all(2 not in fm for fm in masks[:late["first_frame"]])
        area = [fm[0].sum() if 0 in fm else 0 for fm in masks]   # object 0 is passed over
        assert min(area) < 0.8 * area[0]


@pytest.mark.parametrize("flags", [["--frames", "0"], ["--frames", "-5"], ["--size", "8"],
                                   ["--video", "-1"], ["--train", "-2"]])
def test_synth_flags_out_of_range_get_one_error_line(flags, tmp_path, capsys):
    from lib.demo import synth
    code = synth.main(["--out", str(tmp_path), "--train", "1", "--val", "1", "--video", "1",
                       *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: Out of range")
    assert not list(tmp_path.iterdir())                  # nothing written


def test_write_clips_refuses_clips_too_short_to_move(tmp_path):
    from lib.core.errors import InputError
    from lib.demo import synth
    with pytest.raises(InputError, match="frames >= 4"):
        synth.write_clips(tmp_path, 1, frames=2)
