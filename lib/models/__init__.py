"""Models: the spec and catalogue (registry), local checkpoint folders, the process-wide
cache under one memory budget (cache.load: the one way to load a model), and weight fetching."""
