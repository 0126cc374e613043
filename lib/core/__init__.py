"""Shared plumbing every package may use. Imports nothing else from lib.

- `settings`: every LENS_* variable, read in one place.
- `errors`: the one LensError family (message and hint).
- `paths`: what a visitor may name on the server (resolved, contained), JSON and zip intake,
  paths as a visitor sees them.
- `links`: the links between pages, one dataclass per page that writes and parses its URL.
- `progress`: the one way long work reports progress.
- `scratch`: the one place for temporary files, capped.
- `journal`: files that survive a kill (appended records, atomic replaces).
- `compiled`: the one way to compile a kernel (numba, cached with Lens' caches).
- `heap`: the C allocator and collections that give freed memory back.
- `command_line`: how command lines parse sub-commands and end (one `error:` line).
- `ray_cluster`: the one way Lens reaches Ray.
- `html_report`: a page's view as one self-contained HTML file.
- `system`: this machine's compute device and library versions.
"""
