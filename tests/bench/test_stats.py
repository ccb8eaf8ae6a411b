import numpy as np
import pytest

from lpm_edge.bench.stats import summarize_ms


def test_summary_matches_numpy_percentiles_in_ms():
    seconds = np.random.default_rng(1).lognormal(-4, 0.5, size=997)
    s = summarize_ms(seconds)
    ms = seconds * 1000
    for key, q in (("median_ms", 50), ("p90_ms", 90), ("p95_ms", 95), ("p99_ms", 99)):
        assert s[key] == pytest.approx(np.percentile(ms, q), rel=1e-12)
    assert s["mean_ms"] == pytest.approx(ms.mean())
    assert s["min_ms"] == pytest.approx(ms.min())
    assert s["n"] == 997


def test_summary_on_known_values():
    s = summarize_ms([i / 1000 for i in range(1, 101)])  # 1..100 ms
    assert s["median_ms"] == pytest.approx(50.5)
    assert s["p90_ms"] == pytest.approx(90.1)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert summarize_ms([]) == {}
