"""Single-label classification: one text in, one of N labels out (softmax over logits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import DataError
from ..evaluate import accuracy, macro_f1
from .base import Task, need_labels
from .heads import Head


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float
    scores: Mapping[str, float]


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return p


class SingleLabel(Task):
    kind = "text-classification"
    offers = ("predict", "predict_proba")
    metric = "accuracy"

    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], label_column: str) -> tuple[str, ...]:
        unique = {label for _, label, _ in rows}
        try:  # numeric labels sort numerically ("2" after "10" would surprise people)
            labels = tuple(sorted(unique, key=lambda s: float(s)))
        except ValueError:
            labels = tuple(sorted(unique))
        if len(labels) < 2:
            last_line = rows[-1][2].rsplit(":", 1)[1]
            raise DataError(
                f"{rows[0][2]}-{last_line}: every training row has the label {labels[0]!r}; a classifier "
                f"needs at least two labels. Check --label-column (now {label_column!r}) and the file"
            )
        return labels

    @classmethod
    def gold(cls, rows: Sequence[tuple[Any, Any, str]], labels: Sequence[str], training: str) -> tuple[int, ...]:
        index = {label: i for i, label in enumerate(labels)}
        for _, label, where in rows:
            if label not in index:
                raise DataError(f"{where}: label {label!r} never occurs in {training}; "
                                "every label must have training examples")
        return tuple(index[label] for _, label, _ in rows)

    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str,
                     inputs: Sequence[str] | None = None) -> "SingleLabel":
        need_labels(labels, where)
        return cls(labels, info, inputs)

    def predictions(self, outputs: np.ndarray) -> list[Prediction]:
        probs = self.scores(outputs)
        best = probs.argmax(axis=1) if len(probs) else []
        return [Prediction(self.labels[k], float(row[k]), dict(zip(self.labels, map(float, row))))
                for k, row in zip(best, probs)]

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        return softmax(outputs)

    def ranks(self) -> bool:
        return len(self.labels) == 2

    def relevance(self, outputs: np.ndarray) -> np.ndarray:
        """A binary classifier's probability of its last (positive) label."""
        if not self.ranks():
            return super().relevance(outputs)
        return softmax(np.asarray(outputs))[:, -1]

    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        pred = self.decisions(outputs)
        return {"accuracy": accuracy(gold, pred), "macro_f1": macro_f1(gold, pred, len(self.labels))}

    def decisions(self, outputs: np.ndarray) -> np.ndarray:
        outputs = np.asarray(outputs)
        return outputs.argmax(axis=1) if len(outputs) else np.zeros(0, dtype=int)

    def example_values(self, gold: Sequence[Any], outputs: np.ndarray) -> np.ndarray:
        return (self.decisions(outputs) == np.asarray(gold)).astype(np.float64)

    # -- build half ------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_labels": len(self.labels), "id2label": dict(enumerate(self.labels)),
                "label2id": {name: i for i, name in enumerate(self.labels)},
                "problem_type": "single_label_classification"}

    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """alpha · KL(teacher_T ‖ student_T) · T² + (1 − alpha) · CE(student, gold) (Hinton et al. 2015;
        the T² keeps the soft gradients' scale); gold None: the soft term alone."""
        import torch.nn.functional as F

        t = temperature
        soft = F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), log_target=True,
                        reduction="batchmean") * t * t
        if gold is None:  # examples without gold labels (texts the teacher alone labels)
            return alpha * soft
        return alpha * soft + (1 - alpha) * F.cross_entropy(student, gold)  # gold -100 = none: ignored

    def divergence(self, student: Any, teacher: Any) -> Any:
        import torch.nn.functional as F

        return F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True, reduction="sum")


class ClassificationHead(Head):
    """A single-label head of a multi-task model: `topic` in a column spec; flat labels 'topic:acting', ..."""

    kind = "classification"
    task_class = SingleLabel

    @classmethod
    def own_labels(cls, name: str, flat: Sequence[str]) -> tuple[str, ...] | None:
        return tuple(flat)  # the default kind: any labels not another kind's

    def line(self, record: Mapping[str, Any]) -> str:
        return f"{self.name}={record['label']}:{record['score']:.4f}"
