"""Models: every model Lens knows, checked and built one way.

- `registry`: the package's interface: find, check availability, build.
- `spec`: `ModelSpec` and `HubModel`, the base of every loaded wrapper.
- `catalogue`: every model Lens can name: the registered ones, typed ids, `checkpoints/`.
- `checkpoints`: local checkpoint folders, manifests, safe loading.
- `sources`: where weights come from and how a connected machine fetches them.
- `build`: builders and model names registered next to their model code (`@builder`,
  `known`), found by importing lib's packages (`discover`).
- `cache`: models and shared state loaded once per process under one memory budget
  (`cache.load`: the one way to load a model).
- `weights`: the command line `python -m lib.weights`.
"""
