"""Shared plumbing every package may use: settings (every LENS_* variable), errors (one
LensError family), progress, typed paths and JSON, scratch files, durable files (journal),
command-line wrapper, system facts. Imports nothing else from lib."""
