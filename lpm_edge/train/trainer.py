"""Fine-tuning on Hugging Face's Trainer: CPU, one GPU, or many under torchrun (DDP)."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from .. import bundle as _bundle
from ..data import Split, load_dataset
from ..errors import ConfigError, DataError, require
from .. import tasks
from .config import TrainConfig
from .device import plan_device
from .model_dir import resolve_model_dir
from .resume import plan_resume, start_work_dir, work_dir

if TYPE_CHECKING:
    from transformers import TrainerCallback

log = logging.getLogger("lpm_edge.train")
TRAINING_JSON = "training.json"

__all__ = ["TRAINING_JSON", "read_training_info", "resolve_model_dir", "train"]


class _Texts:
    """A torch-style dataset of tokenized examples, as the task prepares them."""

    def __init__(self, tokenizer: Any, split: Split, max_length: int, task: Any) -> None:
        self.rows = task.training_rows(tokenizer, split, max_length)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def _task_trainer(base: Any, task: Any) -> Any:
    """A Trainer whose loss is the task's (`Task.loss`), for tasks the model's own loss does not fit
    (several heads in one output)."""

    class TaskTrainer(base):  # type: ignore[misc, valid-type]
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         **kwargs: Any) -> Any:
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = task.loss(outputs.logits, labels)
            return (loss, outputs) if return_outputs else loss

    return TaskTrainer


def training_arguments(output_dir: str | Path, device_args: dict[str, Any], *, max_steps: int, batch_size: int,
                       grad_accum: int, learning_rate: float, weight_decay: float, warmup_ratio: float, seed: int,
                       group_by_length: bool, **more: Any) -> Any:
    """TrainingArguments with the settings every lpm-edge Trainer shares (fine-tuning, distillation):
    linear schedule, logging every 50 steps to our logger only, tqdm on a terminal only, no worker
    processes; `device_args` from DevicePlan.trainer_args; `more` adds or overrides fields."""
    from transformers import TrainingArguments

    settings: dict[str, Any] = dict(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        warmup_ratio=warmup_ratio,
        lr_scheduler_type="linear",
        group_by_length=group_by_length,
        seed=seed,
        data_seed=seed,
        logging_strategy="steps",
        logging_steps=50,
        report_to=[],
        disable_tqdm=not sys.stderr.isatty(),
        dataloader_num_workers=0,
        **device_args,
    )
    settings.update(more)
    return TrainingArguments(**settings)


def log_progress(trainer: Any, desc: str = "train", logger: logging.Logger = log) -> None:
    """Our log lines in place of the PrinterCallback's metric dicts on stdout, and progress lines
    where stderr is no terminal (tqdm draws the bar on one)."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(_log_callback(logger))
    if not sys.stderr.isatty():
        trainer.add_callback(_progress_callback(desc, logger.name))


def _log_callback(logger: logging.Logger = log) -> Any:
    """A Trainer callback writing plain log lines (one per evaluation / log event)."""
    from transformers import TrainerCallback

    class LogCallback(TrainerCallback):
        """Plain log lines (one per evaluation / log event) for CI logs and files."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            if state.is_world_process_zero and logs:
                shown = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in logs.items()}
                logger.info("step %d/%d: %s", state.global_step, state.max_steps, shown)

    return LogCallback()


def _progress_callback(desc: str = "train", logger: str = "lpm_edge.train") -> Any:
    """Steps, rate and time left as log lines every few seconds (tqdm draws the bar on a terminal)."""
    from transformers import TrainerCallback

    from ..progress import Progress

    class ProgressCallback(TrainerCallback):
        progress: Progress | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self.progress = Progress(state.max_steps, desc, done=state.global_step, bar=False,
                                         logger=logger)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.update()

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.close()
                self.progress = None

    return ProgressCallback()


@contextmanager
def _torch_threads(n: int | None) -> Iterator[int]:
    """Run with `n` intra-op threads (None: leave as is), then restore the process's setting."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def train(config: TrainConfig, *, callbacks: Sequence["TrainerCallback"] = ()) -> Path:
    """Fine-tune `config.model` on `config.data`; return the checkpoint directory.

    The checkpoint loads with transformers as it is and carries `training.json` (config, labels,
    per-epoch validation metrics, test metrics, time, device), which export and bench read.
    Epoch checkpoints go to `.OUT.work` beside `config.out` until the run succeeds; with
    `config.resume` an interrupted run continues from the last of them. Under torchrun every
    process calls this; the main one writes the checkpoint while the others wait.
    `callbacks` are extra transformers TrainerCallbacks (timing, custom stopping, ...).
    """
    require("torch", "export")
    require("transformers", "export")
    resume_from = plan_resume(config)  # before anything slow: a wrong --out or --resume fails at once
    _bundle.check_writable(Path(config.out))  # fail now, not after the training
    plan = plan_device(config.device, config.precision)
    model_dir = resolve_model_dir(config.model)
    with _torch_threads(config.threads) as threads:
        return _train(config, model_dir, plan.trainer_args(), resume_from, threads, callbacks)


def _train(
    config: TrainConfig, model_dir: Path, device_args: dict[str, Any], resume_from: Path | None, threads: int,
    callbacks: Sequence[Any],
) -> Path:
    import transformers
    from transformers import (
        AutoTokenizer,
        EarlyStoppingCallback,
        Trainer,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    out = Path(config.out)
    if tasks.task_class(config.task, "--task").not_trained:
        raise ConfigError(tasks.task_class(config.task).not_trained)
    dataset = load_dataset(
        config.data, text_column=config.text_column, label_column=config.label_column,
        validation=config.validation, test=config.test, strict=config.strict, task=config.task,
        text_pair_column=config.text_pair_column,
    )
    train_split = dataset.train.head(config.limit_train) if config.limit_train else dataset.train
    if len(set(train_split.labels)) < 2:
        raise DataError(
            f"the first {len(train_split)} training texts of {config.data} carry only one label; "
            "raise --limit-train or shuffle the file"
        )
    task = tasks.from_section(config.task, dataset.labels, {}, f"task of {config.data}", inputs=dataset.inputs)
    task.check_training(train_split.labels, f"{config.data}")
    set_seed(config.seed)
    hf_logging.set_verbosity_error()

    best_metric, greater = task.best_metric(config.metric)  # regression: spearman for the default "accuracy"
    by_steps = config.max_steps > 0
    args = training_arguments(  # under torchrun, this joins the process group
        work_dir(out), device_args, max_steps=config.max_steps, batch_size=config.batch_size,
        grad_accum=config.grad_accum, learning_rate=config.learning_rate, weight_decay=config.weight_decay,
        warmup_ratio=config.warmup_ratio, seed=config.seed, group_by_length=config.group_by_length,
        num_train_epochs=config.epochs,
        per_device_eval_batch_size=64,
        eval_strategy="steps" if by_steps else "epoch",
        save_strategy="steps" if by_steps else "epoch",
        eval_steps=config.max_steps if by_steps else None,
        save_steps=config.max_steps if by_steps else None,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=best_metric,
        greater_is_better=greater,
        restore_callback_states_from_checkpoint=True,  # early stopping's patience count survives --resume
        save_safetensors=True,
    )
    with args.main_process_first(local=False, desc="preparing the work directory"):
        if args.process_index == 0:
            start_work_dir(config, resuming=resume_from is not None)

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
        model = getattr(transformers, task.model_class).from_pretrained(
            model_dir,
            **task.model_kwargs(),
            local_files_only=True,
            use_safetensors=True,
            trust_remote_code=False,
            ignore_mismatched_sizes=True,  # a checkpoint with another head size gets a new head
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"transformers cannot load the model in {model_dir}: {exc}; pass a directory written by "
            "save_pretrained() (model and tokenizer)"
        ) from None
    if config.freeze_embeddings:
        for p in model.base_model.embeddings.parameters():
            p.requires_grad_(False)

    train_set = _Texts(tokenizer, train_split, config.max_length, task)
    val_set = _Texts(tokenizer, dataset.validation, config.max_length, task)

    def compute_metrics(pred: Any) -> dict[str, float]:
        return task.train_metrics(pred.label_ids, pred.predictions)

    trainer = (Trainer if task.model_loss else _task_trainer(Trainer, task))(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=val_set,
        data_collator=task.collator(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=([EarlyStoppingCallback(config.patience)] if config.patience else []) + list(callbacks),
    )
    log_progress(trainer)
    main = trainer.is_world_process_zero()
    log.log(
        logging.INFO if main else logging.DEBUG,
        "training %s on %s (%s) for %s on %s (%s, %d threads, %d processes)%s", model_dir, config.data,
        dataset.sizes(), f"{config.max_steps} steps" if by_steps else f"{config.epochs:g} epochs", args.device,
        "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32", threads, args.world_size,
        f", resuming from {resume_from}" if resume_from else "",
    )
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    seconds = time.perf_counter() - start
    trainer.remove_callback(EarlyStoppingCallback)  # it would look for eval_* metrics in the test run's
    if task.fits_on_validation:  # e.g. multi-label decision thresholds; the test metrics below use them
        found = trainer.predict(val_set)  # in the eval sampler's order (by length): gold from the same pass
        task = task.fit(found.label_ids, found.predictions)
    test = trainer.evaluate(_Texts(tokenizer, dataset.test, config.max_length, task), metric_key_prefix="test")
    if main:  # one writer; the others wait below until the checkpoint is complete
        info = _training_info(config, trainer, result, test, dataset, len(train_split), model_dir, seconds,
                              threads, resume_from)
        info["task"] = tasks.record(task)
        with _bundle.atomic_directory(out, force=True) as tmp:
            trainer.save_model(str(tmp))
            tokenizer.save_pretrained(str(tmp))
            (tmp / TRAINING_JSON).write_text(json.dumps(info, indent=2) + "\n")
        log.info("saved %s: %s on %s", out, ", ".join(f"{k} {v:.4f}" for k, v in info["test"].items()
                 if isinstance(v, float) and k not in ("loss", "runtime") and not k.endswith("_per_second")),
                 dataset.test.describe())
    _wait_for_everyone(trainer.accelerator)
    if main:
        shutil.rmtree(work_dir(out), ignore_errors=True)
    return out


_LAST_BARRIER: list[Any] = []  # the work object of the latest distributed run's last barrier


def _wait_for_everyone(accelerator: Any) -> None:
    """accelerator.wait_for_everyone(), safe as the last collective before the process exits.

    A gloo barrier's work object holds every collective still in flight when it was queued (here the
    test evaluation's all-gather, whose tensors are Python objects). If a gloo worker thread drops
    the last reference, it must take the GIL to free those tensors, and when the interpreter has
    begun to shut down by then, the thread is killed inside a C++ destructor: std::terminate, and the
    process aborts after its work is done (seen in about 1 run in 15 under torchrun on 2 CPU
    processes). Keeping a Python reference to the work object means the worker thread never holds
    the last one; the main thread frees it, holding the GIL: at exit, or when a later train() in the
    same process replaces it (long after the worker thread let go).
    """
    import torch.distributed as dist

    if accelerator.num_processes == 1 or not (dist.is_available() and dist.is_initialized()):
        accelerator.wait_for_everyone()
        return
    device_ids = [accelerator.local_process_index] if accelerator.device.type == "cuda" else None
    work = dist.barrier(async_op=True, device_ids=device_ids)
    work.wait()
    _LAST_BARRIER[:] = [work]


def _training_info(
    config: TrainConfig, trainer: Any, result: Any, test: dict[str, float], dataset: Any, train_used: int,
    model_dir: Path, seconds: float, threads: int, resume_from: Path | None,
) -> dict[str, Any]:
    """The content of training.json."""
    import torch

    args, state = trainer.args, trainer.state
    epochs = [
        {"epoch": e["epoch"], "step": e["step"], **{k[5:]: v for k, v in e.items() if k.startswith("eval_")}}
        for e in state.log_history
        if "eval_loss" in e
    ]
    resumed_step = int(resume_from.name.rsplit("-", 1)[1]) if resume_from else 0
    return {
        "version": 1,
        "config": config.to_dict(),
        "base_model": str(model_dir),
        "architecture": trainer.model.config.model_type,
        "labels": list(dataset.labels),  # id i is labels[i], as in the model's config.id2label
        "data": {
            "source": str(config.data),
            "text_column": config.text_column,
            "text_pair_column": config.text_pair_column,  # None for one text per row (and built-in data)
            "label_column": config.label_column,
            "validation": str(config.validation) if config.validation else None,
            "test": str(config.test) if config.test else None,
            "sizes": {**dataset.sizes(), "train_used": train_used},
            "splits": dataset.splits_info(),  # each split's source and the texts dropped as already in another
        },
        "device": str(args.device),
        "world_size": args.world_size,
        "threads": threads,
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "steps": result.global_step,
        "epochs_run": state.epoch,
        "resumed_from_step": resumed_step,
        "train_seconds": round(seconds, 1),  # this run's, not counting a run it resumed
        "steps_per_second": round((result.global_step - resumed_step) / seconds, 3) if seconds else None,
        "epochs": epochs,
        "best": {"metric": args.metric_for_best_model, "value": state.best_metric,
                 "checkpoint": Path(state.best_model_checkpoint or "").name},
        # always the test split (a file, or a cut of the training file), never the validation split
        "test": {k[5:]: v for k, v in test.items() if k.startswith("test_")},
        "test_split": {"source": dataset.test.source, "n": len(dataset.test)},
        "torch": torch.__version__,
    }


def read_training_info(checkpoint: Path) -> dict[str, Any]:
    """training.json of a checkpoint, or {} for a checkpoint not made by lpm-edge."""
    path = Path(checkpoint) / TRAINING_JSON
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc}); re-run training or delete the file") from None
