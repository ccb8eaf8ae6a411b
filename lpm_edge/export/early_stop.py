"""Early stopping for distillation: keep the student that did best on validation texts.

Long distillation overfits the training texts (3,200 steps were measured worse than 1,600 on the
demo checkpoint). Every `eval_every` steps the student's score on the task's budget metric
(classifiers: accuracy; regression: Spearman's rho; multi-task: the worst head's) against the gold
values of a fixed, bounded validation sample is measured, with its divergence from the teacher (the
task's: KL at temperature 1 for classifiers, squared error for regression) per text as the
tie-break; the best student's weights are kept (on the CPU) and put back at the end, and
distillation stops after `patience` checks without improvement.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Sequence

from .batches import encode

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks.base import Task
    from .recipe import DistillConfig

log = logging.getLogger("lpm_edge.export")
EVAL_BATCH = 64


def sample(split: "Split", n: int) -> tuple[list[str], list[int]]:
    """At most n texts spread evenly over the split (files are often ordered by topic or label)."""
    step = max(1, len(split) // max(1, n))
    rows = list(range(0, len(split), step))[:n]
    return [split.texts[i] for i in rows], [split.labels[i] for i in rows]


def logits_of(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int) -> Any:
    """(N, C) float32 logits on the CPU, the model in eval mode under no_grad, its mode put back."""
    import torch

    device = str(next(model.parameters()).device)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # batches of similar length: little padding
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parts = [model(**encode(tokenizer, [texts[i] for i in order[s : s + EVAL_BATCH]], max_length,
                                    device)).logits.float().cpu() for s in range(0, len(order), EVAL_BATCH)]
    finally:
        model.train(was_training)
    if not parts:
        return torch.zeros(0, 0)
    out = torch.empty_like(torch.cat(parts))  # (N, C) back in input order
    out[torch.tensor(order)] = torch.cat(parts)
    return out


class EarlyStopping:
    """Checks the student every `config.eval_every` steps; `check` says when to stop."""

    def __init__(self, teacher: Any, tokenizer: Any, validation: "Split", config: "DistillConfig",
                 max_length: int, task: "Task | None" = None) -> None:
        import torch

        from ..tasks.single_label import SingleLabel

        self.task = task or SingleLabel(("0", "1"))
        self.tokenizer, self.max_length = tokenizer, max_length
        self.every, self.patience = config.eval_every, config.patience
        self.texts, labels = sample(validation, config.eval_samples)
        self.teacher_logits = logits_of(teacher, tokenizer, self.texts, max_length)  # (N, C)
        # A task whose gold is the full model's outputs (embeddings: its vectors) takes the teacher's.
        labels = self.task.reference_split(replace(validation, texts=tuple(self.texts), labels=tuple(labels)),
                                           self.teacher_logits.numpy()).labels
        # (N,) ids, (N,) targets or (N, heads): the gold values as the task reads them
        self.labels = torch.tensor(self.task.gold_array(labels), dtype=getattr(torch, self.task.gold_dtype))
        self.curve: list[list[float]] = []  # [step, the task's metric, divergence per text]
        self.best: tuple[float, float] | None = None  # (metric, divergence)
        self.best_step = 0
        self.best_weights: dict[str, Any] | None = None
        self.bad = 0

    def due(self, done: int, total: int) -> bool:
        return done % self.every == 0 or done == total

    def check(self, step: int, student: Any) -> bool:
        """Measure the student after `step` steps; keep it when it is the best so far; True = stop."""
        import math

        logits = logits_of(student, self.tokenizer, self.texts, self.max_length)  # (N, C)
        acc = float(self.task.metrics(self.labels.numpy(), logits.numpy())[self.task.metric])
        acc = acc if math.isfinite(acc) else -1.0  # an undefined metric (a constant prediction) is no gain
        kl = float(self.task.divergence(logits, self.teacher_logits)) / max(1, len(self.texts))
        self.curve.append([step, round(acc, 5), round(kl, 5)])
        better = self.best is None or acc > self.best[0] or (acc == self.best[0] and kl < self.best[1])
        if better:
            self.best, self.best_step, self.bad = (acc, kl), step, 0
            self.best_weights = {k: v.detach().to("cpu", copy=True) for k, v in student.state_dict().items()}
        else:
            self.bad += 1
        log.info("distill step %d: validation %s %.4f, divergence from the teacher %.4f%s", step,
                 self.task.metric, acc, kl,
                 " (best so far)" if better else f" (no gain {self.bad} of {self.patience})")
        return self.bad >= self.patience

    def restore(self, student: Any) -> None:
        """Put the best student's weights back into `student`."""
        if self.best_weights is not None:
            student.load_state_dict(self.best_weights)

    def record(self, done: int) -> dict[str, Any]:
        """What the compression record keeps: the best step, where it stopped, and the curve."""
        return {
            "eval_every": self.every, "patience": self.patience, "eval_texts": len(self.texts),
            "metric": self.task.metric,  # what best_accuracy and the curve's second column measure
            "best_step": self.best_step, "best_accuracy": self.best[0] if self.best else None,
            "best_kl": self.best[1] if self.best else None, "stopped_at": done,
            "curve": self.curve,
        }

    # Each Trainer checkpoint of a resumable distillation carries this state (distill.EARLY_STOP_FILE).
    def state_dict(self) -> dict[str, Any]:
        return {"curve": self.curve, "best": self.best, "best_step": self.best_step,
                "best_weights": self.best_weights, "bad": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.curve, self.best_step, self.bad = state["curve"], state["best_step"], state["bad"]
        self.best = tuple(state["best"]) if state["best"] is not None else None  # type: ignore[assignment]
        self.best_weights = state["best_weights"]
