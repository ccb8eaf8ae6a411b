"""One evaluator: the reference's and each candidate's predictions on one split, their accuracy and
macro-F1, the accuracy each candidate loses against the reference with a paired bootstrap 95% CI,
and how often the two agree.

Export's accuracy check, bench, search and training all take their figures from here (numpy
only), so the numbers they print cannot drift apart. Each result carries the split's name and
source, and says so in `describe()`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from .data import Split

Predictor = Callable[[list[str]], Any]  # texts -> logits (n, labels)


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if len(t) else float("nan")


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], n_labels: int | None = None) -> float:
    """Unweighted mean of per-label F1 over range(n_labels), or the labels present in y_true or y_pred."""
    t, p = np.asarray(y_true), np.asarray(y_pred)
    labels = range(n_labels) if n_labels else np.union1d(t, p)
    scores = []
    for k in labels:
        tp = np.sum((p == k) & (t == k))
        fp = np.sum((p == k) & (t != k))
        fn = np.sum((p != k) & (t == k))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], n_labels: int) -> dict[str, float]:
    return {"accuracy": accuracy(y_true, y_pred), "macro_f1": macro_f1(y_true, y_pred, n_labels)}


def bootstrap_diff_ci(
    correct_a: Sequence[bool], correct_b: Sequence[bool], n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Paired bootstrap interval of accuracy(a) - accuracy(b), in points.

    Both models are scored on the same resampled texts in each replicate, so the interval
    reflects how much the *difference* moves with the sample, not each accuracy on its own.
    """
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if len(a) != len(b) or not len(a):
        raise ValueError("paired samples must be non-empty and of equal length")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))  # (n_boot, n) resampled text indices
    diffs = (a[idx].mean(axis=1) - b[idx].mean(axis=1)) * 100
    lo, hi = np.percentile(diffs, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Scores:
    """One model on one split. The loss and agreement fields are None for the reference itself."""

    name: str
    split: str  # train, validation or test
    source: str  # the file (or cut of a file) the split came from
    n: int
    accuracy: float
    macro_f1: float
    accuracy_loss_points: float | None = None  # reference accuracy minus this one, in points
    accuracy_loss_ci95: tuple[float, float] | None = None  # paired bootstrap, points
    agreement: float | None = None  # share of texts whose argmax is the reference's
    seconds: float | None = None  # the prediction pass, when `evaluate` ran it

    def metrics(self) -> dict[str, Any]:
        """The figures, keyed as bench reports and manifests write them."""
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1,
                "accuracy_loss_points": self.accuracy_loss_points,
                "accuracy_loss_ci95": list(self.accuracy_loss_ci95) if self.accuracy_loss_ci95 else None,
                "agreement": self.agreement}

    def describe(self) -> str:
        return f"{self.name}: accuracy {self.accuracy:.4f} on {self.n:,} {self.split} texts of {self.source}"


def compare(
    split: "Split", logits: Sequence[tuple[str, Any]], n_labels: int, *, n_boot: int = 2000, seed: int = 0,
    seconds: Sequence[float | None] | None = None,
) -> list[Scores]:
    """Scores of models whose logits (n, labels) on `split` are known; logits[0] is the reference."""
    y = np.asarray(split.labels)
    preds = [np.asarray(out).argmax(axis=1) if len(y) else np.zeros(0, dtype=int) for _, out in logits]  # each (n,)
    ref = preds[0] if preds else None
    out = []
    for k, ((name, _), p) in enumerate(zip(logits, preds)):
        extra: dict[str, Any] = {}
        if k and ref is not None:
            extra = {
                "accuracy_loss_points": (accuracy(y, ref) - accuracy(y, p)) * 100,
                "accuracy_loss_ci95": bootstrap_diff_ci(ref == y, p == y, n_boot=n_boot, seed=seed) if len(y) else None,
                "agreement": float((p == ref).mean()) if len(y) else float("nan"),
            }
        out.append(Scores(name=name, split=split.name, source=split.source, n=len(y),
                          **classification_metrics(y, p, n_labels), **extra,
                          seconds=seconds[k] if seconds else None))
    return out


def evaluate(
    split: "Split", models: Sequence[tuple[str, Predictor]], n_labels: int, *, n_boot: int = 2000, seed: int = 0,
    on_each: Callable[[], None] | None = None,
) -> list[Scores]:
    """Run each model on every text of `split` (models[0] is the reference) and score them."""
    texts = list(split.texts)
    logits, seconds = [], []
    for name, predict in models:
        t0 = time.perf_counter()
        logits.append((name, predict(texts)))
        seconds.append(time.perf_counter() - t0)
        if on_each:
            on_each()
    return compare(split, logits, n_labels, n_boot=n_boot, seed=seed, seconds=seconds)
