"""The training configuration: a frozen, versioned dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
METRICS = ("accuracy", "macro_f1", "loss", "spearman", "pearson", "mse", "mae", "entity_f1")  # the task says which it has


@dataclass(frozen=True)
class TrainConfig:
    """Everything a fine-tune depends on; saved in the checkpoint's training.json."""

    out: Path = Path("runs/checkpoint")
    model: Path | None = None  # a local Hugging Face directory; None = the built-in MiniLM-L6
    data: str = "rotten-tomatoes"  # a built-in name or a file (CSV/TSV/JSONL, Parquet, Arrow, save_to_disk folder)
    task: str = "text-classification"  # a kind of lpm_edge.tasks.KINDS
    text_column: str = "text"
    label_column: str = "label"
    text_pair_column: str | None = None  # the second text of each row: a task on sentence pairs
    validation: Path | None = None  # optional separate validation file
    test: Path | None = None  # optional separate test file (else a 10% cut of `data`)
    strict: bool = False  # refuse a text found in two splits instead of dropping it
    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 32
    grad_accum: int = 1
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    max_length: int = 128
    seed: int = 42
    device: str = "auto"
    precision: str = "auto"  # on GPU: bf16 where supported, else fp16
    metric: str = "accuracy"  # early stopping and best-checkpoint metric
    patience: int | None = 2  # epochs without improvement before stopping; None = never
    freeze_embeddings: bool = False
    group_by_length: bool = True  # batches of similar length carry little padding
    limit_train: int | None = None  # use only the first N training texts (quick runs, tests)
    threads: int | None = None  # torch intra-op threads while training; None = torch's default
    resume: bool = False
    force: bool = False
    version: int = 1

    def __post_init__(self) -> None:
        from ..tasks import task_class

        task_class(self.task, "task")  # ConfigError naming the kinds there are
        if self.metric not in METRICS:
            raise ConfigError(f"metric={self.metric!r} is not one of {', '.join(METRICS)}")
        check_run(self, ("batch_size", "grad_accum", "max_length"), ("threads", "limit_train"))

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def check_run(config: Any, positive: Sequence[str], positive_or_none: Sequence[str]) -> None:
    """The checks every training run's config shares (`TrainConfig`, `PretrainConfig`): device,
    precision, epochs or max_steps, learning rate, and the named fields that must be positive
    integers (or None). Raises ConfigError naming the field and its value."""
    for name, allowed in (("device", DEVICES), ("precision", PRECISIONS)):
        if getattr(config, name) not in allowed:
            raise ConfigError(f"{name}={getattr(config, name)!r} is not one of {', '.join(allowed)}")
    for name in positive:
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    for name in positive_or_none:
        value = getattr(config, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name} must be a positive integer or None, got {value!r}")
    if config.epochs <= 0 and config.max_steps <= 0:
        raise ConfigError(f"epochs must be positive (got {config.epochs}) unless max_steps is set")
    if not 0 < config.learning_rate < 1:
        raise ConfigError(f"learning_rate {config.learning_rate} is out of range (0, 1)")
