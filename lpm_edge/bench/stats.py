"""Summary statistics for timings and accuracy differences (numpy only)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p90, p95, p99, mean and min of timings given in seconds, reported in milliseconds.

    Percentiles use numpy's default (linear interpolation); `n` says how many timings they rest
    on (a p99 of fewer than 100 timings is close to the maximum).
    """
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if not len(ms):
        return {}
    p50, p90, p95, p99 = np.percentile(ms, PERCENTILES)
    return {"median_ms": float(p50), "p90_ms": float(p90), "p95_ms": float(p95), "p99_ms": float(p99),
            "mean_ms": float(ms.mean()), "min_ms": float(ms.min()), "n": int(len(ms))}


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence (nan when empty)."""
    return float(np.median(values)) if len(values) else float("nan")


def non_dominated(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the points no other point dominates, every coordinate higher-is-better.

    A point is dominated when another is at least as good on every coordinate and strictly better
    on one. Negate a coordinate where lower is better (latency, size).
    """
    def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    return [i for i, p in enumerate(points) if not any(dominates(q, p) for j, q in enumerate(points) if j != i)]
