"""The Task interface: one object per bundle or training run (numpy here; torch only inside the
build-side methods, which the runtime never calls)."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ..errors import ConfigError


class Task:
    """What one kind of job computes. Subclasses set the class attributes and the methods below.

    `outputs` everywhere is the model's raw output for a batch of examples, as a numpy array in
    example order (for classifiers: logits (n, labels)); `gold` is what the data gives per example
    (for single-label: label ids).
    """

    kind: ClassVar[str]
    # Runtime methods a bundle of this task offers; asking for another is a clear error.
    offers: ClassVar[tuple[str, ...]] = ()
    # The metric an accuracy budget holds (export, search), in [0, 1]; a loss of it is given in points (x100).
    metric: ClassVar[str] = "accuracy"
    # Input fields per example: ("text",), or ("text", "text_pair") for tasks on two texts.
    input_fields: ClassVar[tuple[str, ...]] = ("text",)
    # The transformers auto class whose head this task trains and exports.
    model_class: ClassVar[str] = "AutoModelForSequenceClassification"
    # The ONNX graph's output: its name and dynamic axes (besides the batch, e.g. 1: "sequence").
    output_name: ClassVar[str] = "logits"
    output_axes: ClassVar[Mapping[int, str]] = {0: "batch"}
    # Why `lpm-edge train` cannot train this task ("" = it can).
    not_trained: ClassVar[str] = ""
    # The data an export evaluates on when neither --data nor training.json names any (None: it must be named).
    default_data: ClassVar[str | None] = None

    def __init__(self, labels: Sequence[str] = (), info: Mapping[str, Any] | None = None) -> None:
        self.labels: tuple[str, ...] = tuple(labels)
        self.info: dict[str, Any] = dict(info or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(labels={list(self.labels)})"

    # -- data (classmethods: the labels come from the data) -----------------------------------
    # A row is (text, raw label, "file:line") as lpm_edge.data_files.read_rows gives it.
    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], label_column: str) -> tuple[str, ...]:
        """The label names the training rows define, in id order; DataError when they define no task."""
        raise NotImplementedError

    @classmethod
    def gold(cls, rows: Sequence[tuple[Any, Any, str]], labels: Sequence[str], training: str) -> tuple[Any, ...]:
        """Each row's gold value (what `metrics` and the training loss take); DataError naming the
        row's file and line when its label does not fit (`training` names the file labels came from)."""
        raise NotImplementedError

    @classmethod
    def dataset(cls, source: Any, *, text_column: str = "text", validation: Any = None, test: Any = None,
                seed: int, strict: bool) -> Any:
        """A Dataset this task reads its own way (e.g. texts without labels), or None: load_dataset reads
        labelled rows as for classifiers."""
        return None

    # -- the manifest's and training.json's record -------------------------------------------
    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str) -> "Task":
        """Validate what a record holds; raise ConfigError naming `where` and the bad field."""
        return cls(labels, info)

    def section(self) -> dict[str, Any]:
        """The task fields a manifest records besides kind, labels and input fields."""
        return dict(self.info)

    # -- runtime half (numpy) ------------------------------------------------------------------
    def output_shape(self, n: int) -> tuple[int, ...]:
        """The shape the graph's output must have for `n` examples (checked at load)."""
        return (n, len(self.labels))

    def predictions(self, outputs: np.ndarray) -> list[Any]:
        """What `predict` returns per example."""
        raise NotImplementedError

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """What `predict_proba` returns (and the server sends): per-label scores, (n, labels)."""
        raise NotImplementedError

    # -- evaluation (numpy) --------------------------------------------------------------------
    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        """Every metric of this task; includes `self.metric`."""
        raise NotImplementedError

    def decisions(self, outputs: np.ndarray) -> np.ndarray:
        """One decision per example (row), compared between two models for their agreement."""
        raise NotImplementedError

    def example_values(self, gold: Sequence[Any], outputs: np.ndarray) -> np.ndarray | None:
        """Per-example values whose mean is `self.metric` (accuracy: correct or not), or None when
        the metric is not a mean over examples; the bootstrap then recomputes it per resample."""
        return None

    def gold_array(self, gold: Sequence[Any]) -> np.ndarray:
        return np.asarray(gold)

    def reference_split(self, split: Any, outputs: np.ndarray) -> Any:
        """The split export and bench score against, given the full model's outputs on it: `split`
        itself when the data holds the gold; tasks whose gold is the reference's outputs (embeddings)
        put those in."""
        return split

    # -- build half (torch, imported inside) ---------------------------------------------------
    def for_checkpoint(self, model_dir: Any, config: Any) -> "Task":
        """This task completed from the model directory and its config (e.g. an embedding model's pooling)."""
        return self

    def prepare_model(self, model: Any) -> Any:
        """The model as the pipeline runs it: its forward's `.logits` is what the graph returns."""
        return model

    def importance_loss(self, outputs: Any, gold: Any) -> Any:
        """The loss whose gradients rank heads and FFN neurons for pruning (outputs: `.logits`)."""
        import torch.nn.functional as F

        return F.cross_entropy(outputs, gold)

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `model_class.from_pretrained` that shape the head."""
        return {}

    def check_model(self, config: Any, where: str) -> None:
        """Refuse a checkpoint whose head does not fit this task (ConfigError naming `where`)."""

    def graph_output(self, model_output: Any, inputs: Mapping[str, Any]) -> Any:
        """The tensor the ONNX graph returns, from the model's forward output and its inputs."""
        return model_output.logits

    def training_rows(self, tokenizer: Any, split: Any, max_length: int) -> list[dict[str, Any]]:
        """The split tokenized for the Trainer (no padding; the collator pads per batch), gold as `labels`."""
        enc = tokenizer(list(split.texts), truncation=True, max_length=max_length, padding=False)
        return [{**{k: enc[k][i] for k in enc.keys()}, "labels": split.labels[i]} for i in range(len(split))]

    def collator(self, tokenizer: Any) -> Any:
        """The Trainer's data collator."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """The student's loss on one batch: outputs of student and teacher (torch), gold labels."""
        raise NotImplementedError

    def divergence(self, student: Any, teacher: Any) -> Any:
        """Summed divergence of student from teacher over a batch (torch scalar), for the log."""
        raise NotImplementedError

    def train_metrics(self, gold: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        """Metrics the Trainer logs on the validation split (defaults to `metrics`)."""
        return self.metrics(gold, outputs)


def need_labels(labels: Sequence[str], where: str, at_least: int = 2) -> None:
    if len(labels) < at_least:
        raise ConfigError(f"{where}: needs at least {at_least} labels, got {list(labels)}")
