"""`search`: the fastest bundle within an accuracy budget, with the Pareto front it came from.

Cheap first: candidates go mild to aggressive, a pruning direction stops once it breaks the
budget, students are shared by candidates that differ only in quantization, and every measured
candidate is cached so a second run resumes instead of starting over.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..bundle import write_text_atomic
from ..errors import ConfigError, LpmEdgeError
from .pareto import Point, choose, pareto_front
from .space import Candidate

log = logging.getLogger("lpm_edge.search")
CACHE_VERSION = 1


class SearchBudgetError(LpmEdgeError):
    """No candidate met the accuracy budget; the best one found was kept."""


@dataclass
class SearchResult:
    reference_accuracy: float
    max_accuracy_drop: float
    points: list[Point]
    front: list[Point]
    chosen: Point | None
    skipped: list[str] = field(default_factory=list)
    bundle: Path | None = None
    seconds: float = 0.0
    confirmed: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1, "reference_accuracy": self.reference_accuracy,
            "max_accuracy_drop": self.max_accuracy_drop, "seconds": round(self.seconds, 1),
            "chosen": asdict(self.chosen) if self.chosen else None,
            "bundle": str(self.bundle) if self.bundle else None, "confirmed_on_test": self.confirmed,
            "front": [p.key for p in self.front], "points": [asdict(p) for p in self.points],
            "skipped": self.skipped,
        }


class Cache:
    """Measured candidates by key, in one JSON file written atomically after each candidate."""

    def __init__(self, path: Path, context: dict[str, Any]) -> None:
        self.path, self.context = path, context
        self.points: dict[str, Point] = {}
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except json.JSONDecodeError:
                data = {}
            if data.get("version") == CACHE_VERSION and data.get("context") == context:
                self.points = {k: Point(**v) for k, v in data.get("points", {}).items()}
            else:
                log.info("cache %s is for another checkpoint, data or version; starting over", path)

    def get(self, key: str) -> Point | None:
        return self.points.get(key)

    def put(self, point: Point) -> None:
        self.points[point.key] = point
        payload = {"version": CACHE_VERSION, "context": self.context,
                   "points": {k: asdict(p) for k, p in self.points.items()}}
        write_text_atomic(self.path, json.dumps(payload, indent=1))


def run_search(
    space: Sequence[Candidate],
    evaluate: Callable[[Candidate], Point],
    reference_accuracy: float,
    max_accuracy_drop: float,
    cache: Cache,
    full_layers: int,
    max_minutes: float | None = None,
) -> SearchResult:
    """The search loop, independent of how a candidate is built and measured."""
    start = time.perf_counter()
    points: list[Point] = []
    broken: list[Candidate] = []
    skipped: list[str] = []
    for i, cand in enumerate(space, start=1):
        if max_minutes is not None and time.perf_counter() - start > max_minutes * 60:
            skipped += [f"{c.label()} (time budget)" for c in space[i - 1 :]]
            log.info("time budget of %g min spent; %d candidates left unmeasured", max_minutes, len(space) - i + 1)
            break
        if any(cand.at_least_as_aggressive_as(b, full_layers) for b in broken):
            skipped.append(f"{cand.label()} (a milder candidate already broke the budget)")
            continue
        point = cache.get(cand.key())
        if point is None:
            log.info("[%d/%d] measuring %s", i, len(space), cand.label())
            point = evaluate(cand)
            cache.put(point)
        else:
            log.info("[%d/%d] cached %s", i, len(space), cand.label())
        points.append(point)
        drop = (reference_accuracy - point.accuracy) * 100
        log.info("    accuracy %.4f (drop %+.2f points), %.2f ms, %.1f MB", point.accuracy, drop,
                 point.latency_ms, point.size_bytes / 1e6)
        if drop > max_accuracy_drop and cand.pruned:
            broken.append(cand)
    return SearchResult(
        reference_accuracy=reference_accuracy, max_accuracy_drop=max_accuracy_drop, points=points,
        front=pareto_front(points), chosen=choose(points, reference_accuracy, max_accuracy_drop),
        skipped=skipped, seconds=time.perf_counter() - start,
    )


def keep_bundle(src: Path, dst: Path) -> Path:
    """Copy a candidate bundle to its final place atomically."""
    from ..bundle import atomic_directory

    with atomic_directory(dst, force=True) as tmp:
        for f in Path(src).iterdir():
            shutil.copy2(f, tmp / f.name)
    return dst


def check_budget_args(max_accuracy_drop: float, target: str) -> None:
    if max_accuracy_drop < 0:
        raise ConfigError(f"--max-accuracy-drop {max_accuracy_drop} must be zero or more points")
    if target not in ("cpu", "cuda"):
        raise ConfigError(f"--target {target!r} must be cpu or cuda")
