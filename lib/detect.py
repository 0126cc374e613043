"""`python -m lib.detect`: the detection benchmark command line (`lib.detection.detect_command`)."""

from lib.detection.detect_command import main

if __name__ == "__main__":
    raise SystemExit(main())
