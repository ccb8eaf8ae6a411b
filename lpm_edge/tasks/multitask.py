"""Multi-task classification: one encoder, several single-label heads, one pass for all of them.

A file gives several label columns (`--label-column sentiment,topic`); each column is a head with
its own labels. The model is one sequence-classification head whose logits are the heads' label
blocks side by side (num_labels = the sum), so export, ONNX and the runtime see an ordinary
classifier of shape (n, sum); the task splits that into the heads. The labels are recorded flat as
'head:label' (the order of the logits), so the heads travel with the labels themselves; the
manifest's task section also lists them per head.

Training loss: the sum of the heads' cross-entropies. Distillation: the sum of the heads'
temperature-scaled KL terms (each as in single-label distillation). Metrics: each head's accuracy and
macro-F1 ("sentiment/accuracy"), and `worst_head_accuracy`. The budget holds for every head: the
loss in points of a candidate is the largest loss of any head's accuracy (not the difference of
the worst heads' accuracies, which could hide a head that lost more), so export's
`--max-accuracy-drop 1` means no head lost more than one point.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..evaluate import accuracy, macro_f1
from .base import Task
from .single_label import Prediction, SingleLabel, softmax

SEP = ":"  # 'head:label'


def split_labels(labels: Sequence[str], where: str) -> dict[str, tuple[str, ...]]:
    """Flat 'head:label' names -> {head: labels}, heads in order; ConfigError if they do not make heads."""
    heads: dict[str, list[str]] = {}
    for name in labels:
        head, sep, label = name.partition(SEP)
        if not sep or not head or not label:
            raise ConfigError(f"{where}: multi-task label {name!r} is not 'head{SEP}label'")
        if heads and head != list(heads)[-1] and head in heads:
            raise ConfigError(f"{where}: the labels of head {head!r} are not contiguous")
        heads.setdefault(head, []).append(label)
    if len(heads) < 2:
        raise ConfigError(f"{where}: a multi-task model has at least two heads, got {list(heads)}; "
                          "with one label column train --task text-classification")
    one = [h for h, names in heads.items() if len(names) < 2]
    if one:
        raise ConfigError(f"{where}: head {one[0]!r} has one label {heads[one[0]]}; a head needs two")
    return {h: tuple(v) for h, v in heads.items()}


class MultiTask(Task):
    kind = "multi-task"
    offers = ("predict", "predict_proba")
    metric = "worst_head_accuracy"
    model_loss = False  # the model's own loss knows one head: training uses `loss` below

    def __init__(self, labels: Sequence[str] = (), info: Mapping[str, Any] | None = None) -> None:
        super().__init__(labels, info)
        self.heads = split_labels(self.labels, "task")
        bounds = np.cumsum([0, *(len(v) for v in self.heads.values())])
        self.blocks = {h: (int(a), int(b)) for h, a, b in zip(self.heads, bounds[:-1], bounds[1:])}  # logit columns
        self._single = {h: SingleLabel(v) for h, v in self.heads.items()}

    # -- data --------------------------------------------------------------------------------------
    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], label_column: str) -> tuple[str, ...]:
        from ..data_files import label_columns

        columns = label_columns(label_column)
        if len(columns) < 2:
            raise DataError(f"--task multi-task needs several label columns (--label-column a,b), got {label_column!r}")
        bad = [c for c in columns if SEP in c or not c]
        if bad:
            raise DataError(f"label column {bad[0]!r}: a head's name cannot be empty or hold {SEP!r}")
        names: list[str] = []
        for k, column in enumerate(columns):
            head_rows = [(t, label[k], where) for t, label, where in rows]
            try:
                labels = SingleLabel.label_names(head_rows, column)
            except DataError as exc:
                raise DataError(f"head {column!r}: {exc}") from None
            names += [f"{column}{SEP}{label}" for label in labels]
        return tuple(names)

    @classmethod
    def gold(cls, rows: Sequence[tuple[Any, Any, str]], labels: Sequence[str], training: str) -> tuple[tuple[int, ...], ...]:
        heads = split_labels(labels, training)
        index = [{label: i for i, label in enumerate(v)} for v in heads.values()]
        out = []
        for _, label, where in rows:
            if not isinstance(label, tuple) or len(label) != len(heads):
                raise DataError(f"{where}: expected {len(heads)} labels ({', '.join(heads)}), got {label!r}")
            ids = []
            for k, (head, value) in enumerate(zip(heads, label)):
                if value not in index[k]:
                    raise DataError(f"{where}: label {value!r} of head {head!r} never occurs in {training}; "
                                    "every label must have training examples")
                ids.append(index[k][value])
            out.append(tuple(ids))
        return tuple(out)

    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str) -> "MultiTask":
        heads = split_labels(labels, where)
        recorded = info.get("heads")
        if recorded is not None and {h: list(v) for h, v in heads.items()} != recorded:
            raise ConfigError(f"{where}: heads {recorded} do not match the labels {list(labels)}")
        return cls(labels, {k: v for k, v in info.items() if k != "heads"})

    def section(self) -> dict[str, Any]:
        return {**self.info, "heads": {h: list(v) for h, v in self.heads.items()}}

    # -- runtime half ------------------------------------------------------------------------------
    def head_outputs(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """{head: its logits (n, its labels)} from the concatenated (n, all labels)."""
        outputs = np.asarray(outputs).reshape(len(outputs), -1)
        return {h: outputs[:, a:b] for h, (a, b) in self.blocks.items()}

    def predictions(self, outputs: np.ndarray) -> list[dict[str, Prediction]]:
        per_head = {h: self._single[h].predictions(o) for h, o in self.head_outputs(outputs).items()}
        return [{h: per_head[h][i] for h in self.heads} for i in range(len(outputs))]

    def records(self, outputs: Any, texts: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """{head: {"label", "score", "scores"}} per example: each head's record as a single-label one."""
        per_head = {h: self._single[h].records(o) for h, o in self.head_outputs(np.asarray(outputs)).items()}
        return [{h: per_head[h][i] for h in self.heads} for i in range(len(outputs))]

    def columns(self) -> tuple[tuple[str, str], ...]:
        """pred_HEAD and pred_HEAD_score per head."""
        return tuple(c for h in self.heads for c in ((f"pred_{h}", "string"), (f"pred_{h}_score", "float")))

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(v for h in self.heads for v in (record[h]["label"], record[h]["score"]))

    def line(self, record: Mapping[str, Any]) -> str:
        return " ".join(f"{h}={record[h]['label']}:{record[h]['score']:.4f}" for h in self.heads)

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """Each head's class probabilities side by side, (n, all labels) in the order of `labels`."""
        parts = [softmax(o) for o in self.head_outputs(outputs).values()]
        return np.concatenate(parts, axis=1) if len(outputs) else np.zeros((0, len(self.labels)), np.float32)

    # -- evaluation --------------------------------------------------------------------------------
    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        y = self.gold_array(gold)
        out: dict[str, float] = {}
        for k, (h, o) in enumerate(self.head_outputs(outputs).items()):
            pred = self._single[h].decisions(o)
            out[f"{h}/accuracy"] = accuracy(y[:, k], pred)
            out[f"{h}/macro_f1"] = macro_f1(y[:, k], pred, len(self.heads[h]))
        out["worst_head_accuracy"] = min(out[f"{h}/accuracy"] for h in self.heads)
        return out

    def metric_loss(self, gold: Any, reference: np.ndarray, outputs: np.ndarray) -> float:
        """The largest loss of any head's accuracy, in points: the budget holds for every head."""
        ref, got = self.metrics(gold, reference), self.metrics(gold, outputs)
        return max((ref[f"{h}/accuracy"] - got[f"{h}/accuracy"]) * 100 for h in self.heads)

    def decisions(self, outputs: np.ndarray) -> np.ndarray:
        """(n, heads): each head's label id; two models agree on a text when every head does."""
        heads = self.head_outputs(outputs)
        return np.stack([self._single[h].decisions(o) for h, o in heads.items()], axis=1) if len(outputs) \
            else np.zeros((0, len(self.heads)), dtype=int)

    def gold_array(self, gold: Sequence[Any]) -> np.ndarray:
        return np.asarray(gold, dtype=np.int64).reshape(len(gold), len(self.heads))

    # -- build half --------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_labels": len(self.labels), "id2label": dict(enumerate(self.labels)),
                "label2id": {name: i for i, name in enumerate(self.labels)}}

    def check_model(self, config: Any, where: str) -> None:
        if getattr(config, "num_labels", None) != len(self.labels):
            raise ConfigError(f"{where}: the model has {config.num_labels} outputs; this multi-task model needs "
                              f"{len(self.labels)} (heads {', '.join(self.heads)})")

    def best_metric(self, asked: str) -> tuple[str, bool]:
        if asked == "accuracy":
            return self.metric, True
        if asked == "loss":
            return asked, False
        raise ConfigError(f"--metric {asked}: a multi-task model is chosen by accuracy (its worst head's) or loss")

    def _per_head(self, student: Any, teacher: Any, fn: Any) -> Any:
        return sum(fn(student[:, a:b], teacher[:, a:b] if teacher is not None else None, k)
                   for k, (a, b) in enumerate(self.blocks.values()))

    def loss(self, outputs: Any, gold: Any) -> Any:
        """Sum of the heads' cross-entropies: outputs (B, all labels), gold (B, heads) ids."""
        import torch.nn.functional as F

        return self._per_head(outputs, None, lambda s, _, k: F.cross_entropy(s, gold[:, k]))

    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """Sum over heads of single-label distillation's loss on that head's logits."""
        single = SingleLabel(("0", "1"))
        return self._per_head(student, teacher, lambda s, t, k: single.distill_loss(
            s, t, None if gold is None else gold[:, k], temperature, alpha))

    def divergence(self, student: Any, teacher: Any) -> Any:
        single = SingleLabel(("0", "1"))
        return self._per_head(student, teacher, lambda s, t, _: single.divergence(s, t))
