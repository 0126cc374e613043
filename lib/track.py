"""`python -m lib.track`: text to tracks over a folder of clips (`lib.segmentation.cli`)."""

from lib.segmentation.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
