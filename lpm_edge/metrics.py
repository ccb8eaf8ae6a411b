"""Classification metrics in numpy, shared by train, export and bench."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    t, p = np.asarray(y_true), np.asarray(y_pred)
    return float((t == p).mean()) if len(t) else float("nan")


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int], n_labels: int | None = None) -> float:
    """Unweighted mean of per-label F1 over the labels present in y_true or y_pred."""
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
