"""Summary statistics for timings and accuracy differences."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p90, p95, p99 and mean of timings given in seconds, reported in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if not len(ms):
        return {}
    p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
    return {"median_ms": float(p50), "p90_ms": float(p90), "p95_ms": float(p95), "p99_ms": float(p99),
            "mean_ms": float(ms.mean()), "n": int(len(ms))}


def bootstrap_diff_ci(
    correct_a: Sequence[bool], correct_b: Sequence[bool], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Paired bootstrap interval of accuracy(a) - accuracy(b), in points."""
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if len(a) != len(b) or not len(a):
        raise ValueError("paired samples must be non-empty and of equal length")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    diffs = (a[idx].mean(axis=1) - b[idx].mean(axis=1)) * 100
    lo, hi = np.percentile(diffs, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)
