"""Knowledge distillation: a pruned student learns the fine-tuned teacher's outputs.

The loss on the outputs is the task's (lpm_edge/tasks/): for single-label classifiers
alpha · KL(teacher_T ‖ student_T) · T² + (1 − alpha) · CE(student, gold labels), where _T is a
softmax at temperature T (Hinton et al. 2015; the T² keeps the soft gradients' scale).
The recipe can add hidden-state and attention-relation terms (losses.py), texts without gold
labels (transfer.py: soft loss only) and early stopping on validation texts (early_stop.py).
The steps run on Hugging Face's Trainer (distill_trainer.py), as fine-tuning does.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Sequence

from .batches import encode
from .early_stop import EarlyStopping
from .losses import transfer_loss
from .transfer import texts_hash

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks.base import Task
    from .recipe import DistillConfig

log = logging.getLogger("lpm_edge.export")
WARMUP = 0.06  # fraction of steps with a rising learning rate
CHECKPOINT_SECONDS = 120.0  # how often a resumable distillation saves its state
CHECKPOINT_FILE = "distill.json"  # names the last complete Trainer checkpoint and the run's settings
EARLY_STOP_FILE = "early_stop.pt"  # early stopping's state, inside each Trainer checkpoint
SEED = 0


def mean_kl(student: Any, teacher: Any, tokenizer: Any, texts: Sequence[str], max_length: int,
            batch_size: int = 32, task: "Task | None" = None) -> float:
    """Mean divergence of student from teacher per text (the task's; single-label: KL(teacher ‖ student)
    at temperature 1), both models in eval mode, no dropout."""
    import torch

    from ..tasks.single_label import SingleLabel

    task = task or SingleLabel(("0", "1"))
    s_dev, t_dev = next(student.parameters()).device, next(teacher.parameters()).device
    s_mode, t_mode = student.training, teacher.training
    student.eval()
    teacher.eval()
    total = 0.0
    try:
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = texts[start : start + batch_size]
                s = student(**encode(tokenizer, batch, max_length, str(s_dev))).logits.float().cpu()  # (B, C)
                t = teacher(**encode(tokenizer, batch, max_length, str(t_dev))).logits.float().cpu()  # (B, C)
                total += float(task.divergence(s, t))
    finally:
        student.train(s_mode)
        teacher.train(t_mode)
    return total / max(1, len(texts))


def distill(
    student: Any, teacher: Any, tokenizer: Any, train: "Split", config: "DistillConfig", max_length: int,
    device: str, eval_texts: Sequence[str], checkpoint: Path | None = None, validation: "Split | None" = None,
    kept_layers: Sequence[int] | None = None, extra_texts: Sequence[str] = (), task: "Task | None" = None,
) -> dict[str, Any]:
    """Train `student` in place against `teacher` for config.steps optimizer steps; return what happened.

    Runs on Hugging Face's Trainer (distill_trainer.py). device "cuda": the GPU, in
    config.precision (auto: bf16 where the GPU has it natively, else fp16); "cpu": fp32. Under
    torchrun every process calls this and DDP shares the steps. config.grad_accum batches make one
    optimizer step. The teacher is never changed: on a GPU it is copied there, on the CPU it runs
    as it is, in eval mode under no_grad. The student ends in eval mode on the CPU, ready for export.
    checkpoint: a folder where the Trainer's state (student, optimizer, schedule, step, random
    state, early stopping) is saved every CHECKPOINT_SECONDS; a run started with the same folder
    continues from there and ends with the weights an uninterrupted run would have.
    validation: with config.eval_every, the split early stopping measures the student on; the
    student ends with the weights of its best check.
    kept_layers: the teacher layer each student layer was pruned from, for the hidden-state and
    attention-relation losses (config.hidden_weight, config.attention_relation_weight).
    extra_texts: texts without gold labels (unlabelled, augmented), shuffled in with the training
    texts; they enter the soft loss only.
    """
    from ..tasks.single_label import SingleLabel
    from ..train.device import plan_device
    from ..train.trainer import training_arguments

    task = task or SingleLabel(("0", "1"))
    started = time.perf_counter()
    gpu = device.startswith("cuda")
    if not gpu and config.precision not in ("auto", "fp32"):
        log.info("distill.precision %s is for GPUs; distilling on the CPU in fp32", config.precision)
    plan = plan_device("cuda" if gpu else "cpu", config.precision if gpu else "fp32")
    extra_hash = texts_hash(extra_texts)
    resume = _resume_point(checkpoint, student, config, extra_hash)
    with tempfile.TemporaryDirectory(prefix="lpm-edge-distill-") as scratch:
        args = training_arguments(
            checkpoint if checkpoint is not None else scratch, plan.trainer_args(), max_steps=config.steps,
            batch_size=1,  # an item of the dataset is a ready batch of config.batch_size texts
            grad_accum=config.grad_accum, learning_rate=config.learning_rate, weight_decay=0.01,
            warmup_ratio=WARMUP, seed=SEED, group_by_length=False,  # the task's batches are length-grouped
            save_strategy="no",  # timed checkpoints (distill_trainer.timed_checkpoints) ask for saves
            remove_unused_columns=False, dataloader_pin_memory=plan.device == "cuda", save_safetensors=True,
        )
        if args.device.type != "cpu" or teacher.training:
            teacher = copy.deepcopy(teacher).eval().to(args.device)
        transfer = transfer_loss(student, teacher, config, kept_layers)  # None: the logits alone
        try:
            record = _run(student, teacher, tokenizer, train, config, max_length, eval_texts, checkpoint,
                          validation, extra_texts, task, args, resume, transfer, extra_hash)
        finally:
            student.eval()
            if transfer is not None:
                transfer.close()
    kl_after = mean_kl(student, teacher, tokenizer, eval_texts, max_length, task=task)
    student.to("cpu")
    seconds = time.perf_counter() - started + (resume[1]["seconds"] if resume else 0.0)
    log.info("distilled %d steps on %s in %.0f s: KL to teacher %.4f -> %.4f", record["steps"], record["device"],
             seconds, record["kl_before"], kl_after)
    record.update(kl_after=kl_after, seconds=round(seconds, 2))
    return record


def _run(student: Any, teacher: Any, tokenizer: Any, train: "Split", config: "DistillConfig", max_length: int,
         eval_texts: Sequence[str], checkpoint: Path | None, validation: "Split | None", extra_texts: Sequence[str],
         task: "Task", args: Any, resume: tuple[Path, dict[str, Any]] | None, transfer: Any,
         extra_hash: str) -> dict[str, Any]:
    """The Trainer's run: the record without kl_after and seconds."""
    import torch

    from ..train.trainer import log_progress
    from .distill_trainer import BatchPlan, distill_trainer, early_stop_callback, timed_checkpoints

    run_started = time.perf_counter()
    stopper = (EarlyStopping(teacher, tokenizer, validation, config, max_length, task)
               if config.eval_every and validation is not None and len(validation) else None)
    if resume is not None:
        kl_before = resume[1]["kl_before"]
        if stopper is not None:
            stopper.load_state_dict(torch.load(resume[0] / EARLY_STOP_FILE, weights_only=False))
        log.info("resuming distillation at step %d of %d from %s", resume[1]["step"], config.steps, resume[0])
    else:
        kl_before = mean_kl(student, teacher, tokenizer, eval_texts, max_length, task=task)
    # extra texts (unlabelled, augmented): the teacher's soft targets only
    pool = train if not extra_texts else SimpleNamespace(texts=(*train.texts, *extra_texts),
                                                         labels=(*train.labels, *[task.no_gold()] * len(extra_texts)))
    n = config.steps * config.grad_accum * args.world_size  # batches: every process reads its share
    batches = BatchPlan(task.labelled_batches(tokenizer, pool, config.batch_size, max_length, "cpu", n), n)
    trainer: Any = None

    def saved(step: int) -> None:
        _write_state(checkpoint, step, student, config, extra_hash, kl_before, trainer.last_loss, stopper,
                     time.perf_counter() - run_started + (resume[1]["seconds"] if resume else 0.0))

    callbacks = [early_stop_callback(stopper, student)] if stopper is not None else []
    if checkpoint is not None:
        callbacks.append(timed_checkpoints(lambda: CHECKPOINT_SECONDS, saved))
    trainer = distill_trainer(student, teacher, task, config.temperature, config.alpha, transfer,
                              soft_only_batches=bool(extra_texts), args=args, train_dataset=batches,
                              callbacks=callbacks)
    log_progress(trainer, "distill", log)
    student.train()
    result = trainer.train(resume_from_checkpoint=str(resume[0]) if resume else None)
    # mixed precision wraps the student's forward in autocast: take the plain module back for export
    trainer.accelerator.unwrap_model(trainer.model_wrapped, keep_fp32_wrapper=False)
    if stopper is not None:
        stopper.restore(student)
    done = result.global_step
    run_seconds = time.perf_counter() - run_started
    record: dict[str, Any] = {
        "steps": done, "device": args.device.type, "temperature": config.temperature, "alpha": config.alpha,
        "kl_before": kl_before,
        "final_loss": float(trainer.last_loss) if trainer.last_loss is not None else float("nan"),
        "eval_texts": len(eval_texts),
        "precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
        "processes": args.world_size, "grad_accum": config.grad_accum, "threads": torch.get_num_threads(),
        "steps_per_second": round((done - (resume[1]["step"] if resume else 0)) / run_seconds, 3),
    }
    if stopper is not None:
        record["early_stopping"] = stopper.record(done)
    if transfer is not None:
        record["transfer"] = transfer.record()
    if extra_texts:
        record["extra_texts"] = len(extra_texts)
    return record


def _shapes(student: Any) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in student.state_dict().items()}


def _write_state(folder: Path | None, step: int, student: Any, config: "DistillConfig", extra: str,
                 kl_before: float, loss: Any, stopper: EarlyStopping | None, seconds: float) -> None:
    """After the Trainer wrote checkpoint-STEP in `folder`: add early stopping's state to it, then name
    it in CHECKPOINT_FILE (through a temporary file and a rename), then drop older checkpoints. A run
    killed at any point leaves CHECKPOINT_FILE naming a complete checkpoint."""
    import torch

    if folder is None:
        return
    ckpt = folder / f"checkpoint-{step}"
    if stopper is not None:
        torch.save(stopper.state_dict(), ckpt / EARLY_STOP_FILE)
    state = {
        "config": dataclasses.asdict(config), "step": step, "checkpoint": ckpt.name, "kl_before": kl_before,
        "loss": float(loss) if loss is not None else None, "seconds": seconds, "extra_texts": extra,
        "shapes": _shapes(student),
    }
    tmp = folder / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, folder / CHECKPOINT_FILE)
    for old in folder.glob("checkpoint-*"):
        if old.name != ckpt.name and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    log.debug("distillation checkpoint at step %d in %s", step, ckpt)


def _resume_point(folder: Path | None, student: Any, config: "DistillConfig",
                  extra: str) -> tuple[Path, dict[str, Any]] | None:
    """(the Trainer checkpoint, its state) a run with these settings can continue from; None when there
    is none. A checkpoint of other settings is removed, so that the Trainer starts afresh."""
    path = folder / CHECKPOINT_FILE if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        if state.get("config") != json.loads(json.dumps(dataclasses.asdict(config))) \
                or not 0 < state["step"] < config.steps:
            raise ValueError("other settings")
        if state.get("extra_texts", "") != extra:
            raise ValueError("other unlabelled or augmented texts")
        if state.get("shapes") != _shapes(student):
            raise ValueError("another pruned shape")
        ckpt = path.parent / state["checkpoint"]
        if not (ckpt / "trainer_state.json").is_file():
            raise ValueError(f"{ckpt.name} is incomplete")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the distillation checkpoint %s (%s); distilling from the start", path,
                    str(exc).splitlines()[0][:200])
        path.unlink(missing_ok=True)
        for old in path.parent.glob("checkpoint-*"):
            shutil.rmtree(old, ignore_errors=True)
        return None
    return ckpt, state
