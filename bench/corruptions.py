"""Every corruption at every severity on a 640×480 photo: Lens (`lib.media.corruptions`) vs
the reference, `imagecorruptions` 1.1.2 (with the tests' shims), in the same run.

    python bench/corruptions.py [--width 640] [--height 480]

Each corruption is timed once per severity on each side (Lens' compiled glass blur is warmed
up first, as a server warms it once). The random corruptions are given the same draws (the
reference's global NumPy state seeded as Lens' `RandomState`), so the deviation compares like
with like; salt-and-pepper noise draws inside scikit-image and is left out of it. Last line:
`19 corruptions x 5 severities: Lens X s, imagecorruptions Y s, ratio R; max deviation from
the reference D` (D in grey levels, 0-255).
"""

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np
from common import options
from PIL import Image
from skimage import data

from lib.media import corruptions
from tests.helpers import imagecorruptions_reference


def main() -> None:
    args = options(width=640, height=480)
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((args.width, args.height)))
    reference = imagecorruptions_reference()
    corruptions.corrupt(photo[:64, :64], "glass_blur", 1)            # numba compiles once
    ours = theirs = 0.0
    deviation = 0
    for name in corruptions.NAMES:
        row = []
        for severity in corruptions.SEVERITIES:
            np.random.seed(severity)
            t0 = time.perf_counter()
            expected = reference(photo, severity=severity, corruption_name=name)
            t1 = time.perf_counter()
            got = corruptions.corrupt(photo, name, severity,
                                      rng=np.random.RandomState(severity))
            t2 = time.perf_counter()
            theirs, ours = theirs + t1 - t0, ours + t2 - t1
            if name != "impulse_noise":
                deviation = max(deviation, int(np.abs(got.astype(int) - expected).max()))
            row.append(f"{t2 - t1:.2f}/{t1 - t0:.2f}")
        print(f"{name:18s} Lens/reference s by severity: {'  '.join(row)}")
    print(f"19 corruptions x 5 severities: Lens {ours:.1f} s, imagecorruptions {theirs:.1f} s, "
          f"ratio {ours / theirs:.2f}; max deviation from the reference {deviation}")


if __name__ == "__main__":
    main()
