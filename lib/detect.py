"""`python -m lib.detect`: the detection benchmark command line (`lib.detection.cli`)."""

from lib.detection.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
