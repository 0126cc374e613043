"""Nearest neighbours over embeddings: "more like this", uniqueness, representativeness,
near-duplicate groups and leaks between splits.

The index is faiss' exact inner-product index (`IndexFlatIP`) over the unit vectors of
`embeddings.Embeddings` (their first 128 principal components): cosine distance = 1 − inner
product, exact, nothing to build. Chosen by measured speed at 100,000 vectors on this 2-core
machine (docs/guides/detection.md, "Choosing the index"): faster per query than
scikit-learn's brute force, and no build time (hnswlib's graph is faster per query but took
seconds to minutes to build, and ships as source only).

Scores (FiftyOne Brain's definitions, own implementation):
- uniqueness: 0.6, 0.3, 0.1 times the distances to the 3 nearest neighbours, divided by the
  largest such sum in the set (1 = the most unlike anything else);
- representativeness: k-means clusters (scikit-learn); 1 − the distance to the point's
  cluster centre, divided by its cluster's largest (1 = the centre of a crowd);
- duplicates: groups joined by pairs within a cosine distance threshold (connected
  components of the neighbour graph, scipy);
- leaks: rows of another split within the threshold of a row of this one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lib.core.errors import InputError

K_GRAPH = 10          # neighbours kept per row for duplicates and uniqueness


@dataclass(frozen=True)
class Neighbours:
    """The `k` nearest rows of each query row and their cosine distances."""

    rows: np.ndarray        # (Q, k) int, -1 where fewer rows exist
    distances: np.ndarray   # (Q, k) float, inf where fewer rows exist


class Index:
    """Exact cosine search over unit vectors (faiss `IndexFlatIP`)."""

    def __init__(self, vectors: np.ndarray):
        self.vectors = np.ascontiguousarray(vectors, np.float32)
        self._index = None
        self._graph: Neighbours | None = None

    def __len__(self) -> int:
        return len(self.vectors)

    def __getstate__(self):         # the faiss index is rebuilt, not pickled (cache sizes)
        return {"vectors": self.vectors, "_graph": self._graph, "_index": None}

    @property
    def index(self):
        if self._index is None:
            import faiss  # heavy: imported on first use
            index = faiss.IndexFlatIP(self.vectors.shape[1])
            index.add(self.vectors)
            self._index = index
        return self._index

    def search(self, queries: np.ndarray, k: int) -> Neighbours:
        """The `k` nearest rows of each query vector (unit length, same space)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
        k = max(1, min(int(k), len(self)))
        if not len(self) or not len(queries):
            return Neighbours(np.full((len(queries), 0), -1), np.zeros((len(queries), 0)))
        sims, rows = self.index.search(queries, k)
        distances = np.where(rows >= 0, 1.0 - sims, np.inf).clip(0, 2)
        return Neighbours(rows, distances)

    def similar(self, row: int, k: int = 10) -> Neighbours:
        """The `k` rows most like `row` (itself left out), nearest first."""
        if not 0 <= row < len(self):
            raise InputError(f"Row {row} is not in the embeddings (0–{len(self) - 1}).")
        found = self.search(self.vectors[row], k + 1)
        keep = found.rows[0] != row
        return Neighbours(found.rows[0][keep][:k], found.distances[0][keep][:k])

    def graph(self) -> Neighbours:
        """Every row's `K_GRAPH` nearest other rows (computed once; blocks of 4096 rows)."""
        if self._graph is None:
            rows, dists = [], []
            for start in range(0, len(self), 4096):
                found = self.search(self.vectors[start:start + 4096], K_GRAPH + 1)
                own = np.arange(start, start + len(found.rows))[:, None]
                r = np.where(found.rows == own, -1, found.rows)
                d = np.where(found.rows == own, np.inf, found.distances)
                order = np.argsort(d, axis=1, kind="stable")[:, :K_GRAPH]
                rows.append(np.take_along_axis(r, order, 1))
                dists.append(np.take_along_axis(d, order, 1))
            self._graph = Neighbours(np.concatenate(rows) if rows else np.zeros((0, 0), int),
                                     np.concatenate(dists) if dists else np.zeros((0, 0)))
        return self._graph


def uniqueness(index: Index) -> np.ndarray:
    """Per row in [0, 1]: 0.6, 0.3, 0.1 times its 3 nearest distances, over the set's
    largest; one row alone is unique (1)."""
    if len(index) < 2:
        return np.ones(len(index), np.float32)
    d = index.graph().distances[:, :3]
    d = np.where(np.isfinite(d), d, np.nan)
    d = np.where(np.isnan(d), np.nanmax(d, axis=1, keepdims=True), d)
    weights = np.array([0.6, 0.3, 0.1][:d.shape[1]])
    score = (d * weights).sum(1) / weights.sum()
    top = score.max()
    return (score / top if top > 0 else np.zeros_like(score)).astype(np.float32)


def representativeness(vectors: np.ndarray, clusters: int | None = None,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per row in [0, 1] (1 = the centre of its cluster), and each row's cluster (k-means on
    the unit vectors; about √(n/2) clusters unless given)."""
    n = len(vectors)
    if n < 3:
        return np.ones(n, np.float32), np.zeros(n, np.int64)
    from sklearn.cluster import MiniBatchKMeans  # heavy: imported on first use
    k = int(min(n - 1, clusters or max(2, round(np.sqrt(n / 2)))))
    km = MiniBatchKMeans(k, random_state=seed, n_init=3, batch_size=4096).fit(vectors)
    dist = np.linalg.norm(vectors - km.cluster_centers_[km.labels_], axis=1)
    far = np.zeros(k)
    np.maximum.at(far, km.labels_, dist)
    scale = far[km.labels_]
    score = np.where(scale > 0, 1 - dist / np.where(scale > 0, scale, 1), 1.0)
    return score.astype(np.float32), km.labels_.astype(np.int64)


def duplicate_groups(index: Index, threshold: float) -> list[np.ndarray]:
    """Groups of rows (2 or more, largest first) joined by pairs whose cosine distance is
    at most `threshold` (a pair further than its rows' `K_GRAPH` nearest is not seen)."""
    if len(index) < 2:
        return []
    from scipy.sparse import coo_matrix  # heavy: imported on first use
    from scipy.sparse.csgraph import connected_components  # heavy: imported on first use
    g = index.graph()
    src = np.repeat(np.arange(len(index)), g.rows.shape[1])
    dst, dist = g.rows.ravel(), g.distances.ravel()
    near = (dst >= 0) & (dist <= threshold)
    n = len(index)
    graph = coo_matrix((np.ones(near.sum()), (src[near], dst[near])), shape=(n, n))
    _, label = connected_components(graph, directed=False)
    sizes = np.bincount(label)
    groups = [np.flatnonzero(label == lab) for lab in np.flatnonzero(sizes > 1)]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def leaks(index: Index, other: np.ndarray, threshold: float) -> tuple[np.ndarray, ...]:
    """Rows of another split (`other`: unit vectors on the same basis) within `threshold`
    of a row of this index: (other row, nearest row here, distance), nearest first."""
    if not len(index) or not len(other):
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    found = index.search(other, 1)
    hit = np.flatnonzero(found.distances[:, 0] <= threshold)
    order = hit[np.argsort(found.distances[hit, 0], kind="stable")]
    return order, found.rows[order, 0], found.distances[order, 0]
