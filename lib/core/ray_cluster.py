"""The one way Lens reaches Ray: a local Ray started once per process, or the cluster at an
address (`--address`, `LENS_RAY_ADDRESS`, or Ray's own `RAY_ADDRESS`). Used by the dataset-scale
jobs (detection images, tracking clips); Ray is imported only here, and only when one runs.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from lib.core import errors, settings

_STARTED_LOCAL: int | None = None


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide to run."""

    address: str | None = None      # None: a local Ray on this machine
    workers: int = 2                # actors (each loads the model once)
    gpus_per_worker: float = 0.0
    threads_per_worker: int = 1     # torch threads inside each actor


def _check_reachable(address: str) -> None:
    """A clear message at once when nothing listens at host:port (Ray would retry for long)."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
    except (OSError, ValueError):
        raise errors.ModelError(
            f"No Ray cluster answers at '{address}'.",
            "Start one with `ray start --head` (then `ray start --address=HEAD:6379` on each "
            "worker machine), or run on this server instead.") from None


def connect(options: RayOptions) -> None:
    """Join the cluster (or start a local one) once per process."""
    global _STARTED_LOCAL
    import ray  # heavy: imported on first use
    if ray.is_initialized():
        return
    env = {"env_vars": {"PYTHONPATH": str(settings.PROJECT_ROOT)}}
    try:
        if options.address:
            _check_reachable(options.address)
            ray.init(address=options.address, log_to_driver=False, logging_level="WARNING",
                     runtime_env={"working_dir": str(settings.PROJECT_ROOT),
                                  "excludes": [".git", "artifacts", "samples", "docs"]})
        else:
            ray.init(num_cpus=options.workers * options.threads_per_worker,
                     include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                     object_store_memory=256 * 2**20, runtime_env=env)
            _STARTED_LOCAL = options.workers
    except errors.LensError:
        raise
    except Exception as exc:  # noqa: BLE001 - Ray raises many types when it cannot start
        raise errors.ModelError(f"Ray could not start or connect ({type(exc).__name__}: "
                                f"{str(exc)[:200]}).", "Run on this server instead.") from None
    import ray.data  # heavy: imported on first use
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


def default_options() -> RayOptions:
    """From the settings: LENS_RAY_ADDRESS (else Ray's RAY_ADDRESS), LENS_RAY_WORKERS."""
    s = settings.get()
    return RayOptions(address=s.ray_address or os.environ.get("RAY_ADDRESS") or None,
                      workers=s.ray_workers)


def add_engine_flags(parser) -> None:
    """The engine flags every dataset-scale command line takes (`lib.detect run`,
    `lib.track run`)."""
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS, "
                                          "LENS_RAY_ADDRESS, else a local Ray)")
    parser.add_argument("--workers", type=int, default=2, help="Ray actors")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--threads-per-worker", type=int, default=1)


def options_from_flags(args) -> RayOptions | None:
    """The Ray options the engine flags ask for (None: run on this machine); `InputError`
    for impossible widths."""
    if args.workers < 1 or args.threads_per_worker < 1 or args.gpus_per_worker < 0:
        raise errors.InputError("--workers and --threads-per-worker must be at least 1, "
                                "--gpus-per-worker at least 0.")
    if args.engine != "ray":
        return None
    return RayOptions(args.address or default_options().address, args.workers,
                      args.gpus_per_worker, args.threads_per_worker)
