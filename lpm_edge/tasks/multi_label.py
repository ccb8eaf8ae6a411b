"""Multi-label classification: one text in, any number of N labels out (one sigmoid per label).

Data: a row's labels are a JSON list in JSONL (`"labels": ["toxic", "insult"]`, `[]` for none),
or one CSV/TSV cell with the labels separated by `|` (`toxic|insult`, an empty cell for none).
Gold values are multi-hot tuples in label order.

Each label has its own decision threshold on its sigmoid score, tuned at training time on the
validation split to maximise that label's F1 and recorded in training.json and the bundle's
manifest (`task.thresholds`). The budget metric is micro-F1; the metrics also give macro-F1,
each label's F1 (`f1/<label>`) and exact match (the share of texts whose label set is right).
A label with neither gold nor predicted positives in a split scores F1 1 there (nothing to find,
nothing found), so a rare label missing from a small test split does not sink macro-F1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .base import Task, need_labels
from .heads import Head

SEPARATOR = "|"  # between labels in a CSV/TSV cell
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class MultiLabelPrediction:
    """The labels over their thresholds, highest score first, with their scores; and every label's score."""

    labels: tuple[str, ...]
    scores: Mapping[str, float]  # the chosen labels' scores
    all_scores: Mapping[str, float]


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return (1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))).astype(np.float32)


def parse_labels(raw: Any, where: str) -> tuple[str, ...]:
    """A row's label names: from a list (JSONL, Parquet), or a `|`-separated string (CSV/TSV); none
    for an empty cell, `[]` or null. Duplicates count once."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        items: list[Any] = raw.split(SEPARATOR)
    elif isinstance(raw, (list, tuple)):
        items = list(raw)
    else:
        raise DataError(f"{where}: labels must be a list of names or a '{SEPARATOR}'-separated string, got {raw!r}")
    names: dict[str, None] = {}
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise DataError(f"{where}: label {item!r} is not a name (a string); labels were {raw!r}")
        name = str(item).strip()
        if name:
            names[name] = None
        elif not isinstance(raw, str):
            raise DataError(f"{where}: an empty label name in {raw!r}")
    return tuple(names)


def f1_per_label(gold: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """F1 of each column of two (n, labels) 0/1 arrays; 1 where a label has neither gold nor predicted positives."""
    tp = (gold & pred).sum(axis=0)
    wrong = (gold ^ pred).sum(axis=0)  # false positives + false negatives
    denom = 2 * tp + wrong
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 1.0)


def best_threshold(scores: np.ndarray, gold: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising one label's F1 when `score >= threshold` predicts it.

    Candidates lie halfway between neighbouring distinct scores; among equally good ones the one
    nearest 0.5 wins. A label without positives in `gold` keeps 0.5 (there is no F1 to tune)."""
    gold = np.asarray(gold, dtype=bool)
    positives = int(gold.sum())
    if positives == 0 or len(scores) == 0:
        return DEFAULT_THRESHOLD, float("nan")
    order = np.argsort(-scores, kind="stable")
    s, g = np.asarray(scores, dtype=np.float64)[order], gold[order]
    tp = np.cumsum(g)  # predicting the top k+1 texts as positive
    k = np.arange(1, len(s) + 1)
    f1 = 2 * tp / (k + positives)
    last = np.r_[s[1:] != s[:-1], True]  # a cut can only fall after the last of equal scores
    f1 = np.where(last, f1, -1.0)
    below = np.r_[s[1:], 0.0]
    cut = np.where(last, (s + below) / 2, np.nan)
    cut = np.clip(cut, 1e-6, 1 - 1e-6)
    best = f1.max()
    tied = np.flatnonzero(f1 >= best - 1e-12)
    pick = tied[np.argmin(np.abs(cut[tied] - DEFAULT_THRESHOLD))]
    return float(cut[pick]), float(best)


class MultiLabel(Task):
    kind = "multi-label"
    offers = ("predict", "predict_proba")
    metric = "micro_f1"
    label_lists = True
    fits_on_validation = True

    def __init__(self, labels: Sequence[str] = (), info: Mapping[str, Any] | None = None,
                 inputs: Sequence[str] | None = None) -> None:
        super().__init__(labels, info, inputs)
        thresholds = self.info.get("thresholds")
        self.thresholds = np.asarray(thresholds if thresholds is not None else [DEFAULT_THRESHOLD] * len(self.labels),
                                     dtype=np.float32)

    # -- data ------------------------------------------------------------------------------------
    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], label_column: str) -> tuple[str, ...]:
        counts: dict[str, int] = {}
        for _, raw, where in rows:
            for name in parse_labels(raw, where):
                counts[name] = counts.get(name, 0) + 1
        span = f"{rows[0][2]}-{rows[-1][2].rsplit(':', 1)[1]}" if rows else "the training file"
        if not counts:
            raise DataError(f"{span}: no training row has a label in column {label_column!r}; check "
                            f"--label-column and the format (a JSON list per row, or labels separated by "
                            f"'{SEPARATOR}' in a CSV/TSV cell)")
        full = sorted(name for name, n in counts.items() if n == len(rows))
        if full:
            raise DataError(f"{span}: the label {full[0]!r} is on every training row: its head would have one "
                            "class and nothing to learn; drop it from the file or add rows without it")
        return tuple(sorted(counts))

    @classmethod
    def gold(cls, rows: Sequence[tuple[Any, Any, str]], labels: Sequence[str], training: str) -> tuple[tuple[int, ...], ...]:
        index = {label: i for i, label in enumerate(labels)}
        out = []
        for _, raw, where in rows:
            hot = [0] * len(labels)
            for name in parse_labels(raw, where):
                if name not in index:
                    raise DataError(f"{where}: label {name!r} never occurs in {training}; every label must "
                                    f"have training examples (labels there: {', '.join(labels)})")
                hot[index[name]] = 1
            out.append(tuple(hot))
        return tuple(out)

    def check_training(self, gold: Sequence[Any], where: str) -> None:
        hot = self.gold_array(gold)
        if not len(hot):
            return
        counts = hot.sum(axis=0)
        for i, name in enumerate(self.labels):
            if counts[i] in (0, len(hot)):
                raise DataError(
                    f"{where}: the label {name!r} is on {'none' if counts[i] == 0 else 'every one'} of the "
                    f"{len(hot):,} training texts used: its head would have one class; use more training "
                    "texts (--limit-train), shuffle the file, or drop the label")

    # -- record ----------------------------------------------------------------------------------
    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str,
                     inputs: Sequence[str] | None = None) -> "MultiLabel":
        need_labels(labels, where, at_least=1)
        if len(set(labels)) != len(labels):
            raise ConfigError(f"{where}: labels repeat a name: {list(labels)}")
        thresholds = info.get("thresholds")
        if thresholds is not None:
            ok = (isinstance(thresholds, list) and len(thresholds) == len(labels)
                  and all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and 0 <= t <= 1
                          for t in thresholds))
            if not ok:
                raise ConfigError(f"{where}: 'thresholds' must list one number in [0, 1] per label "
                                  f"({len(labels)}), got {thresholds!r}")
        return cls(labels, info, inputs)

    def section(self) -> dict[str, Any]:
        return {**self.info, "thresholds": [round(float(t), 6) for t in self.thresholds]}

    def fit(self, gold: Sequence[Any], outputs: np.ndarray) -> "MultiLabel":
        """This task with each label's threshold tuned for its F1 on (validation) gold and outputs."""
        hot, probs = self.gold_array(gold).astype(bool), self.scores(outputs)
        tuned = [best_threshold(probs[:, j], hot[:, j])[0] for j in range(len(self.labels))]
        return type(self)(self.labels, {**self.info, "thresholds": [round(t, 6) for t in tuned]}, self.input_fields)

    def loss(self, outputs: Any, gold: Any) -> Any:
        """Binary cross-entropy per label (pruning's gradient importance takes it)."""
        import torch.nn.functional as F

        return F.binary_cross_entropy_with_logits(outputs, gold.float())

    def best_metric(self, asked: str) -> tuple[str, bool]:
        name = self.metric if asked == "accuracy" else asked  # train's default metric means the budget metric
        return name, name != "loss"

    # -- runtime half ----------------------------------------------------------------------------
    def scores(self, outputs: np.ndarray) -> np.ndarray:
        return sigmoid(outputs)

    def decisions(self, outputs: np.ndarray) -> np.ndarray:
        outputs = np.asarray(outputs)
        if not len(outputs):
            return np.zeros((0, len(self.labels)), dtype=bool)
        return self.scores(outputs) >= self.thresholds

    def predictions(self, outputs: np.ndarray) -> list[MultiLabelPrediction]:
        return [MultiLabelPrediction(tuple(r["labels"]), r["scores"], r["all_scores"])
                for r in self.records(outputs)]

    def records(self, outputs: Any, texts: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """{"labels": [over their thresholds, highest first], "scores": {those labels' scores},
        "all_scores": {every label's score}} per example, from the logits."""
        out = []
        for row in self.scores(np.asarray(outputs)):
            over = [j for j in np.argsort(-row, kind="stable") if row[j] >= self.thresholds[j]]
            out.append({"labels": [self.labels[j] for j in over],
                        "scores": {self.labels[j]: float(row[j]) for j in over},
                        "all_scores": dict(zip(self.labels, map(float, row)))})
        return out

    def columns(self) -> tuple[tuple[str, str], ...]:
        return (("pred_labels", "string"), ("pred_scores", "json"))

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """The labels over their thresholds joined by '|' (none: an empty cell), and every label's score."""
        return ("|".join(record["labels"]), record["all_scores"])

    def line(self, record: Mapping[str, Any]) -> str:
        return f"{'|'.join(record['labels'])}\t{'|'.join(f'{v:.4f}' for v in record['scores'].values())}"

    # -- evaluation ------------------------------------------------------------------------------
    def gold_array(self, gold: Sequence[Any]) -> np.ndarray:
        return np.asarray(gold, dtype=np.int64).reshape(-1, len(self.labels))

    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        hot = self.gold_array(gold).astype(bool)
        pred = self.decisions(outputs)
        if not len(hot):
            return {"micro_f1": float("nan"), "macro_f1": float("nan"), "exact_match": float("nan")}
        tp = int((hot & pred).sum())
        wrong = int((hot ^ pred).sum())
        per = f1_per_label(hot, pred)
        return {
            "micro_f1": 2 * tp / (2 * tp + wrong) if 2 * tp + wrong else 1.0,
            "macro_f1": float(per.mean()),
            "exact_match": float((hot == pred).all(axis=1).mean()),
            **{f"f1/{name}": float(v) for name, v in zip(self.labels, per)},
        }

    def train_metrics(self, gold: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        """While training (no thresholds yet) the metrics at thresholds tuned on these very outputs, as
        the finished model will be tuned on the validation split: a model whose scores rank well but sit
        below 0.5 early on is not taken for one that finds nothing. Once tuned (the test split), the
        recorded thresholds."""
        gold = (np.asarray(gold) > 0.5).astype(np.int64)
        task = self if "thresholds" in self.info else self.fit(gold, outputs)
        return task.metrics(gold, outputs)

    # -- build half ------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_labels": len(self.labels), "id2label": dict(enumerate(self.labels)),
                "label2id": {name: i for i, name in enumerate(self.labels)},
                "problem_type": "multi_label_classification"}

    def check_model(self, config: Any, where: str) -> None:
        if getattr(config, "num_labels", len(self.labels)) != len(self.labels):
            raise ConfigError(f"{where}: the model has {config.num_labels} outputs but the task has "
                              f"{len(self.labels)} labels {list(self.labels)}; retrain with --task multi-label")

    def training_rows(self, tokenizer: Any, split: Any, max_length: int) -> list[dict[str, Any]]:
        rows = super().training_rows(tokenizer, split, max_length)
        for row in rows:  # BCEWithLogitsLoss takes float targets
            row["labels"] = [float(v) for v in row["labels"]]
        return rows

    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """alpha · BCE(student_T, sigmoid(teacher_T)) · T² + (1 − alpha) · BCE(student, gold), each
        label a Bernoulli: the sigmoid counterpart of Hinton et al.'s softened softmax (the T² keeps
        the soft gradients' scale as T grows)."""
        import torch
        import torch.nn.functional as F

        t = temperature
        soft = F.binary_cross_entropy_with_logits(student / t, torch.sigmoid(teacher / t)) * t * t
        if alpha >= 1 or gold is None:
            return soft
        return alpha * soft + (1 - alpha) * F.binary_cross_entropy_with_logits(student, gold.float())

    def divergence(self, student: Any, teacher: Any) -> Any:
        """Summed KL(teacher ‖ student) of each label's Bernoulli, over the batch and the labels."""
        import torch
        import torch.nn.functional as F

        p = torch.sigmoid(teacher)
        return (F.binary_cross_entropy_with_logits(student, p, reduction="sum")
                - F.binary_cross_entropy_with_logits(teacher, p, reduction="sum"))


class MultiLabelHead(Head):
    """A multi-label head of a multi-task model: `tags:multi-label` in a column spec (or `--head
    tags=FILE:multi-label`); its cells read as the multi-label task reads its label column (a JSON
    list, or names separated by '|'). Flat labels 'tags:multi-label:toxic', ...: the kind after the
    head's name, as in its column spec, so the labels alone still say the kind. Its thresholds are
    its task's, tuned on the validation split after training and recorded per head."""

    kind = "multi-label"
    task_class = MultiLabel
    scalar_gold = False
    PREFIX = f"{kind}:"

    @classmethod
    def own_labels(cls, name: str, flat: Sequence[str]) -> tuple[str, ...] | None:
        if not flat or not all(f.startswith(cls.PREFIX) and len(f) > len(cls.PREFIX) for f in flat):
            return None
        return tuple(f[len(cls.PREFIX):] for f in flat)

    @classmethod
    def flat_labels(cls, name: str, labels: Sequence[str]) -> tuple[str, ...]:
        return tuple(cls.PREFIX + label for label in labels)

    @classmethod
    def read_rows(cls, path: Any, text_column: str, column: str,
                  text_pair_column: str | None = None) -> list[tuple[Any, Any, str]]:
        """Each row's label set as a tuple of names (none: ()), so that None keeps meaning 'no label for
        this head' (a text another head's file gives)."""
        return [(text, tuple(sorted(parse_labels(raw, where))), where)
                for text, raw, where in MultiLabel.read_rows(path, text_column, column, text_pair_column)]

    def line(self, record: Mapping[str, Any]) -> str:
        return f"{self.name}=" + "|".join(f"{label}:{score:.4f}" for label, score in record["scores"].items())
