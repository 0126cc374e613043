"""Text to tracks over a folder of clips (`lib.segmentation.folder`); the video page tracks
one clip the same way.

    python -m lib.track run --clips DIR --text "person, logo" --out OUT [--every 10]
        [--model demo-segmenter] [--grounder demo-fasterrcnn] [--method points]
        [--threshold 0.3]
        [--engine ray [--address ADDR] [--workers N] [--gpus-per-worker G]]

Per clip under DIR (kept at its relative path under OUT): NAME.tracks.json, the tracks as COCO
video JSON with RLE masks, and NAME.timeline.csv, one row per frame and object seen (frame,
time_s, object, label, area). OUT/tracks.jsonl has a line per finished clip; running again
after a crash tracks only the clips that have none. `--grounder` is a grounding model or a
detector used as a closed-vocabulary grounder (its class names are the words it knows).
`--method points` (point tracking + re-finding) works with any segmenter; `memory` needs a
SAM 2 / EdgeTAM video model with trained weights; `classical` needs no model. `--engine ray`
runs one clip per task on a local Ray with N workers, or the cluster at `--address` (else
RAY_ADDRESS / LENS_RAY_ADDRESS); the folders must be readable and writable there.
"""

from __future__ import annotations

import sys

from lib.core import command_line, ray_cluster
from lib.core.progress import TerminalBar
from lib.segmentation import folder


@command_line.command
def main(argv: list[str] | None = None) -> int:
    parser, sub = command_line.with_commands("python -m lib.track", __doc__)
    run = sub.add_parser("run", help="find and track by text through every clip of a folder")
    run.add_argument("--clips", required=True, help="folder of clips (searched recursively)")
    run.add_argument("--text", required=True, help="what to find, e.g. 'person, logo'")
    run.add_argument("--out", required=True)
    run.add_argument("--every", type=int, default=10, help="ground again every k frames")
    run.add_argument("--model", default="demo-segmenter")
    run.add_argument("--grounder", default="demo-fasterrcnn")
    run.add_argument("--method", choices=folder.METHODS, default="points")
    run.add_argument("--threshold", type=float, default=folder.TrackOptions.threshold,
                     help="the confidence a grounded box needs (0-1)")
    ray_cluster.add_engine_flags(run)
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    ray = ray_cluster.options_from_flags(args)
    options = folder.TrackOptions(args.text, args.every, args.model, args.grounder, args.method,
                                  args.threshold)
    records = folder.run_folder(args.clips, args.out, options, ray,
                                TerminalBar("clips", quiet=args.quiet))
    failed = [r for r in records if "failed" in r]
    for r in failed:
        print(f"failed: {r['clip']}: {r['failed']}", file=sys.stderr)
    print(f"tracked {len(records) - len(failed)} clips ({sum(r.get('objects', 0) for r in records)}"
          f" objects) into {args.out}; {len(failed)} failed")
    return 0
