"""`python -m lib.weights`: model weights: list what is on this machine, fetch what is
missing (`lib.models.weights`)."""

from lib.models.weights import main

if __name__ == "__main__":
    raise SystemExit(main())
