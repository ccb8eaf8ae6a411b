"""Knowledge distillation: a pruned student learns the fine-tuned teacher's logits.

loss = alpha · KL(teacher_T ‖ student_T) · T² + (1 − alpha) · CE(student, gold labels), where _T is
a softmax at temperature T (Hinton et al. 2015; the T² keeps the soft gradients' scale).
"""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING, Any, Sequence

from .batches import Progress, encode, labelled_batches

if TYPE_CHECKING:
    from ..data import Split
    from .recipe import DistillConfig

log = logging.getLogger("lpm_edge.export")
WARMUP = 0.06  # fraction of steps with a rising learning rate


def mean_kl(student: Any, teacher: Any, tokenizer: Any, texts: Sequence[str], max_length: int,
            batch_size: int = 32) -> float:
    """Mean KL(teacher ‖ student) per text at temperature 1, both models in eval mode, no dropout."""
    import torch
    import torch.nn.functional as F

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
                total += float(F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True,
                                        reduction="sum"))
    finally:
        student.train(s_mode)
        teacher.train(t_mode)
    return total / max(1, len(texts))


def distill(
    student: Any, teacher: Any, tokenizer: Any, train: "Split", config: "DistillConfig", max_length: int,
    device: str, eval_texts: Sequence[str],
) -> dict[str, Any]:
    """Train `student` in place against `teacher` for config.steps steps; return what happened.

    The teacher is never changed: on a GPU it is copied there, on the CPU it runs as it is, in
    eval mode under no_grad. The student ends in eval mode on the CPU, ready for export.
    """
    import torch
    import torch.nn.functional as F
    from transformers import get_linear_schedule_with_warmup

    started = time.perf_counter()
    if device != "cpu" or teacher.training:
        teacher = copy.deepcopy(teacher).eval().to(device)
    student.to(device)
    kl_before = mean_kl(student, teacher, tokenizer, eval_texts, max_length)
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=config.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(WARMUP * config.steps), config.steps)
    temp, alpha = config.temperature, config.alpha
    progress = Progress(config.steps, "distill")
    student.train()
    loss_value, done = float("nan"), 0
    try:
        for inputs, labels in labelled_batches(tokenizer, train.texts, train.labels, config.batch_size,
                                               max_length, device, limit=config.steps):
            with torch.no_grad():
                t_logits = teacher(**inputs).logits.float()  # (B, C)
            s_logits = student(**inputs).logits.float()  # (B, C)
            soft = F.kl_div(F.log_softmax(s_logits / temp, -1), F.log_softmax(t_logits / temp, -1),
                            log_target=True, reduction="batchmean") * temp * temp
            hard = F.cross_entropy(s_logits, labels)
            loss = alpha * soft + (1 - alpha) * hard
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            loss_value = float(loss.detach())
            done += 1
            progress.update(loss=loss_value)
    finally:
        progress.close()
        student.eval()
    kl_after = mean_kl(student, teacher, tokenizer, eval_texts, max_length)
    student.to("cpu")
    seconds = time.perf_counter() - started
    log.info("distilled %d steps on %s in %.0f s: KL to teacher %.4f -> %.4f", done, device, seconds,
             kl_before, kl_after)
    return {
        "steps": done, "device": device, "temperature": temp, "alpha": alpha,
        "kl_before": kl_before, "kl_after": kl_after, "final_loss": loss_value,
        "eval_texts": len(eval_texts), "seconds": round(seconds, 2),
    }
