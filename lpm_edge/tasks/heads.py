"""Heads of a multi-task model: one small object per head, each kind owned by its task's module
(`ClassificationHead` in single_label.py, `RegressionHead` in regression.py, `MultiLabelHead` in
multi_label.py).

A head is its name, the task of its kind over its own labels (SingleLabel, Regression, MultiLabel:
that task's metrics, post-processing and losses serve the head unchanged), and how the head's kind
is written: in a column spec (`topic`, `stars:regression`, `tags:multi-label`) and in the model's
flat labels after `head:` (the logit columns' names). multitask.py asks the heads; it names no kind.

Gold values of a multi-task example are floats side by side, each head a block of `gold_width`
columns (a class id or a target: one; a multi-hot label set: one per label), NaN throughout a
block when the example has no label for that head.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from .base import Task


class Head:
    """One head: `name`, and `task`, its kind's task over its own labels. Subclasses set `kind` and
    `task_class`, and say how their labels are written flat (`own_labels`, `flat_labels`)."""

    kind: ClassVar[str]  # as a column spec writes it after the name ('regression'); 'classification' is the default
    task_class: ClassVar[type[Task]]
    # True: one gold value per example (a class id, a target); False: one per label (multi-hot)
    scalar_gold: ClassVar[bool] = True

    def __init__(self, name: str, task: Task) -> None:
        self.name, self.task = name, task

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {list(self.task.labels)})"

    # -- how the kind is written -------------------------------------------------------------------
    @classmethod
    def own_labels(cls, name: str, flat: Sequence[str]) -> tuple[str, ...] | None:
        """The head's own labels from its flat labels (what follows 'head:'), or None when they are not
        written as this kind writes them."""
        raise NotImplementedError

    @classmethod
    def flat_labels(cls, name: str, labels: Sequence[str]) -> tuple[str, ...]:
        """The head's labels as the model's flat labels write them after 'head:'."""
        return tuple(labels)

    @classmethod
    def from_record(cls, name: str, labels: tuple[str, ...], info: dict[str, Any], where: str) -> "Head":
        """The head from its own labels and its task's recorded fields (multi-label: thresholds), checked."""
        return cls(name, cls.task_class.from_section(labels, info, where))

    @property
    def width(self) -> int:
        """Logit columns of this head (= its flat labels)."""
        return len(self.task.labels)  # a regression head's task has one label, its name

    @property
    def gold_width(self) -> int:
        return 1 if self.scalar_gold else len(self.task.labels)

    # -- data --------------------------------------------------------------------------------------
    @classmethod
    def read_rows(cls, path: Any, text_column: str, column: str,
                  text_pair_column: str | None = None) -> list[tuple[Any, Any, str]]:
        """The rows of one data file with this head's column as their label, as the head's task reads them."""
        return cls.task_class.read_rows(path, text_column, column, text_pair_column)

    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], column: str) -> tuple[str, ...]:
        """The head's own labels from its training rows; DataError naming the line when they make no head."""
        return cls.task_class.label_names(rows, column)

    def gold(self, rows: Sequence[tuple[Any, Any, str]], training: str) -> np.ndarray:
        """(rows, gold_width) floats: the head's gold of each row, its task's DataError naming a bad row."""
        return np.asarray(self.task_class.gold(rows, self.task.labels, training), dtype=np.float64).reshape(
            len(rows), self.gold_width)

    def task_gold(self, gold: np.ndarray) -> np.ndarray:
        """The head's block of gold floats (rows, gold_width) as its task's `metrics` take them."""
        dtype = np.int64 if self.task.gold_dtype == "long" else np.float64
        return (gold[:, 0] if self.scalar_gold else gold).astype(dtype)

    def torch_gold(self, gold: Any) -> Any:
        """The same for a torch batch, as its task's losses take them."""
        gold = gold[:, 0] if self.scalar_gold else gold
        return gold.long() if self.task.gold_dtype == "long" else gold.float()

    # -- runtime half ------------------------------------------------------------------------------
    def columns(self) -> tuple[tuple[str, str], ...]:
        """The task's columns named for the head: its first `pred_HEAD`, the others `pred_HEAD_<rest>`
        (pred_label, pred_score -> pred_topic, pred_topic_score)."""
        return tuple((f"pred_{self.name}" if i == 0 else f"pred_{self.name}_{n.removeprefix('pred_')}", t)
                     for i, (n, t) in enumerate(self.task.columns()))

    def line(self, record: Any) -> str:
        """The head's record as `lpm-edge predict` prints it: 'head=...'."""
        raise NotImplementedError
