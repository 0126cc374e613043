"""`python -m lib.train`: training classifiers, detectors and the demo pack
(`lib.training.train`)."""

from lib.training.train import main

if __name__ == "__main__":
    raise SystemExit(main())
