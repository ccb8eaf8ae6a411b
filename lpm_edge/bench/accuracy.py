"""Accuracy of every candidate on the same split, against the reference; whole-split throughput."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..metrics import classification_metrics
from .latency import interleaved
from .stats import bootstrap_diff_ci, median

if TYPE_CHECKING:
    from .candidates import Candidate
    from .progress import Progress


def score(
    candidates: Sequence["Candidate"], texts: Sequence[str], labels: Sequence[int], n_labels: int,
    *, n_boot: int = 2000, seed: int = 0, progress: "Progress | None" = None,
) -> list[dict[str, Any]]:
    """Accuracy, macro-F1, loss vs candidates[0] (points, paired bootstrap 95% CI) and agreement.

    candidates[0] is the reference; its own loss and agreement are None.
    """
    y = np.asarray(labels)
    preds = []
    rows: list[dict[str, Any]] = []
    for c in candidates:
        t0 = time.perf_counter()
        p = np.asarray(c.predict(list(texts))).argmax(axis=1)  # (n,)
        rows.append({**classification_metrics(y, p, n_labels), "accuracy_pass_s": time.perf_counter() - t0})
        preds.append(p)
        if progress:
            progress.advance()
    ref_correct = preds[0] == y
    for k, (row, p) in enumerate(zip(rows, preds)):
        if k == 0:
            row.update(accuracy_loss_points=None, accuracy_loss_ci95=None, agreement=None)
            continue
        row["accuracy_loss_points"] = (rows[0]["accuracy"] - row["accuracy"]) * 100
        row["accuracy_loss_ci95"] = list(bootstrap_diff_ci(ref_correct, p == y, n_boot=n_boot, seed=seed))
        row["agreement"] = float((p == preds[0]).mean())
    return rows


def throughput(
    candidates: Sequence["Candidate"], texts: Sequence[str], rounds: int, progress: "Progress | None" = None
) -> list[dict[str, Any]]:
    """Texts per second of `predict(all texts)` (each candidate batches as it does for users).

    Rounds are interleaved like latency; the figure is the median round.
    """
    items = list(texts)
    tick = progress.advance if progress else None
    timings = interleaved([lambda r, c=c: c.predict(items) for c in candidates], rounds, 0, tick)
    return [{"texts_per_s": len(items) / median(t), "seconds": median(t), "rounds": len(t), "texts": len(items)}
            for t in timings]
