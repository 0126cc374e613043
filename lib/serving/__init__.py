"""Serving many visitors from one process.

- `fair_queue`: heavy work shares the machine fairly (one queue per process).
- `memory`: the garbage collector kept off what lives as long as the process.
- `page_log`: one JSON line per page run (with LENS_RUN_LOG).
"""
