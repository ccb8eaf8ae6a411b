"""Progress of long work (distillation, calibration, search, bench, batch scoring): one helper for all.

On a terminal, one redrawn line on stderr (at most ten times a second). Elsewhere (CI logs,
`nohup`, a file) a log line every `every_s` seconds with the count, the rate and the time left,
and one when the work ends, so a log shows that a long run is alive and when it will end.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable, TextIO

EVERY_SECONDS = 30.0  # how often a log line is written when there is no terminal


def duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 04 min'."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Counts work units towards `total`; `stage()` names what runs now.

    desc: what the work is ("distill"); it starts each log line. unit: what is counted.
    total None: the count is not known ahead (rows of a file being read); `fraction()` then tells
    the share done (e.g. of the bytes read), for the percentage and the time left.
    done: units already done before this run (a resumed job); the rate counts only new ones.
    stream, bar: where the bar goes and whether to draw one (default: stderr, when a terminal).
    logger: the logger of the plain lines (default: lpm_edge.<desc>).
    """

    def __init__(
        self, total: int | None, desc: str = "", *, unit: str = "steps", done: int = 0,
        fraction: Callable[[], float] | None = None, stream: TextIO | None = None, bar: bool | None = None,
        every_s: float | None = None, logger: str | None = None, width: int = 30,
    ) -> None:
        self.total = None if total is None else max(1, total)
        self.fraction = fraction if fraction is not None or total is not None else (lambda: 0.0)
        self.desc, self.unit = desc, unit
        self.done = self._start_done = self._bounded(max(0, done))
        self.stream = stream if stream is not None else sys.stderr
        self.bar = bar if bar is not None else bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = EVERY_SECONDS if every_s is None else every_s
        self.log = logging.getLogger(logger or f"lpm_edge.{desc or 'progress'}")
        self.width = width
        self.label = ""
        self.stats: dict[str, float] = {}
        self._start = self._logged = time.monotonic()
        self._drawn = 0.0

    def stage(self, label: str) -> None:
        """Start a named stage (logged as a line when there is no bar)."""
        self.label = label
        if self.bar:
            self._draw(force=True)
        else:
            self.log.info("%s: %s", self.desc, label)

    def update(self, n: int = 1, **stats: float) -> None:
        """Count `n` units as done; `stats` (e.g. loss=0.41) are shown with the count."""
        self.done = self._bounded(self.done + n)
        self.stats = stats or self.stats
        if self.bar:
            self._draw()
        elif time.monotonic() - self._logged >= self.every_s:
            self._logged = time.monotonic()
            self.log.info("%s", self.line())

    advance = update

    def skip(self, n: int = 1) -> None:
        """Count `n` units that took no work (cached): they shorten what is left, not the rate."""
        n = self._bounded(self.done + n) - self.done
        self.done += n
        self._start_done += n

    def timing(self) -> str:
        """'1 min 31 s elapsed, ~18 min 40 s left' (what is left from the rate so far)."""
        elapsed, share = time.monotonic() - self._start, self.share()
        if share >= 1:
            return f"{duration(elapsed)} elapsed"
        left = self.left()
        return f"{duration(elapsed)} elapsed, " + (f"~{duration(left)} left" if left is not None else "time left unknown")

    def share(self) -> float:
        """The share of the work done, 0 to 1."""
        if self.fraction is not None:
            return min(1.0, max(0.0, self.fraction()))
        return self.done / self.total if self.total else 0.0

    def left(self) -> float | None:
        """Seconds left at the pace so far (None before there is a pace)."""
        elapsed = time.monotonic() - self._start
        if self.fraction is not None:  # the pace of the share, as that is all that is known
            share = self.share()
            return elapsed / share - elapsed if share > 0 else None
        rate = self.rate()
        return (self.total - self.done) / rate if rate > 0 and self.total else None

    def _bounded(self, n: int) -> int:
        return n if self.total is None else min(self.total, n)

    def close(self) -> None:
        """End the bar line, or log the final count without a terminal."""
        if self.bar:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
        elif self.done > self._start_done:
            self.log.info("%s", self.line())

    def rate(self) -> float:
        """Units per second in this run."""
        elapsed = time.monotonic() - self._start
        return (self.done - self._start_done) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        """'distill: 120/1600 steps (7.5%), 1.32 steps/s, 1 min 31 s elapsed, ~18 min 40 s left, loss 0.4123'."""
        rate = self.rate()
        each = 1 / rate if rate > 0 else 0.0
        speed = (f"{rate:,.0f} {self.unit}/s" if rate >= 100 else f"{rate:.3g} {self.unit}/s" if rate >= 1 or rate == 0
                 else f"{each:.2g} s each" if each < 10 else f"{duration(each)} each")
        count = f"{self.done}/{self.total} {self.unit}" if self.total else f"{self.done:,} {self.unit}"
        parts = [f"{self.desc}: {count} ({self.share():.1%})", speed, self.timing()]
        parts += [f"{k} {v:.4f}" for k, v in self.stats.items()]
        if self.label:
            parts.append(self.label)
        return ", ".join(parts)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        frac = self.share()
        filled = int(frac * self.width)
        elapsed, eta = now - self._start, self.left() or 0.0
        shown = " ".join(f"{k} {v:.4f}" for k, v in self.stats.items())
        if self.total is None:  # the count and its rate, which the bar cannot show
            shown = f"{self.done:,} {self.unit}, {self.rate():,.0f} {self.unit}/s {shown}"
        tail = f"{self.desc} {shown} {self.label}".strip()
        line = (f"\r[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% "
                f"{elapsed:5.0f}s elapsed, ~{eta:4.0f}s left  {tail[:48]:<48}")
        self.stream.write(line)
        self.stream.flush()
