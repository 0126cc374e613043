"""Serving many visitors from one process: the fair queue for heavy work and the page-run
log (work)."""
