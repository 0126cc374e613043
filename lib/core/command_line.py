"""The one way the command lines end: a bad input is one line on stderr and exit status 2.

    if __name__ == "__main__":
        raise SystemExit(main())        # with `main` decorated by @command_line.command

`LensError`s (bad settings among them) and unreadable or unwritable files print `error: <message>`
with no traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from lib.core.errors import LensError


def command(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """Decorate a command line's `main(argv) -> int` so that it ends the one way."""
    @functools.wraps(main)
    def wrapper(argv: list[str] | None = None) -> int:
        return run(main, argv)
    return wrapper


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    try:
        return main(argv)
    except LensError as exc:
        message = str(exc)
    except OSError as exc:
        message = f"{exc.strerror or 'cannot read or write'}: {exc.filename or ''}".strip()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def with_commands(prog: str, doc: str | None) -> tuple[argparse.ArgumentParser, object]:
    """A command line's parser (`prog` as typed, the module's docstring as its help) and the
    sub-parsers its commands are added to (one is required)."""
    parser = argparse.ArgumentParser(prog=prog, description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return parser, parser.add_subparsers(dest="command", required=True)
