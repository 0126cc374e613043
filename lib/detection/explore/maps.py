"""The 2-D map of embeddings: PCA (the first two principal coordinates, already computed
with the vectors: instant) or UMAP (umap-learn, on the unit vectors, with the neighbour
graph taken from the faiss index instead of UMAP's own approximate search)."""

from __future__ import annotations

import warnings

import numpy as np

from lib.core.errors import InputError
from lib.detection.explore.embeddings import Embeddings
from lib.detection.explore.neighbours import Index

METHODS = ("PCA", "UMAP")
UMAP_NEIGHBOURS = 15


def project(emb: Embeddings, method: str, index: Index | None = None,
            seed: int = 0) -> np.ndarray:
    """(N, 2) float32 coordinates of every row."""
    if method not in METHODS:
        raise InputError(f"Unknown map '{method}'; choose one of {', '.join(METHODS)}.")
    n = len(emb)
    if method == "PCA" or n < UMAP_NEIGHBOURS + 2:     # too few points for UMAP's graph
        coords = emb.coords if emb.coords is not None else emb.vectors[:, :2]
        out = np.zeros((n, 2), np.float32)
        out[:, :coords.shape[1]] = coords[:, :2]
        return out
    import umap  # heavy: imported on first use (numba compiles on the first map)
    index = index or Index(emb.vectors)
    found = index.search(emb.vectors, UMAP_NEIGHBOURS)
    reducer = umap.UMAP(n_neighbors=UMAP_NEIGHBOURS, metric="cosine", random_state=seed,
                        n_jobs=1, precomputed_knn=(found.rows, found.distances, None),
                        low_memory=True, verbose=False)
    with warnings.catch_warnings():     # "no NNDescent index": Lens never transforms new data
        warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
        return reducer.fit_transform(emb.vectors).astype(np.float32)
