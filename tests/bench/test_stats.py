import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpm_edge.bench.stats import bootstrap_diff_ci, summarize_ms


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


def test_bootstrap_matches_a_plain_numpy_resampling():
    rng = np.random.default_rng(7)
    a = rng.random(500) < 0.85
    b = rng.random(500) < 0.80
    lo, hi = bootstrap_diff_ci(a, b, n_boot=3000, seed=3)
    # The same paired resampling written out by hand.
    idx = np.random.default_rng(3).integers(0, 500, size=(3000, 500))
    diffs = np.array([(a[i].mean() - b[i].mean()) * 100 for i in idx])
    assert (lo, hi) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))
    point = (a.mean() - b.mean()) * 100
    assert lo < point < hi


def test_bootstrap_of_identical_predictions_is_zero_and_bad_input_is_refused():
    a = np.array([True, False, True, True])
    assert bootstrap_diff_ci(a, a) == (0.0, 0.0)
    with pytest.raises(ValueError):
        bootstrap_diff_ci(a, a[:3])
    with pytest.raises(ValueError):
        bootstrap_diff_ci([], [])


def test_bootstrap_interval_covers_a_known_difference():
    # a is right on all 1000 texts, b on 900: the difference is exactly 10 points in every resample
    # only if b's errors are everywhere; here they are a fixed tenth, so the interval brackets 10.
    a = np.ones(1000, dtype=bool)
    b = np.arange(1000) % 10 != 0
    lo, hi = bootstrap_diff_ci(a, b)
    assert lo < 10 < hi
    assert hi - lo < 5


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=200), st.integers(0, 2**16))
def test_bootstrap_interval_is_ordered_and_bounded(pairs, seed):
    a, b = zip(*pairs)
    lo, hi = bootstrap_diff_ci(a, b, n_boot=200, seed=seed)
    assert -100 <= lo <= hi <= 100
