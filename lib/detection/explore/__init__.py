"""The whole dataset between single predictions and whole-set numbers (the Detection page's
Dataset tab).

- `embeddings`: a model's image and box vectors from one pass per image (`Embedder`), on
  their principal axes (`Basis`).
- `embedding_job`: embedding a dataset as a resumable job of the inference engine.
- `neighbours`: the faiss index: more like this, uniqueness, representativeness,
  near-duplicates, leaks between splits.
- `maps`: the 2-D map (PCA or UMAP).
- `exploration`: one set of embeddings with its index and scores; the points the map draws.
- `label_errors`: the annotations most likely wrong, from models' predictions; COCO export.
"""
