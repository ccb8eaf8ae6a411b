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
    # Input fields per example: ("text",), or ("text", "text_pair") for tasks on two texts. The class's
    # is the default; an instance takes its own from the record (`inputs`), so any task can take pairs.
    input_fields: tuple[str, ...] = ("text",)
    # The transformers auto class whose head this task trains and exports.
    model_class: ClassVar[str] = "AutoModelForSequenceClassification"
    # The ONNX graph's output: its name and dynamic axes (besides the batch, e.g. 1: "sequence").
    output_name: ClassVar[str] = "logits"
    output_axes: ClassVar[Mapping[int, str]] = {0: "batch"}
    # Whether a row's label cell may hold a list of labels, or none (read_rows keeps lists, allows empty cells).
    label_lists: ClassVar[bool] = False
    # Whether `fit` learns something from the validation outputs after training (the trainer then runs it).
    fits_on_validation: ClassVar[bool] = False
    # False: the model's own loss does not fit (multi-task heads); training uses `loss` below instead.
    model_loss: ClassVar[bool] = True
    # The torch dtype of a batch's gold values in distillation and pruning batches ("float32" for regression).
    gold_dtype: ClassVar[str] = "long"

    # Why `lpm-edge train` cannot train this task ("" = it can).
    not_trained: ClassVar[str] = ""
    # The data an export evaluates on when neither --data nor training.json names any (None: it must be named).
    default_data: ClassVar[str | None] = None

    def __init__(self, labels: Sequence[str] = (), info: Mapping[str, Any] | None = None,
                 inputs: Sequence[str] | None = None) -> None:
        from ..pairs import PAIR, check_inputs

        self.labels: tuple[str, ...] = tuple(labels)
        self.info: dict[str, Any] = dict(info or {})
        if inputs is not None:
            self.input_fields = check_inputs(inputs, f"{self.kind} task")
        if self.input_fields == PAIR and self.ranks():  # a relevance score per pair: rank(query, passages)
            self.offers = (*type(self).offers, "rank")

    @property
    def pairs(self) -> bool:
        """True when each example is a (text, text_pair) tuple."""
        return len(self.input_fields) == 2

    def __repr__(self) -> str:
        return f"{type(self).__name__}(labels={list(self.labels)})"

    # -- data (classmethods: the labels come from the data) -----------------------------------
    # A row is (text, raw label, "file:line") as lpm_edge.data_files.read_rows gives it.
    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], label_column: str) -> tuple[str, ...]:
        """The label names the training rows define, in id order; DataError when they define no task."""
        raise NotImplementedError

    @classmethod
    def data_file(cls, source: str) -> Any:
        """The file a --data value names: a built-in data set of this task, else the path itself."""
        from pathlib import Path

        return Path(source)

    @classmethod
    def read_rows(cls, path: Any, text_column: str, label_column: str,
                  text_pair_column: str | None = None) -> list[tuple[Any, Any, str]]:
        """The rows of one data file (text, raw label, 'file:line'); DataError naming the line on bad data."""
        from ..data_files import read_rows

        return read_rows(path, text_column, label_column, text_pair_column, cls.label_lists)

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

    def check_training(self, gold: Sequence[Any], where: str) -> None:
        """Refuse training gold values that give the model nothing to learn (DataError naming `where`)."""

    # -- the manifest's and training.json's record -------------------------------------------
    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str,
                     inputs: Sequence[str] | None = None) -> "Task":
        """Validate what a record holds; raise ConfigError naming `where` and the bad field."""
        return cls(labels, info, inputs)

    def section(self) -> dict[str, Any]:
        """The task fields a manifest records besides kind, labels and input fields."""
        return dict(self.info)

    def fit(self, gold: Sequence[Any], outputs: np.ndarray) -> "Task":
        """This task after what it learns from the validation split's gold and the trained model's
        outputs there (multi-label: decision thresholds); called when `fits_on_validation`."""
        return self

    def fitted(self, gold: Sequence[Any], outputs: np.ndarray) -> "Task":
        """This task fitted to one model's outputs on (validation) gold when it learns from them, else
        itself. A compressed model's scores move (int8 rounding; a student is another model), so its
        bundle carries decision thresholds fitted to its own scores, as training fits the full model's."""
        return self.fit(gold, outputs) if self.fits_on_validation else self

    def reader_for(self, model_task: "Task | None") -> "Task":
        """The task a model's outputs are read by: its own (a bundle's manifest task, `fitted` at
        export) where this task fits decisions to a model, else this one."""
        return model_task if self.fits_on_validation and model_task is not None else self

    # -- runtime half (numpy) ------------------------------------------------------------------
    def output_shape(self, n: int) -> tuple[int, ...]:
        """The shape the graph's output must have for `n` examples (checked at load)."""
        return (n, len(self.labels))

    def output_fits(self, shape: tuple[int, ...], n: int) -> bool:
        """Whether a graph output of `shape` for `n` examples fits this task (checked at load)."""
        return tuple(shape) == self.output_shape(n)

    def outputs_of(self, runner: Any, texts: Sequence[str]) -> np.ndarray | None:
        """The outputs of `runner` (a loaded bundle or the PyTorch reference) on `texts` when the task
        reads the graph's output itself (per token, windows); None: the graph's output per text is it."""
        return None

    def stack(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """Raw graph outputs of several batches as one array (per-token outputs differ in length)."""
        return np.concatenate(outputs)

    def predictions(self, outputs: np.ndarray) -> list[Any]:
        """What `predict` returns per example."""
        raise NotImplementedError

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        """What `predict_proba` returns (and the server sends): per-label scores, (n, labels)."""
        raise NotImplementedError

    # -- records: what every output path gives per example (predict, files, Ray, the server) ----
    def record_outputs(self, runner: Any, texts: Sequence[Any]) -> Sequence[Any]:
        """The raw outputs `records` takes for `texts` (checked), one per example in input order, sliceable:
        the graph's output per text (`runner.logits`), unless the task needs more (token offsets)."""
        return runner.logits(texts)

    def records(self, outputs: Any, texts: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Each example's prediction as JSON-ready dicts, from its raw outputs (`record_outputs`) and
        its texts: for classifiers the label with the highest score, its score and every label's score."""
        out = []
        for row in np.asarray(self.scores(np.asarray(outputs))):
            k = int(row.argmax())
            out.append({"label": self.labels[k], "score": float(row[k]),
                        "scores": dict(zip(self.labels, map(float, row)))})
        return out

    def columns(self) -> tuple[tuple[str, str], ...]:
        """The columns a record adds to a row of a tabular output (CSV, TSV, Parquet; JSONL keys), as
        (name, type): "string", "float" (6 decimals; Parquet float32), "json" (a JSON cell; native in
        JSONL) or "vector" (a list of floats; Parquet list<float32>)."""
        return (("pred_label", "string"), ("pred_score", "float"))

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        """A record's values for `columns`, in their order."""
        return (record["label"], record["score"])

    def line(self, record: Mapping[str, Any]) -> str:
        """A record as `lpm-edge predict` prints it before the text (tab-separated fields)."""
        return f"{record['label']}\t{record['score']:.4f}"
    def served(self, runner: Any, texts: Sequence[Any]) -> Any:
        """What a user's call returns for `texts` on `runner` (a loaded bundle, or the PyTorch reference
        that carries this task): the call bench times end to end. Per-label scores where the task
        offers them (`predict_proba`), else its predictions."""
        outputs = runner.logits(texts)
        return self.scores(outputs) if "predict_proba" in self.offers else self.predictions(outputs)

    def served_method(self) -> str:
        """The runtime method a user calls on a bundle of this task (what a fresh process runs in bench)."""
        return "predict_proba" if "predict_proba" in self.offers else self.offers[0]

    def ranks(self) -> bool:
        """True when `relevance` gives one score per example (a bundle on pairs then offers `rank`)."""
        return False

    def relevance(self, outputs: np.ndarray) -> np.ndarray:
        """One relevance score per example, (n,), higher = more relevant: what `rank` orders by."""
        raise ConfigError(f"a {self.kind} task with labels {list(self.labels)} gives no relevance score")

    # -- evaluation (numpy) --------------------------------------------------------------------
    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        """Every metric of this task; includes `self.metric`."""
        raise NotImplementedError

    def decisions(self, outputs: np.ndarray) -> np.ndarray:
        """One decision per example (row), compared between two models for their agreement; None when
        the task has no discrete decisions (regression): agreement is then None."""
        raise NotImplementedError

    def metric_loss(self, gold: Any, reference: np.ndarray, outputs: np.ndarray, own: "Task | None" = None) -> float:
        """Points of the budget metric `outputs` lose against `reference` (positive = worse): the
        difference x 100 of `metric`; a task with several heads gives its worst head's loss. `own`: the
        task `outputs` are read by when they have their own fitted decisions (`fitted`), else this one."""
        return (self.metrics(gold, reference)[self.metric] - (own or self).metrics(gold, outputs)[self.metric]) * 100

    def fitted_loss(self, gold: Any, reference: np.ndarray, outputs: np.ndarray) -> float:
        """`metric_loss` of `outputs` read by this task fitted to them (`fitted`): what a bundle made
        from the model of `outputs`, carrying its own decisions, loses against `reference`."""
        return self.metric_loss(gold, reference, outputs, self.fitted(gold, outputs))

    def example_values(self, gold: Sequence[Any], outputs: np.ndarray) -> np.ndarray | None:
        """Per-example values whose mean is `self.metric` (accuracy: correct or not), or None when
        the metric is not a mean over examples; the bootstrap then recomputes it per resample."""
        return None

    def gold_array(self, gold: Sequence[Any]) -> np.ndarray:
        return np.asarray(gold)

    def metric_diff_ci(self, gold: Any, out_a: np.ndarray, out_b: np.ndarray, n_boot: int,
                       seed: int) -> tuple[float, float] | None:
        """A paired bootstrap 95% interval of metric(a) - metric(b) in points, when the task has a faster
        one than recomputing `metrics` per resample; None: the evaluator's."""
        return None

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
        """The loss whose gradients rank heads and FFN neurons for pruning (outputs: `.logits`): the
        task's `loss`, unless it has no gold to learn from (embeddings)."""
        return self.loss(outputs, gold)

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
        from ..pairs import hf_tokenize

        enc = hf_tokenize(tokenizer, split.texts, truncation=True, max_length=max_length, padding=False)
        return [{**{k: enc[k][i] for k in enc.keys()}, "labels": split.labels[i]} for i in range(len(split))]

    def labelled_batches(self, tokenizer: Any, split: Any, batch_size: int, max_length: int, device: str,
                         limit: int | None) -> Any:
        """(inputs, gold) batches for pruning and distillation (torch tensors)."""
        from ..export.batches import labelled_batches

        return labelled_batches(tokenizer, split.texts, split.labels, batch_size, max_length, device, limit=limit,
                                dtype=self.gold_dtype)

    def collator(self, tokenizer: Any) -> Any:
        """The Trainer's data collator."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(tokenizer)

    def best_metric(self, asked: str) -> tuple[str, bool]:
        """The metric training picks its best checkpoint by for `--metric asked`, and whether higher is
        better; ConfigError when this task has no such metric."""
        if asked not in ("accuracy", "macro_f1", "loss"):
            raise ConfigError(f"--metric {asked}: a {self.kind} model is chosen by accuracy, macro_f1 or loss")
        return asked, asked != "loss"

    def loss(self, outputs: Any, gold: Any) -> Any:
        """The training loss on one batch (torch): outputs and gold as the Trainer's batch holds them.
        Pruning's gradient importance takes it; the default is cross-entropy, per example or per token
        (outputs (B, T, labels), gold (B, T), -100 ignored)."""
        import torch.nn.functional as F

        return F.cross_entropy(outputs.flatten(0, -2), gold.flatten(), ignore_index=-100)

    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """The student's loss on one batch: outputs of student and teacher (torch), gold labels; gold of an
        example without any (`no_gold`) must enter the soft term only."""
        raise NotImplementedError

    def no_gold(self) -> Any:
        """The gold value of a text without gold (--unlabelled, augmented texts): -100, the id
        cross-entropy ignores; a task whose gold is not an id says its own (regression: NaN)."""
        return -100

    def has_gold(self, gold: Any) -> Any:
        """(B,) bool tensor: which examples of a batch's gold (torch) carry gold, not `no_gold`."""
        return gold != -100

    def divergence(self, student: Any, teacher: Any) -> Any:
        """Summed divergence of student from teacher over a batch (torch scalar), for the log."""
        raise NotImplementedError

    def train_metrics(self, gold: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        """Metrics the Trainer logs on the validation split (defaults to `metrics`)."""
        return self.metrics(gold, outputs)


def need_labels(labels: Sequence[str], where: str, at_least: int = 2) -> None:
    if len(labels) < at_least:
        raise ConfigError(f"{where}: needs at least {at_least} labels, got {list(labels)}")
