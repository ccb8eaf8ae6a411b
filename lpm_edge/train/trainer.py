"""Fine-tuning on Hugging Face's Trainer: CPU, one GPU, or many under torchrun (DDP)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .. import bundle as _bundle
from ..data import Dataset, Split, load_dataset
from ..errors import ConfigError, DataError, require
from ..metrics import classification_metrics
from .config import TrainConfig

log = logging.getLogger("lpm_edge.train")
TRAINING_JSON = "training.json"


def resolve_model_dir(model: Path | str | None) -> Path:
    if model is None:
        from ..assets import builtin_model_dir

        return builtin_model_dir()
    path = Path(model)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"model {path} is not a local Hugging Face model directory (no config.json); "
            "lpm-edge never downloads models: pass a directory saved with save_pretrained()"
        )
    require_safetensors(path)
    return path


def require_safetensors(path: Path) -> None:
    """Refuse a model directory without safetensors weights: loading a pickle can run code."""
    if not any(path.glob("*.safetensors")):
        raise ConfigError(
            f"{path} has no *.safetensors weights; lpm-edge never loads pickled weights (pytorch_model.bin "
            "can run code when loaded). Convert once, from a source you trust: "
            "AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)"
        )


class _Texts:
    """A torch-style dataset of tokenized texts (no padding: the collator pads per batch)."""

    def __init__(self, tokenizer: Any, split: Split, max_length: int) -> None:
        enc = tokenizer(list(split.texts), truncation=True, max_length=max_length, padding=False)
        self.rows = [
            {**{k: enc[k][i] for k in enc.keys()}, "labels": split.labels[i]} for i in range(len(split))
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def _device_args(config: TrainConfig) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    if config.device == "cuda" and not cuda:
        raise ConfigError("device='cuda' but PyTorch sees no GPU here; use --device auto or cpu")
    use_cuda = cuda and config.device != "cpu"
    args: dict[str, Any] = {"use_cpu": not use_cuda}
    precision = config.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if use_cuda else "fp32"
    if precision != "fp32" and not use_cuda:
        raise ConfigError(f"precision={precision} needs a GPU; on CPU use fp32 (or auto)")
    args["bf16"] = precision == "bf16"
    args["fp16"] = precision == "fp16"
    if not use_cuda and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        args["ddp_backend"] = "gloo"
    return args


def _log_callback() -> Any:
    """A Trainer callback writing plain log lines (one per evaluation / log event)."""
    from transformers import TrainerCallback

    class LogCallback(TrainerCallback):
        """Plain log lines (one per evaluation / log event) for CI logs and files."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if state.is_world_process_zero and logs:
                shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in logs.items()}
                log.info("step %d/%d: %s", state.global_step, state.max_steps, shown)

    return LogCallback()


def train(config: TrainConfig) -> Path:
    """Fine-tune `config.model` on `config.data`; return the checkpoint directory.

    The checkpoint loads with transformers as it is and carries `training.json` (config, labels,
    per-epoch validation metrics, test metrics, time, device), which export and bench read.
    """
    require("torch", "export")
    require("transformers", "export")
    import numpy as np
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import logging as hf_logging

    out = Path(config.out)
    if out.exists() and not (config.force or config.resume):
        raise ConfigError(f"{out} already exists; pass --force to replace it or choose another --out")
    _bundle.check_writable(out)  # fail now, not after the training
    model_dir = resolve_model_dir(config.model)
    dataset = load_dataset(
        config.data, text_column=config.text_column, label_column=config.label_column,
        validation=config.validation,
    )
    train_split = dataset.train.head(config.limit_train) if config.limit_train else dataset.train
    if len(set(train_split.labels)) < 2:
        raise DataError(f"the training split of {config.data} has fewer than two labels")
    set_seed(config.seed)
    hf_logging.set_verbosity_error()

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_dir,
        num_labels=len(dataset.labels),
        id2label=dict(enumerate(dataset.labels)),
        label2id={name: i for i, name in enumerate(dataset.labels)},
        local_files_only=True,
        use_safetensors=True,
        trust_remote_code=False,
        ignore_mismatched_sizes=True,  # a checkpoint with another head size gets a new head
    )
    if config.freeze_embeddings:
        for p in model.base_model.embeddings.parameters():
            p.requires_grad_(False)

    train_set = _Texts(tokenizer, train_split, config.max_length)
    val_set = _Texts(tokenizer, dataset.validation, config.max_length)
    work = out.with_name(f".{out.name}.work")  # Trainer's epoch checkpoints, for --resume
    if not config.resume and work.exists():
        shutil.rmtree(work)
    greater = config.metric != "loss"
    args = TrainingArguments(
        output_dir=str(work),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=64,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio,
        lr_scheduler_type="linear",
        eval_strategy="epoch" if config.max_steps <= 0 else "steps",
        save_strategy="epoch" if config.max_steps <= 0 else "steps",
        eval_steps=config.max_steps if config.max_steps > 0 else None,
        save_steps=config.max_steps if config.max_steps > 0 else None,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=config.metric,
        greater_is_better=greater,
        group_by_length=config.group_by_length,
        seed=config.seed,
        data_seed=config.seed,
        logging_strategy="steps",
        logging_steps=50,
        report_to=[],
        disable_tqdm=not sys.stderr.isatty(),
        dataloader_num_workers=0,
        save_safetensors=True,
        **_device_args(config),
    )

    def compute_metrics(pred: Any) -> dict[str, float]:
        return classification_metrics(pred.label_ids, np.argmax(pred.predictions, axis=-1), len(dataset.labels))

    callbacks = [EarlyStoppingCallback(config.patience)] if config.patience else []
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=val_set,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)  # it prints metric dicts on stdout; we log instead
    trainer.add_callback(_log_callback())
    resume = bool(config.resume and work.exists() and any(work.glob("checkpoint-*")))
    log.info(
        "training %s on %s (%s) for %s on %s", model_dir, config.data, dataset.sizes(),
        f"{config.max_steps} steps" if config.max_steps > 0 else f"{config.epochs:g} epochs", args.device,
    )
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - start
    test_set = _Texts(tokenizer, dataset.test, config.max_length)
    test = trainer.evaluate(test_set, metric_key_prefix="test")
    if not trainer.is_world_process_zero():
        trainer.accelerator.wait_for_everyone()
        return out
    epochs = [
        {"epoch": e["epoch"], "step": e["step"], **{k[5:]: v for k, v in e.items() if k.startswith("eval_")}}
        for e in trainer.state.log_history
        if "eval_loss" in e
    ]
    info = {
        "version": 1,
        "config": config.to_dict(),
        "base_model": str(model_dir),
        "architecture": model.config.model_type,
        "labels": list(dataset.labels),
        "data": {
            "source": str(config.data),
            "text_column": config.text_column,
            "label_column": config.label_column,
            "validation": str(config.validation) if config.validation else None,
            "sizes": {**dataset.sizes(), "train_used": len(train_split)},
        },
        "device": str(args.device),
        "world_size": args.world_size,
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "steps": result.global_step,
        "epochs_run": trainer.state.epoch,
        "train_seconds": round(seconds, 1),
        "steps_per_second": round(result.global_step / seconds, 3) if seconds else None,
        "epochs": epochs,
        "best": {"metric": config.metric, "value": trainer.state.best_metric,
                 "checkpoint": Path(trainer.state.best_model_checkpoint or "").name},
        "test": {k[5:]: v for k, v in test.items() if k.startswith("test_")},
        "torch": torch.__version__,
    }
    with _bundle.atomic_directory(out, force=True) as tmp:
        trainer.save_model(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / TRAINING_JSON).write_text(json.dumps(info, indent=2) + "\n")
    trainer.accelerator.wait_for_everyone()
    shutil.rmtree(work, ignore_errors=True)
    log.info("saved %s: test accuracy %.4f, macro-F1 %.4f", out, info["test"].get("accuracy", float("nan")),
             info["test"].get("macro_f1", float("nan")))
    return out


def read_training_info(checkpoint: Path) -> dict[str, Any]:
    """training.json of a checkpoint, or {} for a checkpoint not made by lpm-edge."""
    path = Path(checkpoint) / TRAINING_JSON
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); re-run training or delete the file") from None
