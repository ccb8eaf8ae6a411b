"""Knowledge distillation: a pruned student learns the fine-tuned teacher's outputs.

The loss on the outputs is the task's (lpm_edge/tasks/): for single-label classifiers
alpha · KL(teacher_T ‖ student_T) · T² + (1 − alpha) · CE(student, gold labels), where _T is a
softmax at temperature T (Hinton et al. 2015; the T² keeps the soft gradients' scale).
The recipe can add hidden-state and attention-relation terms (losses.py), texts without gold
labels (transfer.py: soft loss only) and early stopping on validation texts (early_stop.py).
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Sequence

from .batches import Progress, encode
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
CHECKPOINT_FILE = "distill.pt"


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
    """Train `student` in place against `teacher` for config.steps steps; return what happened.

    The teacher is never changed: on a GPU it is copied there, on the CPU it runs as it is, in
    eval mode under no_grad. The student ends in eval mode on the CPU, ready for export.
    checkpoint: a folder where the state (student, optimizer, schedule, step, random state) is
    saved every CHECKPOINT_SECONDS; a run started with the same folder continues from there and
    ends with the weights an uninterrupted run would have.
    validation: with config.eval_every, the split early stopping measures the student on; the
    student ends with the weights of its best check.
    kept_layers: the teacher layer each student layer was pruned from, for the hidden-state and
    attention-relation losses (config.hidden_weight, config.attention_relation_weight).
    extra_texts: texts without gold labels (unlabelled, augmented), shuffled in with the training
    texts; they enter the soft loss only.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    from ..tasks.single_label import SingleLabel

    task = task or SingleLabel(("0", "1"))
    started = time.perf_counter()
    if device != "cpu" or teacher.training:
        teacher = copy.deepcopy(teacher).eval().to(device)
    student.to(device)
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(WARMUP * config.steps), config.steps)
    temp, alpha = config.temperature, config.alpha
    loss_value, done = float("nan"), 0
    stopper = (EarlyStopping(teacher, tokenizer, validation, config, max_length, task)
               if config.eval_every and validation is not None and len(validation) else None)
    transfer = transfer_loss(student, teacher, config, kept_layers)  # None: the logits alone
    extra = transfer.kwargs if transfer is not None else {}
    extra_hash = texts_hash(extra_texts)
    state = _resume(checkpoint, student, optimizer, schedule, config, device, extra_hash)
    if state is not None:
        done, kl_before, loss_value = state["done"], state["kl_before"], state["loss"]
        started -= state["seconds"]
        if stopper is not None and state.get("early_stop") is not None:
            stopper.load_state_dict(state["early_stop"])
    else:
        kl_before = mean_kl(student, teacher, tokenizer, eval_texts, max_length, task=task)
    progress = Progress(config.steps, "distill", done=done)
    student.train()
    saved = time.monotonic()
    # extra texts (unlabelled, augmented): the teacher's soft targets only
    pool = train if not extra_texts else SimpleNamespace(texts=(*train.texts, *extra_texts),
                                                         labels=(*train.labels, *[task.no_gold()] * len(extra_texts)))
    batches = task.labelled_batches(tokenizer, pool, config.batch_size, max_length, device, config.steps)
    try:
        for inputs, labels in itertools.islice(batches, done, None):
            with torch.no_grad():
                t_out = teacher(**inputs, **extra)
                t_logits = t_out.logits.float()  # (B, C)
            s_out = student(**inputs, **extra)
            s_logits = s_out.logits.float()  # (B, C)
            # A batch of texts without gold labels only (unlabelled, augmented) gets the soft loss alone.
            gold = None if extra_texts and not bool(task.has_gold(labels).any()) else labels
            loss = task.distill_loss(s_logits, t_logits, gold, temp, alpha)
            if transfer is not None:
                loss = loss + transfer(s_out, t_out, inputs["attention_mask"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            loss_value = float(loss.detach())
            done += 1
            progress.update(loss=loss_value)
            if stopper is not None and stopper.due(done, config.steps) and stopper.check(done, student):
                log.info("early stopping at step %d: no gain in %d checks; keeping step %d", done,
                         stopper.patience, stopper.best_step)
                break
            if checkpoint is not None and done < config.steps and time.monotonic() - saved >= CHECKPOINT_SECONDS:
                _save(checkpoint, student, optimizer, schedule, config, device, done, kl_before, loss_value,
                      time.perf_counter() - started, stopper, extra_hash)
                saved = time.monotonic()
    finally:
        progress.close()
        student.eval()
        if transfer is not None:
            transfer.close()
    if stopper is not None:
        stopper.restore(student)
    kl_after = mean_kl(student, teacher, tokenizer, eval_texts, max_length, task=task)
    student.to("cpu")
    seconds = time.perf_counter() - started
    log.info("distilled %d steps on %s in %.0f s: KL to teacher %.4f -> %.4f", done, device, seconds,
             kl_before, kl_after)
    record = {
        "steps": done, "device": device, "temperature": temp, "alpha": alpha,
        "kl_before": kl_before, "kl_after": kl_after, "final_loss": loss_value,
        "eval_texts": len(eval_texts), "seconds": round(seconds, 2),
    }
    if stopper is not None:
        record["early_stopping"] = stopper.record(done)
    if transfer is not None:
        record["transfer"] = transfer.record()
    if extra_texts:
        record["extra_texts"] = len(extra_texts)
    return record


def _save(folder: Path, student: Any, optimizer: Any, schedule: Any, config: "DistillConfig", device: str,
          done: int, kl_before: float, loss: float, seconds: float, stopper: EarlyStopping | None = None,
          extra: str = "") -> None:
    """Write the distillation state through a temporary file and a rename: never half-written."""
    import dataclasses

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "config": dataclasses.asdict(config), "done": done, "kl_before": kl_before, "loss": loss,
        "seconds": seconds, "student": student.state_dict(), "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(), "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if device.startswith("cuda") else None,
        "early_stop": stopper.state_dict() if stopper is not None else None,
        "extra_texts": extra,
    }
    tmp = folder / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / CHECKPOINT_FILE)
    log.debug("distillation checkpoint at step %d in %s", done, folder)


def _resume(folder: Path | None, student: Any, optimizer: Any, schedule: Any, config: "DistillConfig",
            device: str, extra: str = "") -> dict[str, Any] | None:
    """Load a checkpoint written by `_save` for these settings into the objects; None when there is none."""
    import dataclasses

    import torch

    path = folder / CHECKPOINT_FILE if folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=False)
        if state.get("config") != dataclasses.asdict(config) or not 0 < state["done"] < config.steps:
            raise ValueError("other settings")
        if state.get("extra_texts", "") != extra:
            raise ValueError("other unlabelled or augmented texts")
        own, saved = student.state_dict(), state["student"]
        if set(own) != set(saved) or any(own[k].shape != v.shape for k, v in saved.items()):
            raise ValueError("another pruned shape")  # checked first: a failed load would leave half the weights
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
    except (OSError, RuntimeError, ValueError, KeyError, EOFError) as exc:
        log.warning("ignoring the distillation checkpoint %s (%s); distilling from the start", path,
                    str(exc).splitlines()[0][:200])
        return None
    torch.set_rng_state(state["rng"])
    if state.get("cuda_rng") is not None and device.startswith("cuda"):
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    log.info("resuming distillation at step %d of %d from %s", state["done"], config.steps, path)
    return state
