"""Small builders shared by tests: synthetic videos, COCO files, COCO results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_video(path: Path, frames: int = 12, fps: int = 6, size=(64, 48), codec="mpeg4",
                colors=None) -> Path:
    """Write a clip with PyAV; frame i is filled with colors[i] (default: a grey ramp)."""
    import av
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            color = colors[i] if colors else (i * 20 % 256,) * 3
            arr = np.zeros((h, w, 3), np.uint8)
            arr[:] = color
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_coco(root, anns, images=(("a.png", 1, 100, 100),), cats=((1, "cat"), (2, "dog")),
               make_images=True):
    (root / "images").mkdir(parents=True, exist_ok=True)
    if make_images:
        for name, _, w, h in images:
            Image.new("RGB", (w, h)).save(root / "images" / name)
    data = {"images": [{"id": i, "file_name": n, "width": w, "height": h} for n, i, w, h in images],
            "categories": [{"id": c, "name": n} for c, n in cats],
            "annotations": [{"id": k + 1, "image_id": a[5] if len(a) > 5 else 1,
                             "bbox": list(a[:4]), "category_id": a[4], "area": a[2] * a[3],
                             "iscrowd": 0} for k, a in enumerate(anns)]}
    from lib.detection import datasets
    (root / "ann.json").write_text(json.dumps(data))
    return datasets.load_coco(root / "ann.json", root / "images")


def gt_results(dataset, shift=0.0, drop=0.0, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for a in dataset.data["annotations"]:
        if a.get("iscrowd") or rng.random() < drop:
            continue
        x, y, w, h = a["bbox"]
        out.append({"image_id": a["image_id"], "category_id": a["category_id"],
                    "bbox": [x + shift * w, y + shift * h, w, h],
                    "score": float(rng.uniform(0.1, 1.0))})
    return out


def noisy_detections(coco, seed=0):
    """Jittered, relabelled and duplicated ground truth plus false positives: every branch of
    COCO's matching (crowd regions in the COCO sample, ties, top-100 cut)."""
    rng = np.random.default_rng(seed)
    out = []
    cats = sorted(coco.categories)
    for a in coco.data["annotations"]:
        x, y, w, h = a["bbox"]
        for _ in range(int(rng.integers(0, 3))):
            j = rng.normal(0, 0.12, 4) * [w, h, w, h]
            cat = a["category_id"] if rng.random() > 0.1 else int(rng.choice(cats))
            out.append({"image_id": a["image_id"], "category_id": cat,
                        "bbox": [x + j[0], y + j[1], max(w + j[2], 1), max(h + j[3], 1)],
                        "score": round(float(rng.uniform(0, 1)), 2)})   # ties on purpose
    for image_id in coco.image_ids:
        for _ in range(int(rng.integers(0, 120))):
            out.append({"image_id": image_id, "category_id": int(rng.choice(cats[:3])),
                        "bbox": [*rng.uniform(0, 300, 2), *rng.uniform(5, 150, 2)],
                        "score": float(rng.uniform(0, 0.3))})
    from lib.detection import detections
    return detections.from_coco_results(out)



def lvis_copy(coco):
    """An LVIS-style copy of a COCO dataset: class frequencies, classes checked absent per
    image, classes not labelled exhaustively (a federated dataset)."""
    import copy
    from pathlib import Path

    from lib.detection import datasets
    data = copy.deepcopy(coco.data)
    cats = [c["id"] for c in data["categories"]]
    for k, c in enumerate(data["categories"]):
        c["frequency"] = "rcf"[k % 3]
    for k, im in enumerate(data["images"]):
        present = {a["category_id"] for a in coco.annotations(im["id"])}
        absent = [c for c in cats if c not in present]
        im["neg_category_ids"] = absent[: 2 + k % 5]
        im["not_exhaustive_category_ids"] = sorted(present)[:1] if k % 2 else []
    clean, _ = datasets.validate_coco(data, "lvis.json")
    return datasets.CocoDataset(Path("lvis.json"), Path("."), clean)


# -- wandb leet: the reference reader of .wandb logs in tests ----------------------------------

def leet_json(path, summary: bool) -> str:
    import subprocess
    cmd = ["wandb", "leet", "inspect", "--json"] + (["--summary"] if summary else []) + [str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300).stdout


def leet_summary(path) -> dict:
    """`wandb leet inspect --summary --json` of a log."""
    return json.loads(leet_json(path, summary=True))


def leet_history(path):
    """History rows as `wandb leet inspect --json` prints them."""
    import pandas as pd
    rows = []
    for line in leet_json(path, summary=False).splitlines():
        if '"type":"history"' in line:
            rec = json.loads(line)["history"]
            item = dict(rec.get("item") or {})
            item.setdefault("_step", (rec.get("step") or {}).get("num", len(rows)))
            rows.append(item)
    return pd.DataFrame(rows)


#: A W&B run written live by wandb itself, a step at a time (the live-run tests follow it).
LIVE_WRITER = """
import sys, time, wandb
run = wandb.init(mode="offline", dir=sys.argv[1], project="live", name="live",
                 settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
for step in range(int(sys.argv[2])):
    run.log({"loss": 1 / (step + 1), "step_sq": step * step}, step=step)
    if step % 50 == 49:
        time.sleep(0.3)
run.finish()
"""


def http_error(status: int):
    """What the W&B client raises for an HTTP status: requests' HTTPError in a CommError."""
    import requests
    import wandb.errors
    response = requests.Response()
    response.status_code = status
    return wandb.errors.CommError(f"HTTP {status}", requests.HTTPError(response=response))


def imagecorruptions_reference():
    """`imagecorruptions.corrupt` 1.1.2 (the reference for `lib.media.corruptions`), imported
    from its own wheel (`weather.REFERENCE_WHEEL`: installing it would pull in GUI OpenCV)
    and made runnable on today's libraries: a stand-in for `pkg_resources` (gone from current
    setuptools) that hands out its frost photos, scikit-image's renamed `multichannel`
    argument, NumPy's `np.float_`."""
    import sys
    import tempfile
    import types
    import zipfile

    from lib.media.weather import REFERENCE_WHEEL
    frost = Path(tempfile.mkdtemp(prefix="imagecorruptions-"))
    with zipfile.ZipFile(REFERENCE_WHEEL) as wheel:
        for name in wheel.namelist():
            if name.startswith("imagecorruptions/frost/"):
                wheel.extract(name, frost)
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda package, name: str(frost / "imagecorruptions" / name)
    np.float_ = np.float64
    if str(REFERENCE_WHEEL) not in sys.path:
        sys.path.insert(0, str(REFERENCE_WHEEL))
    before = sys.modules.get("pkg_resources")
    sys.modules["pkg_resources"] = shim          # for the reference's import only
    try:
        import imagecorruptions
        from imagecorruptions import corruptions as ref
    finally:
        if before is None:
            sys.modules.pop("pkg_resources", None)
        else:
            sys.modules["pkg_resources"] = before
    ref.resource_filename = shim.resource_filename
    from skimage.filters import gaussian

    def gaussian_multichannel(image, sigma=1, multichannel=None, **kwargs):
        if multichannel:
            kwargs["channel_axis"] = -1
        return gaussian(image, sigma=sigma, **kwargs)
    ref.gaussian = gaussian_multichannel
    return imagecorruptions.corrupt
