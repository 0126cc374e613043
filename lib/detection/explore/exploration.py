"""What the Dataset tab shows of one set of embeddings: the index, uniqueness,
representativeness and clusters, computed once (shared by every visitor), and the table of
points the map draws, coloured by what a model's report says about each."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lib.detection.explore import maps, neighbours
from lib.detection.explore.embeddings import GROUND_TRUTH, Embeddings

#: what a point can be coloured by (slice fields of the images are added when present)
COLOURS = ("class", "outcome", "error type", "score", "uniqueness", "representativeness",
           "cluster")


@dataclass
class Exploration:
    """One set of embeddings with its index and per-row scores; maps made on demand."""

    emb: Embeddings
    index: neighbours.Index
    uniqueness: np.ndarray
    representativeness: np.ndarray
    cluster: np.ndarray
    _maps: dict[str, np.ndarray] = field(default_factory=dict)

    def mapped(self, method: str) -> bool:
        return method in self._maps

    def map(self, method: str) -> np.ndarray:
        if method not in self._maps:
            self._maps[method] = maps.project(self.emb, method, self.index)
        return self._maps[method]

    def similar(self, row: int, k: int = 10) -> pd.DataFrame:
        """The `k` rows most like `row`: row, image_id, ann_id, category_id, distance."""
        found = self.index.similar(row, k)
        rows = found.rows[found.rows >= 0]
        return pd.DataFrame({"row": rows, "image_id": self.emb.image_ids[rows],
                             "ann_id": self.emb.ann_ids[rows],
                             "category_id": self.emb.labels[rows],
                             "distance": found.distances[found.rows >= 0]})

    def duplicates(self, threshold: float) -> pd.DataFrame:
        """Near-duplicate groups: group, row, image_id, ann_id, distance to the group's
        first row; largest groups first."""
        out = []
        for g, rows in enumerate(neighbours.duplicate_groups(self.index, threshold), 1):
            first = self.index.vectors[rows[0]]
            dist = 1 - self.index.vectors[rows] @ first
            out += [{"group": g, "row": int(r), "image_id": int(self.emb.image_ids[r]),
                     "ann_id": int(self.emb.ann_ids[r]), "distance": float(max(0, d))}
                    for r, d in zip(rows, dist)]
        return pd.DataFrame(out, columns=["group", "row", "image_id", "ann_id", "distance"])

    def leaks(self, other: Embeddings, threshold: float) -> pd.DataFrame:
        """Rows of another split (embedded on this one's basis) that nearly duplicate a row
        here: other_image_id, other_ann_id, image_id, ann_id, distance; nearest first."""
        theirs, ours, dist = neighbours.leaks(self.index, other.vectors, threshold)
        return pd.DataFrame({"other_image_id": other.image_ids[theirs],
                             "other_ann_id": other.ann_ids[theirs],
                             "image_id": self.emb.image_ids[ours],
                             "ann_id": self.emb.ann_ids[ours], "distance": dist})


def explore(emb: Embeddings) -> Exploration:
    index = neighbours.Index(emb.vectors)
    rep, cluster = neighbours.representativeness(emb.vectors)
    return Exploration(emb, index, neighbours.uniqueness(index), rep, cluster)


def points(ex: Exploration, coords: np.ndarray, dataset, report=None,
           score_thr: float = 0.5) -> pd.DataFrame:
    """One row per point: x, y, row, image_id, ann_id, class, uniqueness,
    representativeness, cluster; with a model's `report`: outcome (TP/FN for ground truth,
    TP/FP for its predictions; for images the image's FP + FN count as 'errors'), error type
    (TIDE) and score; and each image attribute of the dataset (slice fields)."""
    e = ex.emb
    categories = dataset.categories
    image_fields = {i: dataset.image_info(i).get("attributes") or {} for i in dataset.image_ids}
    frame = pd.DataFrame({"x": coords[:, 0], "y": coords[:, 1], "row": np.arange(len(e)),
                          "image_id": e.image_ids, "ann_id": e.ann_ids,
                          "class": [categories.get(int(c), "image" if c == 0 else str(c))
                                    for c in e.labels],
                          "uniqueness": ex.uniqueness, "representativeness": ex.representativeness,
                          "cluster": ex.cluster.astype(str)})
    if report is not None:
        frame = frame.join(_outcomes(e, dataset, report, score_thr), on="row")
    for key in sorted({k for f in (image_fields or {}).values() for k in f}):
        frame[key] = [str(image_fields.get(int(i), {}).get(key, "")) for i in e.image_ids]
    return frame


def _outcomes(e: Embeddings, dataset, report, score_thr: float) -> pd.DataFrame:
    """Outcome, error type and score of each row under one model's match table."""
    table = report.table
    rows = np.arange(len(e))
    if e.level == "image":
        counts = report.per_image(score_thr).set_index("image_id")
        errors = (counts["FP"] + counts["FN"]).reindex(e.image_ids, fill_value=0).to_numpy()
        return pd.DataFrame({"errors": errors}, index=rows)
    det = table.above(score_thr)
    gt = table.gt.reset_index(drop=True)
    found = set(det.loc[det["gt"] >= 0, "gt"].astype(int))
    gt_outcome = {(int(i), int(k)): ("TP" if g in found else "FN")
                  for g, (i, k) in enumerate(zip(gt["image_id"], gt["index"]))}
    place = {a["id"]: (i, k) for i in dataset.image_ids for k, a in enumerate(
        a for a in dataset.annotations(i) if not a.get("iscrowd"))}
    det_rows = {(int(i), int(k)): (kind, score) for i, k, kind, score in
                zip(table.det["image_id"], table.det["index"], table.det["kind"],
                    table.det["score"])}
    outcome, kind, score = [], [], []
    for image_id, ann in zip(e.image_ids, e.ann_ids):
        if e.source != GROUND_TRUTH:          # a model's predictions: ann is its index
            k, s = det_rows.get((int(image_id), int(ann)), ("", np.nan))
            outcome.append("" if not k else "TP" if k == "TP" else "FP")
            kind.append(k)
            score.append(s)
        else:                                 # ground truth: ann is the annotation's index
            outcome.append(gt_outcome.get(place.get(int(ann)), ""))
            kind.append("")
            score.append(np.nan)
    return pd.DataFrame({"outcome": outcome, "error type": kind, "score": score}, index=rows)
