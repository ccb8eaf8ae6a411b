"""Pareto front and selection within an accuracy budget."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from ..bench.stats import non_dominated


@dataclass
class Point:
    """A measured candidate: accuracy on validation, latency, size."""

    key: str
    label: str
    accuracy: float
    latency_ms: float
    size_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


def pareto_front(points: Sequence[Point]) -> list[Point]:
    """Points no other point dominates (higher accuracy, lower latency, smaller size), fastest first."""
    front = [points[i] for i in non_dominated([(p.accuracy, -p.latency_ms, -p.size_bytes) for p in points])]
    return sorted(front, key=lambda p: (p.latency_ms, -p.accuracy))


def within_budget(points: Sequence[Point], reference_accuracy: float, max_drop_points: float) -> list[Point]:
    return [p for p in points if (reference_accuracy - p.accuracy) * 100 <= max_drop_points + 1e-9]


def choose(points: Sequence[Point], reference_accuracy: float, max_drop_points: float) -> Point | None:
    """The fastest point within the budget (ties: the more accurate, then the smaller)."""
    ok = within_budget(points, reference_accuracy, max_drop_points)
    return min(ok, key=lambda p: (p.latency_ms, -p.accuracy, p.size_bytes)) if ok else None
