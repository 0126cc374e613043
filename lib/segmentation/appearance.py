"""What a tracked object looks like, for point tracking (`lib.segmentation.point_track`): a
colour histogram, the segmenter's own embedding averaged inside the mask, and the colour rules
that keep masks apart where objects meet."""

from __future__ import annotations

import numpy as np

LIKELIER = 4             # a pixel this much likelier another's colour than ours is not ours
RING = 6                 # pixels around the first mask whose colours are its surroundings


def _bins(pixels: np.ndarray) -> np.ndarray:
    """Each RGB pixel's bin in a 6×6×6 colour histogram."""
    q = (pixels[..., :3] // 43).astype(np.int32)
    return q[..., 0] * 36 + q[..., 1] * 6 + q[..., 2]


def colours(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A normalised 6×6×6 RGB histogram of the pixels under `mask`."""
    h = np.bincount(_bins(image[mask]), minlength=216).astype(float)
    return h / max(1.0, h.sum())


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya coefficient of two histograms: 1 alike, 0 nothing in common."""
    return float(np.sqrt(a * b).sum())


def pooled_features(embedding, mask: np.ndarray) -> np.ndarray | None:
    """A segmenter's coarsest image embedding (1 x C x h x w) averaged inside `mask` (its
    share of each embedding cell as the weight), unit length; None for an empty mask."""
    import cv2  # heavy: imported on first use
    feats = embedding[0].float().cpu().numpy()                  # C x h x w
    weight = cv2.resize(mask.astype(np.float32), feats.shape[:0:-1], interpolation=cv2.INTER_AREA)
    total = float(weight.sum())
    if total <= 0:
        return None
    v = (feats * weight).reshape(len(feats), -1).sum(1) / total
    return v / max(1e-6, float(np.linalg.norm(v)))


#: the embedding's share of a likeness (the rest: colour); a segmenter whose manifest says
#: `"track_appearance": "colour"` (the demo segmenter of flat synthetic shapes) uses colour alone
FEATURE_WEIGHT = 0.8


def separate(image: np.ndarray, out: dict[int, tuple[np.ndarray, float]],
             looks: dict[int, np.ndarray], around: dict[int, np.ndarray],
             fixed: dict[int, np.ndarray] | None = None) -> None:
    """Each mask keeps only the pixels whose colour is not LIKELIER another object's, or
    its surroundings', than its own (by their colour histograms): where two shapes meet
    the segmenter's mask often spills onto the other, and the back object's visible part
    is what the front one leaves. A mask that would lose half itself is kept as it is.
    Then each takes in the pixels bordering it (and no other mask) whose colour is
    LIKELIER its own than another's: the segmenter's coarse masks miss thin tips and
    stripes. `looks` and `around` are each object's colour histogram and its surroundings';
    `fixed` masks stay as they are but count as others."""
    import cv2  # heavy: imported on first use

    def theirs(o: int, bins: np.ndarray) -> np.ndarray:
        rivals = [looks[p] for p in looks if p != o] + [around[o]]
        return np.max([h[bins] for h in rivals], axis=0)

    for o, (mask, sim) in list(out.items()):
        bins = _bins(image[mask])
        kept = mask.copy()
        kept[mask] = theirs(o, bins) <= LIKELIER * looks[o][bins]
        if kept.sum() >= 0.5 * mask.sum():
            out[o] = (kept, sim)
    separated = {**(fixed or {}), **{o: mask for o, (mask, _) in out.items()}}
    for o, (mask, sim) in list(out.items()):
        border = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        border &= ~mask
        for p, other in separated.items():
            if p != o:
                border &= ~other
        bins = _bins(image[border])
        grown = mask.copy()
        grown[border] = looks[o][bins] > LIKELIER * theirs(o, bins)
        out[o] = (grown, sim)


class Looks:
    """What each tracked object looks like, learnt from its first mask: its colour histogram,
    its surroundings' (a ring RING pixels wide), and the segmenter's embedding pooled inside
    the mask."""

    def __init__(self, segmenter):
        self.segmenter = segmenter
        self.colour: dict[int, np.ndarray] = {}
        self.around: dict[int, np.ndarray] = {}
        self.feature: dict[int, np.ndarray] = {}

    def learn(self, o: int, image: np.ndarray, mask: np.ndarray) -> None:
        import cv2  # heavy: imported on first use
        self.colour[o] = colours(image, mask)
        ring = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8),
                          iterations=RING).astype(bool) & ~mask
        self.around[o] = colours(image, ring)
        feat = self.features(image, mask)
        if feat is not None:
            self.feature[o] = feat

    def features(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """The segmenter's embedding of `image` pooled inside `mask` (None: it has none)."""
        if getattr(self.segmenter, "kind", "") != "sam2" or \
                getattr(self.segmenter, "appearance", "features") != "features":
            return None
        with self.segmenter.lock:
            emb = self.segmenter.embed(image)
        return pooled_features(emb[-1] if isinstance(emb, (list, tuple)) else emb, mask)

    def likeness(self, o: int, image: np.ndarray, mask: np.ndarray) -> float:
        """How much `mask` looks like object `o`, 0 to 1: its embedding's cosine with the
        object's (weight FEATURE_WEIGHT) and its colours' (the rest); colours alone where the
        segmenter has no embedding."""
        colour = similarity(colours(image, mask), self.colour[o])
        ref = self.feature.get(o)
        if ref is None:
            return colour
        feat = self.features(image, mask)
        cos = 0.0 if feat is None else max(0.0, float(feat @ ref))
        return FEATURE_WEIGHT * cos + (1 - FEATURE_WEIGHT) * colour

    def separate(self, image: np.ndarray, out: dict[int, tuple[np.ndarray, float]],
                 fixed: dict[int, np.ndarray] | None = None) -> None:
        """`separate` with these objects' colours."""
        separate(image, out, self.colour, self.around, fixed)
