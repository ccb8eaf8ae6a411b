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

Heads of mixed kinds: a label column written `stars:regression` is a regression head (one output,
a number; MSE in the training loss, MSE against the teacher in distillation, MSE/MAE/Pearson/Spearman
as metrics, Spearman's rho as its budget metric, a `Value` from `predict`). Its flat label is the
same `stars:regression`: one label named after a kind (a classification head has at least two), so
the labels alone still say every head's kind, and the column spec and the label read alike. With a
regression head the budget metric is `worst_head_score`, the lowest of the heads' budget metrics
(accuracy, or Spearman's rho), and the loss in points is again the largest of any head's.

Gold values are one float per head per example (class ids as floats): NaN marks an example without
that head's label (heads from several files, see multitask_files.py); it is left out of that head's
loss and metrics.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from ..evaluate import accuracy, macro_f1
from .base import Task
from .regression import Regression, Value
from .single_label import Prediction, SingleLabel

SEP = ":"  # 'head:label'
# Head kinds besides classification: the kind's name is the head's one flat label ('stars:regression').
HEAD_KINDS = ("regression",)
CLASSIFICATION = "classification"


def head_spec(column: str, where: str = "--label-column") -> tuple[str, str]:
    """'stars:regression' -> ('stars', 'regression'); 'topic' -> ('topic', 'classification')."""
    name, sep, kind = column.strip().partition(SEP)
    kind = kind.strip() if sep else CLASSIFICATION
    if kind in ("text-classification",):
        kind = CLASSIFICATION
    if kind not in (CLASSIFICATION, *HEAD_KINDS):
        raise DataError(f"{where}: head {column!r} has the unknown kind {kind!r}; write NAME, or NAME:regression "
                        "for a numeric head")
    if not name.strip():
        raise DataError(f"{where}: head {column!r} has no name")
    return name.strip(), kind


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
    one = [h for h, names in heads.items() if len(names) < 2 and names[0] not in HEAD_KINDS]
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
        self.kinds = {h: v[0] if len(v) == 1 else CLASSIFICATION for h, v in self.heads.items()}
        # each head's own task: its metrics, post-processing and losses
        self._single: dict[str, Task] = {h: Regression((h,)) if self.kinds[h] == "regression" else SingleLabel(v)
                                         for h, v in self.heads.items()}
        self.classifiers = [h for h in self.heads if self.kinds[h] == CLASSIFICATION]
        if len(self.classifiers) < len(self.heads):  # a number among the heads: not every budget metric is accuracy
            self.metric = "worst_head_score"

    # -- data --------------------------------------------------------------------------------------
    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], label_column: str) -> tuple[str, ...]:
        from ..data_files import label_columns

        specs = [head_spec(c) for c in label_column.split(",")]
        columns = label_columns(label_column)
        if len(columns) < 2:
            raise DataError(f"--task multi-task needs several label columns (--label-column a,b), got {label_column!r}")
        bad = [c for c in columns if SEP in c or not c]
        if bad:
            raise DataError(f"label column {bad[0]!r}: a head's name cannot be empty or hold {SEP!r}")
        names: list[str] = []
        for k, (column, kind) in enumerate(specs):
            head_rows = [(t, label[k], where) for t, label, where in rows if label[k] is not None]
            try:
                if kind == "regression":
                    Regression.gold(head_rows, (column,), "")  # a non-numeric target names its line
                    labels: tuple[str, ...] = (kind,)
                else:
                    labels = SingleLabel.label_names(head_rows, column)
            except DataError as exc:
                raise DataError(f"head {column!r}: {exc}") from None
            names += [f"{column}{SEP}{label}" for label in labels]
        return tuple(names)

    @classmethod
    def dataset(cls, source: Any, *, text_column: str = "text", validation: Any = None, test: Any = None,
                seed: int, strict: bool) -> Any:
        """Several files, one per head (`sentiment=a.csv,topic=b.csv`): see multitask_files.py; the built-in
        `presidential-debates-2016` (data_debates.py); else None (one file, several label columns)."""
        from . import multitask_files

        if str(source) == "presidential-debates-2016":
            from ..data_debates import HEADS, NAME, debate_rows

            if validation is not None or test is not None:
                raise ConfigError(f"--validation/--test with {NAME}: its splits are cut from it; drop the flags")
            return multitask_files.from_rows(debate_rows(), ",".join(HEADS), NAME, NAME, seed, strict)
        if not multitask_files.is_head_files(source):
            return None
        return multitask_files.dataset(str(source), text_column=text_column, validation=validation, test=test,
                                       seed=seed, strict=strict)

    @classmethod
    def gold(cls, rows: Sequence[tuple[Any, Any, str]], labels: Sequence[str],
             training: str) -> tuple[tuple[float, ...], ...]:
        """Per row one float per head: a class id, a regression target, or NaN where the row has no
        label for that head (a None label: heads from several files)."""
        heads = split_labels(labels, training)
        index = [{label: i for i, label in enumerate(v)} for v in heads.values()]
        out = []
        for _, label, where in rows:
            if not isinstance(label, tuple) or len(label) != len(heads):
                raise DataError(f"{where}: expected {len(heads)} labels ({', '.join(heads)}), got {label!r}")
            ids: list[float] = []
            for k, (head, value) in enumerate(zip(heads, label)):
                if value is None:
                    ids.append(float("nan"))
                elif len(heads[head]) == 1 and heads[head][0] == "regression":
                    ids.append(Regression.gold([(None, value, where)], (head,), training)[0])
                elif value not in index[k]:
                    raise DataError(f"{where}: label {value!r} of head {head!r} never occurs in {training}; "
                                    "every label must have training examples")
                else:
                    ids.append(index[k][value])
            out.append(tuple(ids))
        return tuple(out)

    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str) -> "MultiTask":
        heads = split_labels(labels, where)
        recorded = info.get("heads")
        if recorded is not None and {h: list(v) for h, v in heads.items()} != recorded:
            raise ConfigError(f"{where}: heads {recorded} do not match the labels {list(labels)}")
        task = cls(labels, {k: v for k, v in info.items() if k not in ("heads", "kinds")})
        if info.get("kinds") is not None and info["kinds"] != task.kinds:  # bundles before mixed heads lack it
            raise ConfigError(f"{where}: head kinds {info['kinds']} do not match the labels {list(labels)}")
        return task

    def section(self) -> dict[str, Any]:
        return {**self.info, "heads": {h: list(v) for h, v in self.heads.items()}, "kinds": dict(self.kinds)}

    # -- runtime half ------------------------------------------------------------------------------
    def head_outputs(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """{head: its logits (n, its labels)} from the concatenated (n, all labels)."""
        outputs = np.asarray(outputs).reshape(len(outputs), -1)
        return {h: outputs[:, a:b] for h, (a, b) in self.blocks.items()}

    def predictions(self, outputs: np.ndarray) -> list[dict[str, Prediction | Value]]:
        per_head = {h: self._single[h].predictions(o) for h, o in self.head_outputs(outputs).items()}
        return [{h: per_head[h][i] for h in self.heads} for i in range(len(outputs))]

    def records(self, outputs: Any, texts: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """{head: record} per example: each head's record as its own task gives it ({label, score, scores} for
        a classification head, {value} for a regression head)."""
        per_head = {h: self._single[h].records(o) for h, o in self.head_outputs(np.asarray(outputs)).items()}
        return [{h: per_head[h][i] for h in self.heads} for i in range(len(outputs))]

    def columns(self) -> tuple[tuple[str, str], ...]:
        """pred_HEAD and pred_HEAD_score per classification head, pred_HEAD (a number) per regression head."""
        return tuple(c for h in self.heads for c in
                     (((f"pred_{h}", "string"), (f"pred_{h}_score", "float")) if self.kinds[h] == CLASSIFICATION
                      else ((f"pred_{h}", "float"),)))

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(v for h in self.heads for v in
                     ((record[h]["label"], record[h]["score"]) if self.kinds[h] == CLASSIFICATION
                      else (record[h]["value"],)))

    def line(self, record: Mapping[str, Any]) -> str:
        return " ".join(f"{h}={record[h]['label']}:{record[h]['score']:.4f}" if self.kinds[h] == CLASSIFICATION
                        else f"{h}={record[h]['value']:.4f}" for h in self.heads)

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """Each head's class probabilities (a regression head: its value) side by side, (n, all labels) in
        the order of `labels`."""
        parts = [self._single[h].scores(o) for h, o in self.head_outputs(outputs).items()]
        return np.concatenate(parts, axis=1) if len(outputs) else np.zeros((0, len(self.labels)), np.float32)

    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        """Each head's metrics ('topic/accuracy', 'stars/spearman') on the examples with its label, and
        the budget metric: the lowest of the heads' budget metrics."""
        y = self.gold_array(gold)
        out: dict[str, float] = {}
        for k, (h, o) in enumerate(self.head_outputs(outputs).items()):
            has = ~np.isnan(y[:, k])  # examples with this head's label
            task = self._single[h]
            if self.kinds[h] == CLASSIFICATION:
                pred = task.decisions(o[has])
                out[f"{h}/accuracy"] = accuracy(y[has, k].astype(np.int64), pred)
                out[f"{h}/macro_f1"] = macro_f1(y[has, k].astype(np.int64), pred, len(self.heads[h]))
            else:
                out.update({f"{h}/{name}": v for name, v in task.metrics(y[has, k], o[has]).items()})
        out[self.metric] = min(out[f"{h}/{self._single[h].metric}"] for h in self.heads)
        return out

    def metric_loss(self, gold: Any, reference: np.ndarray, outputs: np.ndarray) -> float:
        """The largest loss of any head's budget metric (accuracy, or Spearman's rho), in points: the
        budget holds for every head."""
        ref, got = self.metrics(gold, reference), self.metrics(gold, outputs)
        names = [f"{h}/{self._single[h].metric}" for h in self.heads]
        return max((ref[n] - got[n]) * 100 for n in names)

    def decisions(self, outputs: np.ndarray) -> np.ndarray | None:
        """(n, classification heads): each such head's label id; two models agree on a text when every
        classification head does (regression heads have no decisions; None when no head has)."""
        if not self.classifiers:
            return None
        heads = self.head_outputs(outputs)
        return np.stack([self._single[h].decisions(heads[h]) for h in self.classifiers], axis=1) if len(outputs) \
            else np.zeros((0, len(self.classifiers)), dtype=int)

    def gold_array(self, gold: Sequence[Any]) -> np.ndarray:
        """(n, heads) float64: class ids, targets, NaN where an example has no label for a head."""
        return np.asarray(gold, dtype=np.float64).reshape(len(gold), len(self.heads))

    # -- build half --------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_labels": len(self.labels), "id2label": dict(enumerate(self.labels)),
                "label2id": {name: i for i, name in enumerate(self.labels)}}

    def check_model(self, config: Any, where: str) -> None:
        if getattr(config, "num_labels", None) != len(self.labels):
            raise ConfigError(f"{where}: the model has {config.num_labels} outputs; this multi-task model needs "
                              f"{len(self.labels)} (heads {', '.join(self.heads)})")

    def best_metric(self, asked: str) -> tuple[str, bool]:
        if asked in ("accuracy", self.metric):
            return self.metric, True
        if asked == "loss":
            return asked, False
        raise ConfigError(f"--metric {asked}: a multi-task model is chosen by accuracy (its worst head's budget "
                          "metric) or loss")

    def _per_head(self, student: Any, teacher: Any, fn: Any) -> Any:
        return sum(fn(student[:, a:b], teacher[:, a:b] if teacher is not None else None, k, h)
                   for k, (h, (a, b)) in enumerate(self.blocks.items()))

    def _head_gold(self, out: Any, gold: Any, k: int) -> tuple[Any, Any] | None:
        """(this head's outputs, its gold) on the batch's examples with a label for head k; None if none."""
        g = gold[:, k].float()
        has = ~g.isnan()
        if not bool(has.any()):
            return None
        return out[has], g[has]

    def _head_loss(self, h: str, out: Any, gold: Any, k: int) -> Any:
        labelled = self._head_gold(out, gold, k)
        if labelled is None:
            return out.sum() * 0.0  # no example of the batch has this head's label
        o, g = labelled
        return self._single[h].loss(o, g if self.kinds[h] != CLASSIFICATION else g.long())

    def loss(self, outputs: Any, gold: Any) -> Any:
        """Sum of the heads' losses (cross-entropy, or MSE for a regression head): outputs (B, all labels),
        gold (B, heads) floats, NaN = no label for that head (left out)."""
        return self._per_head(outputs, None, lambda s, _, k, h: self._head_loss(h, s, gold, k))

    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """Sum over heads of each head's distillation loss on its outputs: the soft term on every
        example, the gold term on those with the head's label."""
        def head(s: Any, t: Any, k: int, h: str) -> Any:
            task = self._single[h]
            labelled = None if gold is None else self._head_gold(s, gold, k)
            if labelled is None or alpha >= 1:  # the soft term alone (as each head's task weighs it)
                return task.distill_loss(s, t, None, temperature, alpha)
            soft = task.distill_loss(s, t, None, temperature, 1.0)  # the soft term alone (alpha 1)
            o, g = labelled
            return alpha * soft + (1 - alpha) * task.loss(o, g if self.kinds[h] != CLASSIFICATION else g.long())
        return self._per_head(student, teacher, head)

    def divergence(self, student: Any, teacher: Any) -> Any:
        return self._per_head(student, teacher, lambda s, t, _, h: self._single[h].divergence(s, t))

    # gold values are floats (NaN = no label for a head) in every batch
    gold_dtype = "float32"

    def no_gold(self) -> tuple[float, ...]:
        return (float("nan"),) * len(self.heads)

    def has_gold(self, gold: Any) -> Any:
        """(B,): examples with a label for at least one head."""
        return ~gold.float().isnan().all(dim=1)

    def training_rows(self, tokenizer: Any, split: Any, max_length: int) -> list[dict[str, Any]]:
        rows = super().training_rows(tokenizer, split, max_length)
        return [{**r, "labels": [float(v) for v in r["labels"]]} for r in rows]
