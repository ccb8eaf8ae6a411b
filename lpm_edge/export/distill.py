"""Knowledge distillation: a pruned student learns the fine-tuned teacher's outputs.

The loss on the outputs is the task's (lpm_edge/tasks/): for single-label classifiers
alpha · KL(teacher_T ‖ student_T) · T² + (1 − alpha) · CE(student, gold labels), where _T is a
softmax at temperature T (Hinton et al. 2015; the T² keeps the soft gradients' scale).
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .batches import Progress, encode

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
    device: str, eval_texts: Sequence[str], checkpoint: Path | None = None, task: "Task | None" = None,
) -> dict[str, Any]:
    """Train `student` in place against `teacher` for config.steps steps; return what happened.

    The teacher is never changed: on a GPU it is copied there, on the CPU it runs as it is, in
    eval mode under no_grad. The student ends in eval mode on the CPU, ready for export.
    checkpoint: a folder where the state (student, optimizer, schedule, step, random state) is
    saved every CHECKPOINT_SECONDS; a run started with the same folder continues from there and
    ends with the weights an uninterrupted run would have.
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
    state = _resume(checkpoint, student, optimizer, schedule, config, device)
    if state is not None:
        done, kl_before, loss_value = state["done"], state["kl_before"], state["loss"]
        started -= state["seconds"]
    else:
        kl_before = mean_kl(student, teacher, tokenizer, eval_texts, max_length, task=task)
    progress = Progress(config.steps, "distill", done=done)
    student.train()
    saved = time.monotonic()
    batches = task.labelled_batches(tokenizer, train, config.batch_size, max_length, device, config.steps)
    try:
        for inputs, labels in itertools.islice(batches, done, None):
            with torch.no_grad():
                t_logits = teacher(**inputs).logits.float()  # (B, C)
            s_logits = student(**inputs).logits.float()  # (B, C)
            loss = task.distill_loss(s_logits, t_logits, labels, temp, alpha)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            loss_value = float(loss.detach())
            done += 1
            progress.update(loss=loss_value)
            if checkpoint is not None and done < config.steps and time.monotonic() - saved >= CHECKPOINT_SECONDS:
                _save(checkpoint, student, optimizer, schedule, config, device, done, kl_before, loss_value,
                      time.perf_counter() - started)
                saved = time.monotonic()
    finally:
        progress.close()
        student.eval()
    kl_after = mean_kl(student, teacher, tokenizer, eval_texts, max_length, task=task)
    student.to("cpu")
    seconds = time.perf_counter() - started
    log.info("distilled %d steps on %s in %.0f s: KL to teacher %.4f -> %.4f", done, device, seconds,
             kl_before, kl_after)
    return {
        "steps": done, "device": device, "temperature": temp, "alpha": alpha,
        "kl_before": kl_before, "kl_after": kl_after, "final_loss": loss_value,
        "eval_texts": len(eval_texts), "seconds": round(seconds, 2),
    }


def _save(folder: Path, student: Any, optimizer: Any, schedule: Any, config: "DistillConfig", device: str,
          done: int, kl_before: float, loss: float, seconds: float) -> None:
    """Write the distillation state through a temporary file and a rename: never half-written."""
    import dataclasses

    import torch

    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "config": dataclasses.asdict(config), "done": done, "kl_before": kl_before, "loss": loss,
        "seconds": seconds, "student": student.state_dict(), "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(), "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if device.startswith("cuda") else None,
    }
    tmp = folder / f".{CHECKPOINT_FILE}.{os.getpid()}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, folder / CHECKPOINT_FILE)
    log.debug("distillation checkpoint at step %d in %s", done, folder)


def _resume(folder: Path | None, student: Any, optimizer: Any, schedule: Any, config: "DistillConfig",
            device: str) -> dict[str, Any] | None:
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
