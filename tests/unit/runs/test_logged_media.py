"""Media a run logged (wandb.Image, wandb.Table), read from its own folder; hostile paths,
files that are not what they claim and decompression bombs refused with a message."""

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from lib import runs
from lib.core.errors import LensError
from lib.runs import logged_media


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    import wandb
    root = tmp_path_factory.mktemp("media")
    run = wandb.init(mode="offline", dir=str(root), project="m",
                     settings=wandb.Settings(silent=True, console="off"))
    for s in range(3):
        img = np.full((24, 40, 3), 60 * s, np.uint8)
        run.log({"samples/pred": wandb.Image(img, caption=f"step {s}"), "loss": 1 / (s + 1),
                 "preds": wandb.Table(columns=["id", "label"], data=[[s, "cat"], [s, "dog"]])},
                step=s)
    run.finish()
    info = runs.load_offline(root)[0][0]
    return info, runs.read_history(Path(info.path))


def test_images_and_tables_as_wandb_wrote_them(logged):
    info, history = logged
    assert logged_media.media_keys(history) == {"samples/pred": "image", "preds": "table"}
    steps = logged_media.media_steps(history, "samples/pred")
    assert [s.step for s in steps] == [0, 1, 2] and steps[2].caption == "step 2"
    image = logged_media.load_image(info, steps[2].path)
    assert image.size == (40, 24) and np.asarray(image)[0, 0, 0] == 120
    table = logged_media.load_table(info, logged_media.media_steps(history, "preds")[1].path)
    assert table.columns.tolist() == ["id", "label"] and table["id"].tolist() == [1, 1]


def _png_header(width, height) -> bytes:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                             0, 0, 0)) + chunk(b"IEND", b""))


def test_hostile_media(logged, tmp_path):
    info, history = logged
    files = Path(info.path).parent / "files"
    with pytest.raises(LensError, match="outside the run's folder"):
        logged_media.load_image(info, "../../../../etc/passwd")
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png_header(8, 8))
    os.symlink(secret, files / "media" / "linked.png")
    with pytest.raises(LensError, match="leads outside its folder"):
        logged_media.load_image(info, "media/linked.png")
    (files / "media" / "fake.png").write_text("<html>not an image</html>")
    with pytest.raises(LensError, match="not a raster image"):
        logged_media.load_image(info, "media/fake.png")
    (files / "media" / "bomb.png").write_bytes(_png_header(40_000, 40_000))
    with pytest.raises(LensError):
        logged_media.load_image(info, "media/bomb.png")
    (files / "media" / "bad.table.json").write_text('{"columns": ["a"], "data": [[1, 2]]}')
    with pytest.raises(LensError, match="not a wandb table"):
        logged_media.load_table(info, "media/bad.table.json")
    with pytest.raises(LensError, match="not in the run's folder"):
        logged_media.load_image(info, "media/missing.png")
