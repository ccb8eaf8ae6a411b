"""Accuracy of every candidate on the same split, against the reference; whole-split throughput."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..evaluate import evaluate
from .latency import interleaved
from .stats import median

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks.base import Task
    from .candidates import Candidate
    from .progress import Progress


def score(
    candidates: Sequence["Candidate"], split: "Split", task: "Task",
    *, n_boot: int = 2000, seed: int = 0, progress: "Progress | None" = None,
) -> list[dict[str, Any]]:
    """The task's metrics (accuracy, macro-F1 for classifiers), the budget metric's loss vs candidates[0]
    (points, paired bootstrap 95% CI) and agreement, from the one evaluator; candidates[0] is the
    reference, its own loss and agreement are None."""
    # Where the task fits decisions to a model (multi-label thresholds) each candidate is read by its own
    # (a bundle: its manifest's); elsewhere the reference's task reads every candidate alike.
    owns = [task.reader_for(c.task) for c in candidates]
    scores = evaluate(split, [(c.name, c.outputs or c.predict) for c in candidates], task, n_boot=n_boot, seed=seed,
                      on_each=progress.advance if progress else None, tasks=owns)
    return [{**s.metrics(), "accuracy_pass_s": s.seconds} for s in scores]


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
