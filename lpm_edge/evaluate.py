"""One evaluator: the reference's and each candidate's outputs on one split, the task's metrics
(for classifiers accuracy and macro-F1), the budget metric each candidate loses against the
reference with a paired bootstrap 95% CI, and how often the two decide alike.

Export's accuracy check, bench, search and training all take their figures from here (numpy
only), so the numbers they print cannot drift apart. Each result carries the split's name and
source, and says so in `describe()`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from .data import Split
    from .tasks.base import Task

Predictor = Callable[[list[Any]], Any]  # examples -> outputs (for classifiers: logits (n, labels))


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


def bootstrap_metric_diff_ci(
    task: "Task", gold: Any, out_a: Any, out_b: Any, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
    own: "Task | None" = None,
) -> tuple[float, float]:
    """Paired bootstrap interval of metric(a) - metric(b), in points, for a metric that is not a
    mean over examples (F1, correlations): the task's metric is recomputed on each resample (b's read
    by `own`, its own fitted task, when it has one)."""
    gold, a, b = task.gold_array(gold), np.asarray(out_a), np.asarray(out_b)
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for r in range(n_boot):
        idx = rng.integers(0, len(gold), size=len(gold))
        diffs[r] = task.metric_loss(gold[idx], a[idx], b[idx], own)
    lo, hi = np.nanpercentile(diffs, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Scores:
    """One model on one split. The loss and agreement fields are None for the reference itself."""

    name: str
    split: str  # train, validation or test
    source: str  # the file (or cut of a file) the split came from
    n: int
    metric: str  # the task's budget metric, e.g. accuracy
    value: float  # that metric's value
    all_metrics: Mapping[str, float]  # every metric of the task, `metric` included
    loss_points: float | None = None  # reference's `metric` minus this one's, in points (x100)
    loss_ci95: tuple[float, float] | None = None  # paired bootstrap, points
    agreement: float | None = None  # share of examples whose decision is the reference's
    seconds: float | None = None  # the prediction pass, when `evaluate` ran it

    @property
    def accuracy(self) -> float:
        return self.all_metrics.get("accuracy", float("nan"))

    @property
    def macro_f1(self) -> float:
        return self.all_metrics.get("macro_f1", float("nan"))

    def metrics(self) -> dict[str, Any]:
        """The figures, keyed as bench reports and manifests write them."""
        return {**self.all_metrics, "metric": self.metric, "loss_points": self.loss_points,
                "loss_ci95": list(self.loss_ci95) if self.loss_ci95 else None, "agreement": self.agreement}

    def describe(self) -> str:
        return f"{self.name}: {self.metric} {self.value:.4f} on {self.n:,} {self.split} texts of {self.source}"


def compare(
    split: "Split", outputs: Sequence[tuple[str, Any]], task: "Task", *, n_boot: int = 2000, seed: int = 0,
    seconds: Sequence[float | None] | None = None, tasks: Sequence["Task | None"] | None = None,
) -> list[Scores]:
    """Scores of models whose outputs on `split` are known (for classifiers: logits (n, labels));
    outputs[0] is the reference. `tasks[k]`, when given and not None, is the task output k is read by:
    a model's own fitted decisions (a bundle's multi-label thresholds, `Task.fitted`); else `task`."""
    gold = task.gold_array(split.labels)
    n = len(gold)
    arrays = [np.asarray(out) for _, out in outputs]
    owns = [t or task for t in (tasks or [None] * len(outputs))]
    decisions = [t.decisions(a) for t, a in zip(owns, arrays)]
    found = [t.metrics(gold, a) for t, a in zip(owns, arrays)]
    out = []
    for k, (name, _) in enumerate(outputs):
        extra: dict[str, Any] = {}
        if k and n:
            ref, own = owns[0], owns[k]
            values = (ref.example_values(gold, arrays[0]), own.example_values(gold, arrays[k]))
            if values[0] is not None and values[1] is not None:
                ci = bootstrap_diff_ci(values[0], values[1], n_boot=n_boot, seed=seed)
            else:
                ci = ref.metric_diff_ci(gold, arrays[0], arrays[k], n_boot, seed) if own is ref else None
                ci = ci or bootstrap_metric_diff_ci(ref, gold, arrays[0], arrays[k], n_boot=n_boot, seed=seed, own=own)
            extra = {
                "loss_points": ref.metric_loss(gold, arrays[0], arrays[k], own),  # (ref - mine) x 100 for one metric
                "loss_ci95": ci,
                # None where the task has no discrete decisions (regression)
                "agreement": None if decisions[0] is None else
                float(((decisions[k] == decisions[0]).reshape(n, -1).all(axis=1)).mean()),
            }
        elif k:
            extra = {"agreement": float("nan")}
        out.append(Scores(name=name, split=split.name, source=split.source, n=n, metric=task.metric,
                          value=found[k][task.metric], all_metrics=found[k], **extra,
                          seconds=seconds[k] if seconds else None))
    return out


def evaluate(
    split: "Split", models: Sequence[tuple[str, Predictor]], task: "Task", *, n_boot: int = 2000, seed: int = 0,
    on_each: Callable[[], None] | None = None, tasks: Sequence["Task | None"] | None = None,
) -> list[Scores]:
    """Run each model on every example of `split` (models[0] is the reference) and score them, each
    read by its own task where `tasks` gives one (see `compare`)."""
    texts = list(split.texts)
    outputs, seconds = [], []
    for name, predict in models:
        t0 = time.perf_counter()
        outputs.append((name, predict(texts)))
        seconds.append(time.perf_counter() - t0)
        if on_each:
            on_each()
    if outputs:  # tasks whose gold is the reference's outputs (embeddings) take them from models[0]
        split = task.reference_split(split, outputs[0][1])
    return compare(split, outputs, task, n_boot=n_boot, seed=seed, seconds=seconds, tasks=tasks)
