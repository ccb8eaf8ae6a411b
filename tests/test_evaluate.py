"""The one evaluator (lpm_edge.evaluate): metrics, the paired bootstrap, compare() and evaluate()
as export, bench and search call them."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lpm_edge.data import Split
from lpm_edge.tasks.single_label import SingleLabel
from lpm_edge.evaluate import (accuracy, bootstrap_diff_ci, classification_metrics, compare, evaluate,
                               macro_f1)


TASK = SingleLabel(("neg", "pos"))


def one_hot(pred: list[int], n_labels: int = 2) -> np.ndarray:
    return np.eye(n_labels, dtype=np.float32)[pred]  # (n, labels) logits whose argmax is `pred`


SPLIT = Split(texts=tuple(f"t{i}" for i in range(8)), labels=(0, 1, 0, 1, 0, 1, 0, 1), name="test",
              source="reviews.csv")


def test_accuracy_and_macro_f1_on_known_values():
    assert accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == 0.75
    # label 0: tp 2 fp 1 fn 0 -> 0.8; label 1: tp 1 fp 0 fn 1 -> 2/3
    assert macro_f1([0, 1, 1, 0], [0, 1, 0, 0]) == pytest.approx((0.8 + 2 / 3) / 2)
    assert macro_f1([0, 0], [0, 0], n_labels=2) == 0.5  # a label never seen nor predicted scores 0
    assert np.isnan(accuracy([], []))
    assert classification_metrics([0, 1], [0, 1], 2) == {"accuracy": 1.0, "macro_f1": 1.0}


def test_compare_scores_each_model_against_the_first():
    y = list(SPLIT.labels)
    worse = [1 - v if i < 2 else v for i, v in enumerate(y)]  # wrong on 2 of 8
    ref, same, lossy = compare(SPLIT, [("ref", one_hot(y)), ("same", one_hot(y)), ("lossy", one_hot(worse))], TASK,
                               n_boot=500)
    assert (ref.accuracy, ref.loss_points, ref.agreement, ref.loss_ci95) == (1.0, None, None, None)
    assert same.loss_points == 0 and same.loss_ci95 == (0.0, 0.0) and same.agreement == 1.0
    assert lossy.accuracy == 0.75 and lossy.loss_points == 25.0 and lossy.agreement == 0.75
    lo, hi = lossy.loss_ci95
    assert 0 <= lo <= 25 <= hi
    assert (lossy.split, lossy.source, lossy.n) == ("test", "reviews.csv", 8)  # every figure names its split
    assert lossy.describe() == "lossy: accuracy 0.7500 on 8 test texts of reviews.csv"
    assert lossy.metrics() == {"accuracy": 0.75, "macro_f1": lossy.macro_f1, "metric": "accuracy", "loss_points": 25.0,
                               "loss_ci95": [lo, hi], "agreement": 0.75}


def test_agreement_is_against_the_reference_not_the_labels():
    ref_pred = [1] * 8  # the reference is wrong on half
    cand = [1] * 6 + [0, 1]  # differs from the reference on one text (where the label is 0: it is right)
    _, c = compare(SPLIT, [("ref", one_hot(ref_pred)), ("cand", one_hot(cand))], TASK, n_boot=200)
    assert c.agreement == 7 / 8
    assert c.loss_points == pytest.approx(-12.5)  # the candidate is better: a negative loss


def test_evaluate_runs_every_text_through_each_model_in_order():
    seen: list[list[str]] = []
    ticks: list[int] = []

    def model(pred: list[int]):
        def predict(texts: list[str]) -> np.ndarray:
            seen.append(texts)
            return one_hot(pred)
        return predict

    scores = evaluate(SPLIT, [("ref", model(list(SPLIT.labels))), ("all zero", model([0] * 8))], TASK,
                      on_each=lambda: ticks.append(1))
    assert seen == [list(SPLIT.texts)] * 2 and len(ticks) == 2
    assert [s.name for s in scores] == ["ref", "all zero"]
    assert scores[1].accuracy == 0.5 and scores[1].seconds is not None and scores[1].seconds >= 0


def test_an_empty_split_scores_nan_without_raising():
    empty = Split((), (), "validation", "x.csv")
    ref, cand = compare(empty, [("ref", np.zeros((0, 2))), ("c", np.zeros((0, 2)))], TASK)
    assert np.isnan(ref.accuracy) and cand.loss_ci95 is None and cand.n == 0


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


class _MacroF1(SingleLabel):
    """A task whose budget metric is not a mean over examples: the bootstrap recomputes it."""

    metric = "macro_f1"

    def example_values(self, gold, outputs):
        return None


def test_a_metric_that_is_no_mean_over_examples_is_bootstrapped_by_recomputing_it():
    task = _MacroF1(("neg", "pos"))
    y = list(SPLIT.labels)
    worse = [1 - v if i < 3 else v for i, v in enumerate(y)]
    ref, cand = compare(SPLIT, [("ref", one_hot(y)), ("cand", one_hot(worse))], task, n_boot=300, seed=3)
    assert ref.metric == cand.metric == "macro_f1" and ref.value == 1.0
    assert cand.loss_points == pytest.approx((1.0 - macro_f1(y, worse, 2)) * 100)
    rng = np.random.default_rng(3)  # the same resamples, by hand
    gold, w = np.asarray(y), np.asarray(worse)
    diffs = []
    for _ in range(300):
        idx = rng.integers(0, len(gold), size=len(gold))
        diffs.append((macro_f1(gold[idx], gold[idx], 2) - macro_f1(gold[idx], w[idx], 2)) * 100)
    assert cand.loss_ci95 == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])))
    assert cand.loss_ci95[0] <= cand.loss_points <= cand.loss_ci95[1]
