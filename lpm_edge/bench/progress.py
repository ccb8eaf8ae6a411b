"""The bench's progress: lpm_edge.progress.Progress with the bench's name and logger."""

from __future__ import annotations

from typing import TextIO

from ..progress import Progress as _Progress


class Progress(_Progress):
    """A bar on stderr when it is a terminal; otherwise one log line per stage and, during long
    stages, a line with the rate and time left every few seconds."""

    def __init__(self, total: int, stream: TextIO | None = None, bar: bool | None = None, width: int = 30) -> None:
        super().__init__(total, "bench", unit="runs", stream=stream, bar=bar, logger="lpm_edge.bench", width=width)
