"""`compress`: structured pruning, then distillation, on a copy of the fine-tuned model."""

from __future__ import annotations

import copy
import logging
import time
from typing import TYPE_CHECKING, Any, Sequence

from .. import tasks
from . import prune as _prune
from .batches import pick_device
from .distill import distill
from .transfer import augmented

if TYPE_CHECKING:
    from pathlib import Path

    from ..data import Dataset
    from ..tasks.base import Task
    from .recipe import Recipe

log = logging.getLogger("lpm_edge.export")
KL_SAMPLE = 256  # validation texts on which the student's KL to the teacher is reported


def compress(
    model: Any, tokenizer: Any, dataset: "Dataset", recipe: "Recipe", resume: "Path | None" = None,
    task: "Task | None" = None,
    unlabelled: Sequence[str] = (),
) -> tuple[Any, dict[str, Any]]:
    """Return (student, info): `model` pruned by recipe.prune, then distilled from `model`.

    resume: a folder for distillation checkpoints; a run killed midway continues from the last one.
    task: what the model computes (its distillation loss); default: single-label over the data's labels.
    unlabelled: texts without labels that distillation adds to the training texts (teacher only),
    with the augmented copies recipe.distill.augment asks for.

    `model` is never changed; the student is a deep copy, in eval mode, on the CPU. `info` says
    what was removed and what distillation achieved; the manifest stores it.
    """
    import torch

    task = task or tasks.from_training({}, dataset.labels)
    started = time.perf_counter()
    p, d = recipe.prune, recipe.distill
    fam = _prune.family(model)
    max_length = min(recipe.max_length, fam.max_length(model.config))
    device = pick_device()
    student = copy.deepcopy(model).eval()
    before = _prune.shape(student) if (p.heads or p.ffn or p.layers is not None) else None
    info: dict[str, Any] = {"parameters": {"before": _parameters(model), "after": _parameters(model)}}

    if before is not None:
        torch.manual_seed(0)
        student.to(device)
        train = dataset.train
        batches = list(task.labelled_batches(tokenizer, train, d.batch_size, max_length, device,
                                             p.importance_batches))
        if p.importance == "gradient":
            head_scores, ffn_scores = _prune.gradient_importance(student, batches, task.importance_loss)
        else:
            head_scores, ffn_scores = _prune.magnitude_importance(student)
        # What the family cannot lose stays (check_capabilities said so before any work).
        skipped = {k: why for k, why in (("heads", fam.no_heads if p.heads else ""),
                                         ("layers", fam.no_layers if p.layers is not None else "")) if why}
        keep_layers = tuple(range(before["layers"])) if "layers" in skipped else _keep_layers(
            student, p, batches, before["layers"], fam.layer_period(student.config), task.divergence)
        plan = _prune.plan(head_scores, ffn_scores, 0.0 if "heads" in skipped else p.heads, p.ffn, keep_layers)
        _prune.apply(student, plan)
        student.to("cpu").eval()
        after = _prune.shape(student)
        info.update({
            "importance": p.importance,
            "importance_batches": len(batches),
            "kept_layers": list(plan.keep_layers),
            "pruned_heads": {str(k): list(v) for k, v in plan.drop_heads.items()},
            **{k: {"before": before[k], "after": after[k]} for k in ("layers", "heads", "ffn")},
            **({"skipped": skipped} if skipped else {}),
        })
        log.info("pruned: layers %d -> %d, heads/layer %d -> %d, FFN %d -> %d, parameters %.2fM -> %.2fM",
                 before["layers"], after["layers"], before["heads"], after["heads"], before["ffn"], after["ffn"],
                 before["parameters"] / 1e6, after["parameters"] / 1e6)

    if d.steps:
        torch.manual_seed(0)
        eval_texts = list(dataset.validation.texts[:KL_SAMPLE])
        extra = [*augmented(dataset.train.texts, d), *unlabelled]
        info["distill"] = distill(student, model, tokenizer, dataset.train, d, max_length, device, eval_texts,
                                  checkpoint=resume, validation=dataset.validation,
                                  kept_layers=info.get("kept_layers"), extra_texts=extra, task=task)
        if unlabelled:
            info["distill"]["unlabelled_texts"] = len(unlabelled)
    info["parameters"]["after"] = _parameters(student)
    info["seconds"] = round(time.perf_counter() - started, 2)
    return student, info


def _parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _keep_layers(model: Any, p: Any, batches: list, total: int, period: int = 1,
                 divergence: Any = None) -> tuple[int, ...]:
    """Layers to keep. With period k > 1 (ModernBERT) whole blocks of k consecutive layers go, never
    the first block, and the count asked for is rounded up to whole blocks."""
    if p.layers is None or p.layers >= total:
        if p.layers is not None:
            log.warning("prune.layers=%d but the model has %d layers; keeping all", p.layers, total)
        return tuple(range(total))
    blocks = [tuple(range(s, min(s + period, total))) for s in range(0, total, period)]
    want = max(1, -(-p.layers // period))  # blocks, rounded up
    if period > 1:
        log.info("prune.layers=%d: layers go in blocks of %d for this family; keeping %d", p.layers, period,
                 sum(len(b) for b in blocks[:want]))
    if want >= len(blocks):
        return tuple(range(total))
    if p.layer_selection == "even":
        chosen = (0,) if want == 1 and period > 1 else _prune.evenly_spaced(len(blocks), want)
    else:
        scores = _prune.layer_importance(model, batches, divergence)  # KL when that one layer is skipped
        log.info("layer importance (KL when skipped): %s", ", ".join(f"{s:.4f}" for s in scores))
        block_scores = [sum(scores[i] for i in b) for b in blocks]
        first = (0,) if period > 1 else ()  # the first block stays
        ranked = sorted((i for i in range(len(blocks)) if i not in first), key=lambda i: block_scores[i], reverse=True)
        chosen = tuple(sorted(first + tuple(ranked[: want - len(first)])))
    return tuple(i for b in chosen for i in blocks[b])
