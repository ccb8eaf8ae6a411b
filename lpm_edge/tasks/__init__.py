"""Tasks: what a bundle computes from its encoder's output, one module per task.

A task decides the model's head and the training and distillation losses (build side, torch,
imported only inside those methods), the metrics and the one metric an accuracy budget holds
(numpy), the post-processing the runtime applies, which runtime methods the loaded bundle offers
(`predict`, `rank`, `embed`, `entities`, ...), and what the manifest's `task` section records.
The pipeline, the evaluator and the runtime ask the task; none of them names a task kind.

This module is standard library only: `lpm_edge.bundle` asks it which kinds exist.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..errors import BundleError, ConfigError

if TYPE_CHECKING:
    from .base import Task

# kind -> (module, class). A new task is one module here plus its tests.
KINDS: dict[str, tuple[str, str]] = {
    "text-classification": ("lpm_edge.tasks.single_label", "SingleLabel"),
    "multi-label": ("lpm_edge.tasks.multi_label", "MultiLabel"),
    "regression": ("lpm_edge.tasks.regression", "Regression"),
    "multi-task": ("lpm_edge.tasks.multitask", "MultiTask"),
    "token-classification": ("lpm_edge.tasks.token_classification", "TokenClassification"),
    "embedding": ("lpm_edge.tasks.embedding", "Embedding"),
}
DEFAULT = "text-classification"

__all__ = ["DEFAULT", "KINDS", "from_manifest", "from_section", "task_class"]


def task_class(kind: str, where: str = "task") -> type["Task"]:
    """The class of task `kind`; ConfigError naming the kinds there are."""
    if kind not in KINDS:
        raise ConfigError(f"{where}: unknown task {kind!r}; this lpm-edge knows {', '.join(KINDS)}")
    module, name = KINDS[kind]
    return getattr(importlib.import_module(module), name)


def from_section(kind: str, labels: Sequence[str], info: Mapping[str, Any] | None = None,
                 where: str = "task", inputs: Sequence[str] | None = None) -> "Task":
    """A task from what a manifest or training.json records: its kind, labels, other fields and
    input fields (None: the task's default, one text per example)."""
    from ..pairs import check_inputs

    cls = task_class(kind, where)
    if inputs is None or tuple(inputs) == ("text",):  # a task class that knows only single texts needs no `inputs`
        return cls.from_section(tuple(labels), dict(info or {}), where)
    return cls.from_section(tuple(labels), dict(info or {}), where, inputs=check_inputs(inputs, f"{where}: inputs"))


def from_manifest(manifest: Any) -> "Task":
    """The task a parsed manifest declares; BundleError when its fields do not make one."""
    try:
        return from_section(manifest.task, manifest.labels, manifest.task_info, "manifest.json: task",
                            inputs=getattr(manifest, "input_fields", None))
    except ConfigError as exc:
        raise BundleError(f"{exc}; re-export the bundle or upgrade lpm-edge") from None


def from_training(info: Mapping[str, Any], labels: Sequence[str]) -> "Task":
    """The task a checkpoint was trained for: training.json's `task` record, else single-label
    classification over `labels` (checkpoints written before tasks were recorded, or not by lpm-edge)."""
    record = dict(info.get("task") or {})
    kind = record.pop("kind", DEFAULT)
    recorded = record.pop("labels", None)
    inputs = record.pop("inputs", None)
    return from_section(kind, recorded if recorded is not None else labels, record, "training.json: task",
                        inputs=inputs)


def record(task: "Task") -> dict[str, Any]:
    """The task as training.json and the manifest record it: kind, labels, input fields, its own fields."""
    return {"kind": task.kind, "labels": list(task.labels), "inputs": list(task.input_fields), **task.section()}
