"""Command line for model weights: which are present, and fetching them on a connected machine.

    python -m lib.weights list
    python -m lib.weights fetch NAME [NAME ...]
    python -m lib.weights fetch --defaults

Fetched weights land in the standard caches (~/.cache/huggingface, ~/.cache/torch), so an
air-gapped machine is prepared by copying those folders.
"""

from __future__ import annotations

import sys

from lib.core import command_line
from lib.core.errors import LensError
from lib.models import registry

#: What `fetch --defaults` downloads: one model per page.
DEFAULTS = ["efficientnet_b0", "facebook/sam2.1-hiera-tiny", "florence-community/Florence-2-base",
            "facebook/detr-resnet-50", "fasterrcnn_resnet50_fpn"]


@command_line.command
def main(argv: list[str] | None = None) -> int:
    parser, sub = command_line.with_commands("python -m lib.weights", __doc__)
    sub.add_parser("list", help="every known model and whether its weights are here")
    f = sub.add_parser("fetch", help="download weights into the standard caches")
    f.add_argument("names", nargs="*")
    f.add_argument("--defaults", action="store_true", help="one default model per page")
    args = parser.parse_args(argv)

    if args.command == "list":
        rows = [(s, registry.availability(s)) for s in registry.all_specs()]
        width = max(len(s.name) for s, _ in rows)
        for spec, avail in rows:
            state = "ready  " if avail.ready else "missing"
            print(f"{state}  {spec.task:<14} {spec.name:<{width}}  {avail.where}")
        return 0

    names = list(args.names) + (DEFAULTS if args.defaults else [])
    if not names:
        parser.error("name at least one model, or pass --defaults")
    failed = 0
    for name in names:
        try:
            spec = registry.find(name)
            print(f"{name}: {registry.fetch(spec)}")
        except LensError as exc:
            failed += 1
            print(f"error: {name}: {' '.join(str(exc).split())}", file=sys.stderr)
        except Exception as exc:  # noqa: BLE001 - hub failures come in many types; go on
            failed += 1
            print(f"error: {name}: download failed ({type(exc).__name__})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
