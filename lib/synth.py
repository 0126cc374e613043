"""`python -m lib.synth`: synthetic shapes, COCO data and clips for demos and tests
(`lib.demo.synth`)."""

from lib.demo.synth import main

if __name__ == "__main__":
    raise SystemExit(main())
