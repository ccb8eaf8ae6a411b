"""A progress bar on stderr when it is a terminal; plain log lines (one per stage) otherwise."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

log = logging.getLogger("lpm_edge.bench")


class Progress:
    """Counts work units towards `total`; `stage()` names what runs now.

    On a terminal it redraws one line at most ten times a second; elsewhere (CI logs, files)
    it only logs each stage, so logs stay readable.
    """

    def __init__(self, total: int, stream: TextIO | None = None, bar: bool | None = None, width: int = 30) -> None:
        self.total = max(1, total)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.bar = bar if bar is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.label = ""
        self._start = time.monotonic()
        self._drawn = 0.0

    def stage(self, label: str) -> None:
        """Start a named stage (logged as a line when there is no bar)."""
        self.label = label
        if self.bar:
            self._draw(force=True)
        else:
            log.info("bench: %s", label)

    def advance(self, n: int = 1) -> None:
        """Count `n` units of work as done."""
        self.done = min(self.total, self.done + n)
        if self.bar:
            self._draw()

    def close(self) -> None:
        """Finish the bar line (a no-op without a bar)."""
        if self.bar:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        frac = self.done / self.total
        filled = int(frac * self.width)
        elapsed = now - self._start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        line = (f"\r[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% "
                f"{elapsed:5.0f}s elapsed, ~{eta:4.0f}s left  {self.label[:40]:<40}")
        self.stream.write(line)
        self.stream.flush()
