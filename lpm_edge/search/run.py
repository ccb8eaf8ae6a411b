"""`search`: the fastest bundle within an accuracy budget, with the Pareto front it came from.

Cheap first: candidates go mild to aggressive, a pruning direction stops once it breaks the
budget, students are shared by candidates that differ only in quantization, and every measured
candidate is cached so a second run resumes instead of starting over.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..bundle import write_text_atomic
from ..errors import ConfigError, LpmEdgeError
from ..progress import Progress, duration
from .estimate import plan
from .pareto import Point, choose, pareto_front
from .space import Candidate

log = logging.getLogger("lpm_edge.search")
# 2: pruned dynamic int8 candidates have 7-bit weights (reduce_range), as cpu-pruned-int8;
# 3: CPU graphs keep residual norms apart (their latencies measured 1.2-1.4x faster at batch 1)
CACHE_VERSION = 3


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
    validation: dict[str, Any] = field(default_factory=dict)  # {"source", "n"}: the split chosen on
    metric: str = "accuracy"  # the task's budget metric the candidates were judged on

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1, "reference_accuracy": self.reference_accuracy,
            "max_accuracy_drop": self.max_accuracy_drop, "seconds": round(self.seconds, 1),
            "chosen": asdict(self.chosen) if self.chosen else None,
            "bundle": str(self.bundle) if self.bundle else None, "confirmed_on_test": self.confirmed,
            "front": [p.key for p in self.front], "points": [asdict(p) for p in self.points],
            "skipped": self.skipped, "validation": self.validation, "metric": self.metric,
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
    evaluate: Callable[[Candidate], Point | None],
    reference_accuracy: float,
    max_accuracy_drop: float,
    cache: Cache,
    full_layers: int,
    max_minutes: float | None = None,
    rescue: Callable[[Candidate], list[Candidate]] | None = None,
    step_seconds: float | None = None,
) -> SearchResult:
    """The search loop, independent of how a candidate is built and measured.

    `evaluate` returns None for a candidate that could not be built as asked (recorded as skipped).
    `rescue(cand)` gives the variants to try when int8 broke the budget that the candidate's
    fp32 student met (its point's extra["source_accuracy"]); they run right after it.
    `step_seconds` (one distillation step, from the search's estimate) makes the time left that
    each candidate's log line gives count the students still to distil, not only candidates.
    """
    start = time.perf_counter()
    queue = list(space)
    # Each candidate counts once: measured ones set the rate, skipped and cached ones only shorten what is left.
    progress = Progress(len(queue), "search", unit="candidates", bar=False, logger="lpm_edge.search")
    points: list[Point] = []
    broken: list[Candidate] = []
    met: list[Candidate] = []
    skipped: list[str] = []
    distilled: set[tuple[Any, ...]] = set()  # students built (or cached) so far
    plain_seconds: list[float] = []  # candidates that distilled nothing: export and measurement only
    i = 0
    while i < len(queue):
        cand = queue[i]
        i += 1
        progress.total = len(queue)  # rescue variants join the queue as the search goes
        if max_minutes is not None and time.perf_counter() - start > max_minutes * 60:
            skipped += [f"{c.label()} (time budget)" for c in queue[i - 1 :]]
            log.info("time budget of %g min spent; %d candidates left unmeasured", max_minutes, len(queue) - i + 1)
            break
        if any(cand.at_least_as_aggressive_as(b, full_layers) for b in broken):
            skipped.append(f"{cand.label()} (a milder candidate already broke the budget)")
            progress.skip()
            continue
        # Distillation is the costly step and precision variants differ by a few percent in speed:
        # once an architecture met the budget, a longer distillation of it is not worth its minutes.
        if any(cand.same_architecture_as(m) and m.distill_steps < cand.distill_steps for m in met):
            skipped.append(f"{cand.label()} (a shorter distillation of this architecture already met the budget)")
            progress.skip()
            continue
        point = cache.get(cand.key())
        if point is None:
            timing = (progress.timing() if step_seconds is None else
                      time_left(queue[i - 1 :], distilled, plain_seconds, step_seconds, time.perf_counter() - start))
            log.info("[%d/%d] measuring %s (%s)", i, len(queue), cand.label(), timing)
            began = time.perf_counter()
            point = evaluate(cand)
            if not cand.distils or cand.student_key() in distilled:
                plain_seconds.append(time.perf_counter() - began)
            progress.update()
            if point is None:  # cached too, so that a resumed run does not rebuild it
                point = Point(key=cand.key(), label=cand.label(), accuracy=float("nan"), latency_ms=float("nan"),
                              size_bytes=0, extra={"failed": "could not be built within the budget"})
            cache.put(point)
        else:
            log.info("[%d/%d] cached %s", i, len(queue), cand.label())
            progress.skip()
        if cand.distils:
            distilled.add(cand.student_key())
        if point.extra.get("failed"):
            skipped.append(f"{cand.label()} ({point.extra['failed']})")
            continue
        points.append(point)
        drop = (reference_accuracy - point.accuracy) * 100
        log.info("    accuracy %.4f (drop %+.2f points), %.2f ms, %.1f MB", point.accuracy, drop,
                 point.latency_ms, point.size_bytes / 1e6)
        if drop <= max_accuracy_drop:
            met.append(cand)
            continue
        if cand.pruned and not cand.rescue:
            broken.append(cand)
        # A rescue variant runs part of the graph in fp32, so it is never faster than this candidate:
        # it can only win when this candidate beats everything within the budget so far.
        best = choose(points, reference_accuracy, max_accuracy_drop)
        student = _student_accuracy(point)
        if (rescue is not None and student is not None and (best is None or point.latency_ms < best.latency_ms)
                and (reference_accuracy - student) * 100 <= max_accuracy_drop):
            variants = [v for v in rescue(cand) if v not in queue]
            if variants:
                log.info("    int8 broke the budget its fp32 student meets (%.4f); trying %d rescue variants",
                         student, len(variants))
            queue[i:i] = variants
    return SearchResult(
        reference_accuracy=reference_accuracy, max_accuracy_drop=max_accuracy_drop, points=points,
        front=pareto_front(points), chosen=choose(points, reference_accuracy, max_accuracy_drop),
        skipped=skipped, seconds=time.perf_counter() - start,
    )


def time_left(rest: Sequence[Candidate], distilled: set[tuple[Any, ...]], plain_seconds: Sequence[float],
              step_seconds: float, elapsed: float) -> str:
    """'3 min 10 s elapsed; about 16 min left: up to 1 student to distil (1,600 steps, about 14 min
    40 s), 6 candidates to export and measure at about 20 s each'. The students of `rest` not yet
    distilled at `step_seconds` a step, plus each candidate at the median export and measurement
    seen so far. An upper bound: a direction that breaks the budget skips the rest of it."""
    todo = plan([c for c in rest if c.student_key() not in distilled], step_seconds)
    each = statistics.median(plain_seconds) if plain_seconds else None
    total = todo.seconds + (each or 0.0) * len(rest)
    parts = []
    if todo.students:
        parts.append(f"up to {todo.students} student{'s' if todo.students > 1 else ''} to distil "
                     f"({todo.steps:,} steps, about {duration(todo.seconds)})")
    parts.append(f"{len(rest)} candidate{'s' if len(rest) > 1 else ''} to export and measure"
                 + (f" at about {duration(each)} each" if each is not None else " (time per candidate not known yet)"))
    return f"{duration(elapsed)} elapsed; {'at least ' if each is None else ''}about {duration(total)} left: " + ", ".join(parts)


def _student_accuracy(point: Point) -> float | None:
    """The fp32 student's validation accuracy, from the point or (older caches) its bundle."""
    if point.extra.get("source_accuracy") is not None:
        return float(point.extra["source_accuracy"])
    bundle = point.extra.get("bundle")
    if bundle and (Path(bundle) / "manifest.json").is_file():
        from ..bundle import read_manifest

        value = read_manifest(Path(bundle)).metrics.get("source_accuracy")
        return float(value) if value is not None else None
    return None


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
