"""Where, what, when: which tracked object is on screen on which frames, how large, for how
long. Read from a tracker's masks on disk (areas from the RLE by pycocotools, never decoded),
one tracked frame at a time."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["frame", "time_s", "object", "label", "area"]


def presence(tracker) -> pd.DataFrame:
    """One row per tracked frame and object visible on it: frame, time_s, object, label, area
    (pixels). With a processing rate below the clip's, only the tracked frames are rows."""
    from pycocotools import mask as mask_utils  # heavy: imported on first use
    rows = []
    names = {o: obj.name for o, obj in tracker.objects.items()}
    fps = tracker.info.fps or 1.0
    for frame in tracker.store.frames():
        for obj, rle in sorted(tracker.store.get(frame).items()):
            counts = rle["counts"]
            area = int(mask_utils.area({"size": rle["size"], "counts": counts.encode("ascii")
                                        if isinstance(counts, str) else counts}))
            if area and obj in names:
                rows.append((frame, frame / fps, obj, names[obj], area))
    return pd.DataFrame(rows, columns=COLUMNS)


def gaps(frames, every: int = 1) -> list[tuple[int, int]]:
    """The (first, last) frames of each stretch an object was not seen between two frames it
    was (hidden, then found again); `frames` are the tracked frames it was seen on."""
    seen = sorted(set(int(f) for f in frames))
    return [(a + 1, b - 1) for a, b in zip(seen, seen[1:]) if b - a > every]


def _spans(spans: list[tuple[int, int]]) -> str:
    return ", ".join(f"{a}" if a == b else f"{a}–{b}" for a, b in spans)


def screen_time(tracker, rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per object: label, seconds on screen, first and last frame seen, frames seen, mean
    area, the share of the clip it is on screen, and the frames it was hidden between two
    sightings (found again after); the most on screen first."""
    rows = presence(tracker) if rows is None else rows
    every, fps = tracker.every, tracker.info.fps or 1.0
    out = []
    for obj, tracked in tracker.objects.items():
        mine = rows[rows["object"] == obj]
        seen = len(mine)
        out.append({"object": obj, "label": tracked.name,
                    "screen time (s)": round(seen * every / fps, 2),
                    "first frame": int(mine["frame"].min()) if seen else None,
                    "last frame": int(mine["frame"].max()) if seen else None,
                    "frames seen": seen * every,
                    "mean area (px)": round(float(mine["area"].mean()), 1) if seen else 0.0,
                    "share of clip (%)": round(100 * min(1.0, seen * every
                                                         / max(1, tracker.num_frames)), 1),
                    "hidden, found again (frames)": _spans(gaps(mine["frame"], every))})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    return table.sort_values(["screen time (s)", "object"], ascending=[False, True],
                             kind="stable").reset_index(drop=True)
