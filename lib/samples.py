"""Bundled sample photos (scikit-image ships them, so they work offline)."""

from __future__ import annotations

from PIL import Image

SAMPLES = {"cat (chelsea)": "chelsea", "coffee": "coffee", "astronaut": "astronaut",
           "rocket": "rocket"}


def sample_bytes(name: str) -> bytes:
    """PNG bytes of a sample photo, so samples go through the same intake as uploads."""
    import io

    from skimage import data
    buf = io.BytesIO()
    Image.fromarray(getattr(data, SAMPLES[name])()).save(buf, format="PNG")
    return buf.getvalue()
