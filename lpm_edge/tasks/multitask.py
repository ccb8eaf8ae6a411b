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

Multi-label heads: a label column written `tags:multi-label` holds a label set per row, read as the
multi-label task reads its column (a JSON list, or names separated by '|'); sigmoid outputs, one per
label, flat labels `tags:multi-label:toxic` (the kind after the head's name, as in the column spec);
per-label thresholds tuned on the validation split after training, recorded in the task section's
`head_info` (`{"tags": {"thresholds": [...]}}`); the multi-label task's metrics, budget metric
(micro-F1), records, losses and distillation loss for that head.

Each head is a small object owned by its kind's task module (heads.py: `ClassificationHead`,
`RegressionHead`, `MultiLabelHead`): this module splits the outputs and the gold per head and asks
each head's task; it names no kind.

Gold values are floats side by side, a block per head (a class id or a target: one float; a label
set: one 0/1 per label): NaN throughout a block marks an example without that head's label (heads
from several files, see multitask_files.py); it is left out of that head's loss and metrics.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .base import Task
from .heads import Head
from .multi_label import MultiLabelHead
from .regression import RegressionHead
from .single_label import ClassificationHead

SEP = ":"  # 'head:label'
# Head kinds by the name a column spec gives them ('stars:regression'); a name alone is a classification head.
HEADS: dict[str, type[Head]] = {h.kind: h for h in (ClassificationHead, RegressionHead, MultiLabelHead)}
CLASSIFICATION = ClassificationHead.kind
HEAD_KINDS = tuple(k for k in HEADS if k != CLASSIFICATION)  # kinds a spec names after the head's name
# Which kind a head's flat labels are written as: the first whose writing they match (classification last).
_RESOLVE = (RegressionHead, MultiLabelHead, ClassificationHead)


def head_spec(column: str, where: str = "--label-column") -> tuple[str, str]:
    """'stars:regression' -> ('stars', 'regression'); 'topic' -> ('topic', 'classification')."""
    name, sep, kind = column.strip().partition(SEP)
    kind = kind.strip() if sep else CLASSIFICATION
    if kind in ("text-classification",):
        kind = CLASSIFICATION
    if kind not in HEADS:
        raise DataError(f"{where}: head {column!r} has the unknown kind {kind!r}; write NAME, NAME:regression "
                        "for a numeric head, or NAME:multi-label for a head with a set of labels per text")
    if not name.strip():
        raise DataError(f"{where}: head {column!r} has no name")
    return name.strip(), kind


def split_labels(labels: Sequence[str], where: str) -> dict[str, tuple[str, ...]]:
    """Flat 'head:label' names -> {head: the labels after 'head:'}, heads in order; ConfigError if they
    do not make heads."""
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
    return {h: tuple(v) for h, v in heads.items()}


def resolve(name: str, flat: Sequence[str]) -> type[Head]:
    """The kind of head whose flat labels `flat` are (classification unless another kind's writing)."""
    return next(c for c in _RESOLVE if c.own_labels(name, flat) is not None)


def make_heads(labels: Sequence[str], head_info: Mapping[str, Any], where: str) -> dict[str, Head]:
    """{head: Head} from the flat labels and each head's recorded task fields; ConfigError naming `where`."""
    out: dict[str, Head] = {}
    for name, flat in split_labels(labels, where).items():
        cls = resolve(name, flat)
        own = cls.own_labels(name, flat)
        info = head_info.get(name) or {}
        if not isinstance(info, dict):
            raise ConfigError(f"{where}: head_info of head {name!r} must be an object, got {info!r}")
        out[name] = cls.from_record(name, own, dict(info), f"{where}: head {name!r}")
    return out


class MultiTask(Task):
    kind = "multi-task"
    offers = ("predict", "predict_proba")
    metric = "worst_head_accuracy"
    model_loss = False  # the model's own loss knows one head: training uses `loss` below

    def __init__(self, labels: Sequence[str] = (), info: Mapping[str, Any] | None = None,
                 inputs: Sequence[str] | None = None, where: str = "task") -> None:
        info = dict(info or {})
        head_info = info.pop("head_info", None) or {}
        super().__init__(labels, info, inputs)
        self.heads = split_labels(self.labels, where)  # {head: its labels after 'head:'}, as recorded
        self.specs: dict[str, Head] = make_heads(self.labels, head_info, where)  # {head: its Head}
        bounds = np.cumsum([0, *(h.width for h in self.specs.values())])
        self.blocks = {h: (int(a), int(b)) for h, a, b in zip(self.specs, bounds[:-1], bounds[1:])}  # logit columns
        gold = np.cumsum([0, *(h.gold_width for h in self.specs.values())])
        self.gold_blocks = {h: (int(a), int(b)) for h, a, b in zip(self.specs, gold[:-1], gold[1:])}  # gold columns
        self.kinds = {h: head.kind for h, head in self.specs.items()}
        if any(h.task.metric != "accuracy" for h in self.specs.values()):  # not every budget metric is accuracy
            self.metric = "worst_head_score"
        self.fits_on_validation = any(h.task.fits_on_validation for h in self.specs.values())

    # -- data --------------------------------------------------------------------------------------
    @classmethod
    def read_rows(cls, path: Any, text_column: str, label_column: str,
                  text_pair_column: str | None = None) -> list[tuple[Any, Any, str]]:
        """Rows whose label is a tuple, one value per head column, each read as its head reads it (a label
        set for a multi-label head); one read of the file when every head reads plain labels."""
        specs = [head_spec(c) for c in label_column.split(",")]
        if not any(HEADS[kind].task_class.label_lists for _, kind in specs):
            return super().read_rows(path, text_column, label_column, text_pair_column)
        per_head = [HEADS[kind].read_rows(path, text_column, column, text_pair_column) for column, kind in specs]
        return [(row[0][0], tuple(r[1] for r in row), row[0][2]) for row in zip(*per_head)]

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
            head = HEADS[kind]
            head_rows = [(t, label[k], where) for t, label, where in rows if label[k] is not None]
            try:
                flat = head.flat_labels(column, head.label_names(head_rows, column))
                if resolve(column, flat) is not head:  # e.g. class labels written as another kind writes its own
                    raise DataError(f"{head_rows[0][2]}: the labels {list(flat)} of this {kind} head read as a "
                                    f"{resolve(column, flat).kind} head's; rename them")
            except DataError as exc:
                raise DataError(f"head {column!r}: {exc}") from None
            names += [f"{column}{SEP}{label}" for label in flat]
        return tuple(names)

    @classmethod
    def dataset(cls, source: Any, *, text_column: str = "text", validation: Any = None, test: Any = None,
                seed: int, strict: bool) -> Any:
        """Several files, one per head (`sentiment=a.csv,topic=b.csv`): see multitask_files.py; the built-in
        `presidential-debates-2016` (data_debates.py); else None (one file, several label columns)."""
        from . import multitask_files

        if str(source) == "presidential-debates-2016":
            from ..data_debates import HEADS as DEBATE_HEADS, NAME, debate_rows

            if validation is not None or test is not None:
                raise ConfigError(f"--validation/--test with {NAME}: its splits are cut from it; drop the flags")
            return multitask_files.from_rows(debate_rows(), ",".join(DEBATE_HEADS), NAME, NAME, seed, strict)
        if not multitask_files.is_head_files(source):
            return None
        return multitask_files.dataset(str(source), text_column=text_column, validation=validation, test=test,
                                       seed=seed, strict=strict)

    @classmethod
    def gold(cls, rows: Sequence[tuple[Any, Any, str]], labels: Sequence[str],
             training: str) -> tuple[tuple[float, ...], ...]:
        """Per row the heads' gold blocks side by side (a class id, a target, a 0/1 per label of a
        multi-label head), NaN throughout a head's block where the row has no label for it (a None label:
        heads from several files). A bad value is the head's task's DataError, naming the head."""
        heads = make_heads(labels, {}, training)
        for _, label, where in rows:
            if not isinstance(label, tuple) or len(label) != len(heads):
                raise DataError(f"{where}: expected {len(heads)} labels ({', '.join(heads)}), got {label!r}")
        out = np.full((len(rows), sum(h.gold_width for h in heads.values())), np.nan)
        start = 0
        for k, (name, head) in enumerate(heads.items()):
            has = [i for i, (_, label, _) in enumerate(rows) if label[k] is not None]
            try:
                block = head.gold([(None, rows[i][1][k], rows[i][2]) for i in has], training)
            except DataError as exc:
                raise DataError(f"head {name!r}: {exc}") from None
            out[has, start:start + head.gold_width] = block
            start += head.gold_width
        return tuple(tuple(r) for r in out.tolist())

    def check_training(self, gold: Sequence[Any], where: str) -> None:
        """Each head's own check on the training examples with its label (a multi-label head: no label
        on none or every one of them)."""
        y = self.gold_array(gold)
        for h, head in self.specs.items():
            head.task.check_training(self._labelled(y, h)[1], f"{where}: head {h!r}")

    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str,
                     inputs: Sequence[str] | None = None) -> "MultiTask":
        heads = split_labels(labels, where)
        recorded = info.get("heads")
        if recorded is not None and {h: list(v) for h, v in heads.items()} != recorded:
            raise ConfigError(f"{where}: heads {recorded} do not match the labels {list(labels)}")
        head_info = info.get("head_info") or {}
        if not isinstance(head_info, dict) or set(head_info) - set(heads):
            raise ConfigError(f"{where}: head_info {head_info!r} must map heads among {list(heads)} to their fields")
        # each head's fields are checked by its task as the heads are built, naming `where`
        task = cls(labels, {k: v for k, v in info.items() if k not in ("heads", "kinds")}, inputs, where=where)
        if info.get("kinds") is not None and info["kinds"] != task.kinds:  # bundles before mixed heads lack it
            raise ConfigError(f"{where}: head kinds {info['kinds']} do not match the labels {list(labels)}")
        return task

    def section(self) -> dict[str, Any]:
        head_info = {h: f for h, head in self.specs.items() if (f := head.task.section())}
        return {**self.info, "heads": {h: list(v) for h, v in self.heads.items()},
                "kinds": dict(self.kinds), **({"head_info": head_info} if head_info else {})}

    def fit(self, gold: Sequence[Any], outputs: np.ndarray) -> "MultiTask":
        """This task with each head that learns from the validation split (a multi-label head: its
        thresholds) fitted on the examples with its label."""
        y, parts = self.gold_array(gold), self.head_outputs(outputs)
        head_info = {h: head.task.section() for h, head in self.specs.items()}
        for h, head in self.specs.items():
            if head.task.fits_on_validation:
                has, g = self._labelled(y, h)
                head_info[h] = head.task.fit(g, parts[h][has]).section()
        return type(self)(self.labels, {**self.info, "head_info": head_info}, self.input_fields)

    def _labelled(self, y: np.ndarray, h: str) -> tuple[np.ndarray, np.ndarray]:
        """(which examples of `y`, the gold array, have head h's label; their gold block as h's task
        takes it)."""
        g = y[:, slice(*self.gold_blocks[h])]
        has = ~np.isnan(g[:, 0])
        return has, self.specs[h].task_gold(g[has])

    # -- runtime half ------------------------------------------------------------------------------
    def head_outputs(self, outputs: np.ndarray) -> dict[str, np.ndarray]:
        """{head: its logits (n, its labels)} from the concatenated (n, all labels)."""
        outputs = np.asarray(outputs).reshape(len(outputs), -1)
        return {h: outputs[:, a:b] for h, (a, b) in self.blocks.items()}

    def predictions(self, outputs: np.ndarray) -> list[dict[str, Any]]:
        per_head = {h: self.specs[h].task.predictions(o) for h, o in self.head_outputs(outputs).items()}
        return [{h: per_head[h][i] for h in self.specs} for i in range(len(outputs))]

    def records(self, outputs: Any, texts: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """{head: record} per example: each head's record as its own task gives it ({label, score, scores} for
        a classification head, {value} for a regression head, {labels, scores, all_scores} for a multi-label
        head: the labels over their thresholds)."""
        per_head = {h: self.specs[h].task.records(o) for h, o in self.head_outputs(np.asarray(outputs)).items()}
        return [{h: per_head[h][i] for h in self.specs} for i in range(len(outputs))]

    def columns(self) -> tuple[tuple[str, str], ...]:
        """Each head's task's columns named for the head: pred_HEAD and pred_HEAD_score per classification
        head, pred_HEAD (a number) per regression head, pred_HEAD (labels joined by '|') and
        pred_HEAD_scores (JSON) per multi-label head."""
        return tuple(c for head in self.specs.values() for c in head.columns())

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(v for h, head in self.specs.items() for v in head.task.row(record[h]))

    def line(self, record: Mapping[str, Any]) -> str:
        return " ".join(head.line(record[h]) for h, head in self.specs.items())

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """Each head's scores side by side (class probabilities, a regression head's value, a multi-label
        head's sigmoids), (n, all labels) in the order of `labels`."""
        parts = [self.specs[h].task.scores(o) for h, o in self.head_outputs(outputs).items()]
        return np.concatenate(parts, axis=1) if len(outputs) else np.zeros((0, len(self.labels)), np.float32)

    def _head_metrics(self, gold: Sequence[Any], outputs: np.ndarray, training: bool) -> dict[str, float]:
        y = self.gold_array(gold)
        out: dict[str, float] = {}
        for h, o in self.head_outputs(outputs).items():
            has, g = self._labelled(y, h)
            task = self.specs[h].task
            fn = task.train_metrics if training else task.metrics
            out.update({f"{h}/{name}": v for name, v in fn(g, o[has]).items()})
        out[self.metric] = min(out[f"{h}/{head.task.metric}"] for h, head in self.specs.items())
        return out

    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        """Each head's metrics as its task gives them ('topic/accuracy', 'stars/spearman', 'tags/micro_f1')
        on the examples with its label, and the budget metric: the lowest of the heads' budget metrics."""
        return self._head_metrics(gold, outputs, training=False)

    def train_metrics(self, gold: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        """As `metrics`, each head's as its task logs it while training (a multi-label head before its
        thresholds are tuned: at thresholds tuned on these outputs)."""
        return self._head_metrics(gold, outputs, training=True)

    def metric_loss(self, gold: Any, reference: np.ndarray, outputs: np.ndarray, own: Task | None = None) -> float:
        """The largest loss of any head's budget metric (accuracy, Spearman's rho, micro-F1), in points:
        the budget holds for every head."""
        ref, got = self.metrics(gold, reference), (own or self).metrics(gold, outputs)
        names = [f"{h}/{head.task.metric}" for h, head in self.specs.items()]
        return max((ref[n] - got[n]) * 100 for n in names)

    def decisions(self, outputs: np.ndarray) -> np.ndarray | None:
        """(n, decisions): each head's decisions side by side (a label id; a multi-label head: one 0/1 per
        label); two models agree on a text when every head does (regression heads have no decisions;
        None when no head has)."""
        heads = self.head_outputs(outputs)
        parts = [d for h, o in heads.items() if (d := self.specs[h].task.decisions(o)) is not None]
        if not parts:
            return None
        return np.concatenate([np.asarray(d).reshape(len(outputs), -1).astype(np.int64) for d in parts], axis=1)

    def gold_array(self, gold: Sequence[Any]) -> np.ndarray:
        """(n, gold columns) float64: the heads' blocks side by side, NaN where an example has no label for a head."""
        width = sum(h.gold_width for h in self.specs.values())
        return np.asarray(gold, dtype=np.float64).reshape(len(gold), width)

    # -- build half --------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_labels": len(self.labels), "id2label": dict(enumerate(self.labels)),
                "label2id": {name: i for i, name in enumerate(self.labels)}}

    def check_model(self, config: Any, where: str) -> None:
        if getattr(config, "num_labels", None) != len(self.labels):
            raise ConfigError(f"{where}: the model has {config.num_labels} outputs; this multi-task model needs "
                              f"{len(self.labels)} (heads {', '.join(self.specs)})")

    def best_metric(self, asked: str) -> tuple[str, bool]:
        if asked in ("accuracy", self.metric):
            return self.metric, True
        if asked == "loss":
            return asked, False
        raise ConfigError(f"--metric {asked}: a multi-task model is chosen by accuracy (its worst head's budget "
                          "metric) or loss")

    def _per_head(self, student: Any, teacher: Any, fn: Any) -> Any:
        return sum(fn(student[:, a:b], teacher[:, a:b] if teacher is not None else None, h)
                   for h, (a, b) in self.blocks.items())

    def _head_gold(self, out: Any, gold: Any, h: str) -> tuple[Any, Any] | None:
        """(this head's outputs, its gold as its task takes it) on the batch's examples with head h's label;
        None if none."""
        a, b = self.gold_blocks[h]
        g = gold[:, a:b].float()
        has = ~g[:, 0].isnan()
        if not bool(has.any()):
            return None
        return out[has], self.specs[h].torch_gold(g[has])

    def _head_loss(self, h: str, out: Any, gold: Any) -> Any:
        labelled = self._head_gold(out, gold, h)
        if labelled is None:
            return out.sum() * 0.0  # no example of the batch has this head's label
        return self.specs[h].task.loss(*labelled)

    def loss(self, outputs: Any, gold: Any) -> Any:
        """Sum of the heads' losses (cross-entropy, MSE for a regression head, BCE for a multi-label head):
        outputs (B, all labels), gold (B, gold columns) floats, NaN = no label for that head (left out)."""
        return self._per_head(outputs, None, lambda s, _, h: self._head_loss(h, s, gold))

    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """Sum over heads of each head's distillation loss on its outputs (its task's): the soft term on every
        example, the gold term on those with the head's label."""
        def head(s: Any, t: Any, h: str) -> Any:
            task = self.specs[h].task
            labelled = None if gold is None else self._head_gold(s, gold, h)
            if labelled is None or alpha >= 1:  # the soft term alone (as each head's task weighs it)
                return task.distill_loss(s, t, None, temperature, alpha)
            soft = task.distill_loss(s, t, None, temperature, 1.0)  # the soft term alone (alpha 1)
            return alpha * soft + (1 - alpha) * task.loss(*labelled)
        return self._per_head(student, teacher, head)

    def divergence(self, student: Any, teacher: Any) -> Any:
        return self._per_head(student, teacher, lambda s, t, h: self.specs[h].task.divergence(s, t))

    # gold values are floats (NaN = no label for a head) in every batch
    gold_dtype = "float32"

    def no_gold(self) -> tuple[float, ...]:
        return (float("nan"),) * sum(h.gold_width for h in self.specs.values())

    def has_gold(self, gold: Any) -> Any:
        """(B,): examples with a label for at least one head."""
        return ~gold.float().isnan().all(dim=1)

    def training_rows(self, tokenizer: Any, split: Any, max_length: int) -> list[dict[str, Any]]:
        rows = super().training_rows(tokenizer, split, max_length)
        return [{**r, "labels": [float(v) for v in r["labels"]]} for r in rows]
