"""Progress of a scoring run: a one-line bar (rows/s, ETA) on a terminal, a log line every
`every` seconds elsewhere, so CI logs stay short."""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable, TextIO

log = logging.getLogger("lpm_edge.scoring")


class RowProgress:
    def __init__(self, fraction: Callable[[], float], stream: TextIO | None = None, bar: bool | None = None,
                 every: float = 30.0) -> None:
        self.fraction = fraction  # how much of the input was read, 0..1
        self.stream = stream if stream is not None else sys.stderr
        self.bar = bar if bar is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every if not self.bar else 0.2
        self.rows = 0
        self._start = time.monotonic()
        self._shown = self._start

    def advance(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if now - self._shown >= self.every:
            self._shown = now
            self._show(now)

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = max(1e-9, now - self._start)
        frac = min(1.0, max(0.0, self.fraction()))
        eta = f"~{elapsed / frac - elapsed:.0f} s left" if 0 < frac < 1 else ""
        return f"{self.rows:,} rows, {self.rows / elapsed:,.0f} rows/s, {frac * 100:.0f}% read {eta}".rstrip()

    def _show(self, now: float) -> None:
        if self.bar:
            self.stream.write("\r" + self.line(now).ljust(70))
            self.stream.flush()
        else:
            log.info("scoring: %s", self.line(now))

    def close(self) -> None:
        if self.bar:
            self._show(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
