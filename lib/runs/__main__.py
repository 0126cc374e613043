"""The runs command line: `python -m lib.runs export PATH --format csv|json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from lib.core import command_line
from lib.runs.compare import cell, export_rows
from lib.runs.offline import load_offline


@command_line.command
def main(argv: list[str] | None = None) -> int:
    parser, sub = command_line.with_commands("python -m lib.runs", __doc__)
    ex = sub.add_parser("export", help="one row (CSV) or object (JSON) per run under PATH")
    ex.add_argument("path")
    ex.add_argument("--format", choices=["csv", "json"], default="csv")
    ex.add_argument("--out", help="write here instead of standard output")
    args = parser.parse_args(argv)
    infos, problems = load_offline(args.path)
    for p in problems:
        print(f"skipped {p.path}: {p.message}", file=sys.stderr)
    rows = export_rows(infos)
    if args.format == "json":
        text = json.dumps(rows, indent=2, default=str)
    else:
        frame = pd.DataFrame([{k: cell(v) for k, v in r.items()} for r in rows])
        text = frame.to_csv(index=False)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0 if infos or not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
