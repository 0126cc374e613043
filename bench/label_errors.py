"""The label-error finder on the demo detection set with 10% of its boxes made wrong by a
seeded script (`lib.demo.label_noise`: shifted to IoU 0.3, class swapped, deleted, spurious
added): how many of the injected errors the top 2N flagged boxes hold.

    python bench/label_errors.py [--seed 0] [--fraction 0.1] [--models a,b] [--results F]

The detections come from the demo detectors (run once, cached) or from an imported COCO
results file (`--results`, for a model Lens cannot run). Last line:
`injected N errors: found X% in the top 2N flagged boxes (precision P%); by kind: ...`"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import options
from lib.demo import label_noise, synth
from lib.detection import datasets, detections, jobs
from lib.detection.explore import label_errors
from lib.models import registry


def main() -> None:
    args = options(seed=0, fraction=0.1, models="demo-fasterrcnn,demo-conditional-detr",
                   results="")
    root = synth.demo_val()
    clean = datasets.load_coco(root / "annotations.json", root / "images")
    found = {}
    if args.results:
        checked = detections.check_results(Path(args.results).read_bytes(), clean)
        found[Path(args.results).stem] = checked.detections
    for name in [m for m in args.models.split(",") if m and not args.results]:
        job = jobs.job_for(registry.find(name, "detection"), clean)
        if not job.finished:
            job.start()
            job.wait()
        found[name] = job.detections()
    data, injected = label_noise.inject(json.loads((root / "annotations.json").read_text()),
                                        args.fraction, args.seed)
    noisy = datasets.CocoDataset(root / "annotations.json", root / "images",
                                 datasets.validate_coco(data, "injected")[0])
    budget = 2 * len(injected)
    for names in [[n] for n in found] + ([list(found)] if len(found) > 1 else []):
        flagged = label_errors.find(noisy, {n: found[n] for n in names}).top(budget)
        share, precision, by_kind = label_noise.recall(flagged.to_dict("records"), injected)
        kinds = ", ".join(f"{k} {v:.0%}" for k, v in by_kind.items())
        print(f"{' + '.join(names)}: injected {len(injected)} errors: found {share:.0%} in the "
              f"top {budget} flagged boxes (precision {precision:.0%}); by kind: {kinds}")


if __name__ == "__main__":
    main()
