"""Progress of long work (distillation, calibration, search, bench): one helper for all of them.

On a terminal, one redrawn line on stderr (at most ten times a second). Elsewhere (CI logs,
`nohup`, a file) a log line every `every_s` seconds with the count, the rate and the time left,
and one when the work ends, so a log shows that a long run is alive and when it will end.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

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
    done: units already done before this run (a resumed job); the rate counts only new ones.
    stream, bar: where the bar goes and whether to draw one (default: stderr, when a terminal).
    logger: the logger of the plain lines (default: lpm_edge.<desc>).
    """

    def __init__(
        self, total: int, desc: str = "", *, unit: str = "steps", done: int = 0, stream: TextIO | None = None,
        bar: bool | None = None, every_s: float | None = None, logger: str | None = None, width: int = 30,
    ) -> None:
        self.total = max(1, total)
        self.desc, self.unit = desc, unit
        self.done = self._start_done = min(self.total, max(0, done))
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
        self.done = min(self.total, self.done + n)
        self.stats = stats or self.stats
        if self.bar:
            self._draw()
        elif time.monotonic() - self._logged >= self.every_s:
            self._logged = time.monotonic()
            self.log.info("%s", self.line())

    advance = update

    def skip(self, n: int = 1) -> None:
        """Count `n` units that took no work (cached): they shorten what is left, not the rate."""
        n = min(n, self.total - self.done)
        self.done += n
        self._start_done += n

    def timing(self) -> str:
        """'1 min 31 s elapsed, ~18 min 40 s left' (what is left from the rate so far)."""
        elapsed, rate = time.monotonic() - self._start, self.rate()
        if self.done >= self.total:
            return f"{duration(elapsed)} elapsed"
        left = f"~{duration((self.total - self.done) / rate)} left" if rate > 0 else "time left unknown"
        return f"{duration(elapsed)} elapsed, {left}"

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
        speed = (f"{rate:.3g} {self.unit}/s" if rate >= 1 or rate == 0
                 else f"{each:.2g} s each" if each < 10 else f"{duration(each)} each")
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit} ({self.done / self.total:.1%})", speed,
                 self.timing()]
        parts += [f"{k} {v:.4f}" for k, v in self.stats.items()]
        if self.label:
            parts.append(self.label)
        return ", ".join(parts)

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < 0.1:
            return
        self._drawn = now
        frac = self.done / self.total
        filled = int(frac * self.width)
        elapsed, rate = now - self._start, self.rate()
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        shown = " ".join(f"{k} {v:.4f}" for k, v in self.stats.items())
        tail = f"{self.desc} {shown} {self.label}".strip()
        line = (f"\r[{'#' * filled}{'.' * (self.width - filled)}] {frac * 100:5.1f}% "
                f"{elapsed:5.0f}s elapsed, ~{eta:4.0f}s left  {tail[:48]:<48}")
        self.stream.write(line)
        self.stream.flush()
