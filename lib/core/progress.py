"""The one way long work reports progress: a `Progress` value passed to a callback.

Library functions take `progress: Callable[[Progress], None] | None` and call it with
`Progress(done, total, elapsed_s)`; `Ticker` makes those with the time since it started.
Pages show them with `lib.ui.ProgressBar`, command lines with `TerminalBar` (a progress bar
on standard error); nothing else draws progress.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    elapsed_s: float = 0.0

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def rate(self) -> float | None:
        """Items per second so far."""
        return self.done / self.elapsed_s if self.done and self.elapsed_s > 0 else None

    @property
    def eta_s(self) -> float | None:
        rate = self.rate
        return (self.total - self.done) / rate if rate else None

    def text(self, what: str = "") -> str:
        """e.g. '12/80 images · 3.1/s · 22 s left'."""
        parts = [f"{self.done}/{self.total}" + (f" {what}" if what else "")]
        if self.rate:
            parts.append(f"{self.rate:.1f}/s")
        if self.eta_s is not None and self.done < self.total:
            parts.append(f"{self.eta_s:.0f} s left")
        return " · ".join(parts)


Callback = Callable[[Progress], None]


class Ticker:
    """Counts work done against a total and reports it (no callback: silent)."""

    def __init__(self, total: int, callback: Callback | None = None):
        self.total, self.callback = total, callback
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int | None = None) -> Progress:
        if total is not None:
            self.total = total
        p = Progress(done, self.total, time.perf_counter() - self.started)
        if self.callback:
            self.callback(p)
        return p


class TerminalBar:
    """A `Progress` callback for the command lines: a progress bar on standard error
    (tqdm's), closed once the work is done; `quiet` draws nothing."""

    def __init__(self, what: str, quiet: bool = False):
        self.what, self.quiet = what, quiet
        self._bar = None

    def __call__(self, p: Progress) -> None:
        if self.quiet:
            return
        if self._bar is None:
            import sys

            from tqdm import tqdm  # heavy: imported on first use
            self._bar = tqdm(total=p.total, desc=self.what, file=sys.stderr, leave=True)
        self._bar.total = p.total
        self._bar.update(p.done - self._bar.n)
        if p.done >= p.total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


#: A service's hook around heavy work that is not cached yet: `busy(what)` is entered while it
#: runs (pages pass `ui.busy`, a spinner and the fair queue; scripts and tests pass nothing).
Busy = Callable[[str], AbstractContextManager]


def idle(what: str) -> AbstractContextManager:
    """The `Busy` hook that shows nothing."""
    return contextlib.nullcontext()
