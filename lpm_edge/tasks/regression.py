"""Regression: one text in, one number out (a star score, a rating, a relevance grade).

The head is a single linear output (transformers' `problem_type="regression"`, num_labels 1); the
training loss is the mean squared error. Metrics: MSE, MAE, Pearson's r and Spearman's rho.

The budget metric is **Spearman's rho**: an export or search may lose at most N points of it
(100 x the drop of rho). Spearman rather than Pearson because it asks whether the compressed model
orders texts as the full one does, which is what a score used for ranking or for a threshold needs,
and because a few extreme targets cannot dominate it. Neither correlation sees a constant shift of
every prediction; MSE and MAE are reported beside it for that.

Regression has no discrete decisions, so the agreement of two models (classifiers: the share of texts
given the same label) is None here rather than some rounding that would flip at bucket edges; the
bundle's parity is its largest absolute difference from the source model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .base import Task
from .heads import Head

# Metrics a Trainer may pick the best checkpoint by, and whether higher is better.
BEST = {"spearman": True, "pearson": True, "mse": False, "mae": False, "loss": False}


@dataclass(frozen=True)
class Value:
    """What `predict` returns for one text of a regression bundle."""

    value: float


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank (as scipy.stats.rankdata's default)."""
    x = np.asarray(x, dtype=np.float64)
    sorter = np.argsort(x, kind="mergesort")
    inverse = np.empty(len(x), dtype=np.intp)
    inverse[sorter] = np.arange(len(x))
    xs = x[sorter]
    first = np.r_[True, xs[1:] != xs[:-1]]  # (n,) True where a run of equal values starts
    dense = first.cumsum()[inverse]  # 1-based tie-group id per element
    bounds = np.r_[np.nonzero(first)[0], len(x)]  # group g spans sorted positions bounds[g-1]..bounds[g]-1
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r; nan when either side is constant (no correlation is defined)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    den = math.sqrt(float(da @ da) * float(db @ db))
    return float(da @ db / den) if den > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho: Pearson's r of the average ranks."""
    return pearson(rankdata(a), rankdata(b)) if len(a) >= 2 else float("nan")


class Regression(Task):
    kind = "regression"
    offers = ("predict",)
    metric = "spearman"
    gold_dtype = "float32"

    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], label_column: str) -> tuple[str, ...]:
        cls.gold(rows, (label_column,), "")  # a bad target fails here, naming its line, before any split is cut
        return (label_column,)

    @classmethod
    def gold(cls, rows: Sequence[tuple[Any, Any, str]], labels: Sequence[str], training: str) -> tuple[float, ...]:
        column = labels[0] if labels else "label"
        out = []
        for _, raw, where in rows:
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise DataError(f"{where}: target {raw!r} in column {column!r} is not a number; "
                                "a regression target must be numeric (e.g. 3.5)") from None
            if not math.isfinite(value):
                raise DataError(f"{where}: target {raw!r} in column {column!r} is not finite; "
                                "remove the row or give it a number")
            out.append(value)
        return tuple(out)

    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str,
                     inputs: Sequence[str] | None = None) -> "Regression":
        if len(labels) != 1:
            raise ConfigError(f"{where}: a regression task has one target (its column's name), got {list(labels)}")
        return cls(labels, info, inputs)

    # -- runtime half ------------------------------------------------------------------------------
    def output_shape(self, n: int) -> tuple[int, ...]:
        return (n, 1)

    def values(self, outputs: np.ndarray) -> np.ndarray:
        """The predicted number per example, (n,), from outputs (n, 1)."""
        outputs = np.asarray(outputs, dtype=np.float64)
        return outputs.reshape(len(outputs), -1)[:, 0] if len(outputs) else np.zeros(0)

    def predictions(self, outputs: np.ndarray) -> list[Value]:
        return [Value(float(v)) for v in self.values(outputs)]

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        return np.asarray(outputs, dtype=np.float32).reshape(len(outputs), 1)

    def records(self, outputs: Any, texts: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """{"value": the predicted number} per example."""
        return [{"value": float(v)} for v in self.values(outputs)]

    def columns(self) -> tuple[tuple[str, str], ...]:
        return (("pred_value", "float"),)

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        return (record["value"],)

    def line(self, record: Mapping[str, Any]) -> str:
        return f"{record['value']:.4f}"

    # -- evaluation --------------------------------------------------------------------------------
    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        y, p = np.asarray(gold, dtype=np.float64), self.values(outputs)
        if not len(y):
            return {k: float("nan") for k in ("mse", "mae", "pearson", "spearman")}
        err = p - y
        return {"mse": float(np.mean(err * err)), "mae": float(np.mean(np.abs(err))),
                "pearson": pearson(y, p), "spearman": spearman(y, p)}

    def decisions(self, outputs: np.ndarray) -> None:  # type: ignore[override]
        return None  # no discrete decisions: agreement is None (see the module's docstring)

    def gold_array(self, gold: Sequence[Any]) -> np.ndarray:
        return np.asarray(gold, dtype=np.float64)

    # -- build half --------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_labels": 1, "id2label": {0: self.labels[0]}, "label2id": {self.labels[0]: 0},
                "problem_type": "regression"}

    def check_model(self, config: Any, where: str) -> None:
        if getattr(config, "num_labels", 1) != 1:
            raise ConfigError(f"{where}: the model has {config.num_labels} outputs; a regression checkpoint has 1. "
                              "Train it with --task regression")

    def best_metric(self, asked: str) -> tuple[str, bool]:
        name = self.metric if asked == "accuracy" else asked  # train's default metric means the budget metric
        if name not in BEST:
            raise ConfigError(f"--metric {asked}: a regression model is chosen by one of {', '.join(BEST)}")
        return name, BEST[name]

    def loss(self, outputs: Any, gold: Any) -> Any:
        import torch.nn.functional as F

        return F.mse_loss(outputs.reshape(-1), gold.float().reshape(-1))

    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """alpha · MSE(student, teacher) + (1 − alpha) · MSE(student, gold); no temperature (no softmax).
        Examples whose gold is NaN (`no_gold`: texts without a target) enter the soft term only."""
        import torch.nn.functional as F

        soft = F.mse_loss(student.reshape(-1), teacher.reshape(-1))
        if alpha >= 1 or gold is None:
            return soft
        has = self.has_gold(gold.reshape(-1))
        if not bool(has.any()):
            return soft
        return alpha * soft + (1 - alpha) * self.loss(student.reshape(-1)[has], gold.reshape(-1)[has])

    def no_gold(self) -> float:
        return float("nan")

    def has_gold(self, gold: Any) -> Any:
        return ~gold.float().isnan()

    def divergence(self, student: Any, teacher: Any) -> Any:
        return ((student.reshape(-1) - teacher.reshape(-1)) ** 2).sum()


class RegressionHead(Head):
    """A numeric head of a multi-task model: `stars:regression` in a column spec, and as its one flat
    label the same `stars:regression` (a classification head has two labels or more, so the labels
    alone still say the kind). Its task's one label is the head's name."""

    kind = "regression"
    task_class = Regression

    @classmethod
    def own_labels(cls, name: str, flat: Sequence[str]) -> tuple[str, ...] | None:
        return (name,) if tuple(flat) == (cls.kind,) else None

    @classmethod
    def flat_labels(cls, name: str, labels: Sequence[str]) -> tuple[str, ...]:
        return (cls.kind,)

    def line(self, record: Mapping[str, Any]) -> str:
        return f"{self.name}={record['value']:.4f}"
