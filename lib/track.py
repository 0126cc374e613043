"""`python -m lib.track`: text to tracks over a folder of clips (lib/segmentation/track_command)."""

from lib.segmentation.track_command import main

if __name__ == "__main__":
    raise SystemExit(main())
