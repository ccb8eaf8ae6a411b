"""How long a search will take on this machine, said before it starts.

Distillation is most of a search's time (an export of a pruned candidate distils its student;
candidates that differ only in precision share one). The estimate times a few distillation steps
of the full-size model here (teacher forward, student forward and backward, optimizer step: an
upper bound per step, since the students are smaller) and multiplies by the steps of every
distinct student the space holds. It is an upper bound of the distillation time, not a promise:
a pruning direction that breaks the budget ends early, students already distilled are reused,
and export and measurement add their own minutes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..progress import duration

if TYPE_CHECKING:
    from ..data import Dataset
    from ..tasks.base import Task
    from .space import Candidate

log = logging.getLogger("lpm_edge.search")
MEASURED_STEPS = 3  # timed steps, after one warm-up step


@dataclass(frozen=True)
class Estimate:
    step_seconds: float  # one distillation step of the full-size model, measured here
    measured_steps: int
    students: int  # distinct pruned, distilled students in the space
    steps: int  # their distillation steps, all together
    candidates: int

    @property
    def seconds(self) -> float:
        """Distillation time of every student (an upper bound)."""
        return self.step_seconds * self.steps

    def describe(self) -> str:
        return (f"estimate: up to {self.students} students to distil, {self.steps:,} steps in all, at "
                f"{self.step_seconds:.2f} s a step (measured here over {self.measured_steps} steps of the full-size "
                f"model; students are smaller) = about {duration(self.seconds)} of distillation, plus the export "
                f"and measurement of {self.candidates} candidates. This is an estimate: a pruning direction that "
                "breaks the budget ends early, students already distilled are reused; --max-minutes caps the search")


def plan(space: Sequence["Candidate"], step_seconds: float, measured_steps: int = MEASURED_STEPS) -> Estimate:
    """The estimate for `space` at `step_seconds` a distillation step."""
    students = {c.student_key(): c.distill_steps for c in space if c.distils}
    return Estimate(step_seconds=step_seconds, measured_steps=measured_steps, students=len(students),
                    steps=sum(students.values()), candidates=len(space))


def step_seconds(checkpoint: Path, dataset: "Dataset", task: "Task", batch_size: int, max_length: int,
                 steps: int = MEASURED_STEPS) -> float:
    """Median seconds of a distillation step of the checkpoint's full-size model against itself on
    training texts, after one warm-up step; the checkpoint is not changed."""
    import copy
    import statistics

    import torch
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from ..export.batches import pick_device
    from ..families import adapter_for

    config = AutoConfig.from_pretrained(checkpoint, local_files_only=True)
    teacher = getattr(transformers, task.model_class).from_pretrained(
        checkpoint, local_files_only=True, use_safetensors=True,
        attn_implementation=adapter_for(config).attn_implementation).eval()
    task = task.for_checkpoint(checkpoint, teacher.config)
    device = pick_device()  # where the exports will distil
    teacher = task.prepare_model(teacher).to(device)
    student = copy.deepcopy(teacher).train()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    times: list[float] = []
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for inputs, labels in task.labelled_batches(tokenizer, dataset.train, batch_size, max_length, device, steps + 1):
        sync()
        start = time.perf_counter()
        with torch.no_grad():
            t_logits = teacher(**inputs).logits.float()
        loss = task.distill_loss(student(**inputs).logits.float(), t_logits, labels, 2.0, 0.5)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:] or times)


def announce(checkpoint: Path, dataset: "Dataset", task: "Task", space: Sequence["Candidate"], batch_size: int,
             max_length: int) -> Estimate | None:
    """Measure, log and return the estimate; None when the space distils nothing."""
    if not any(c.distils for c in space):
        return None
    started = time.perf_counter()
    seconds = step_seconds(checkpoint, dataset, task, batch_size, max_length)
    estimate = plan(space, seconds)
    log.info("search %s (timing took %.0f s)", estimate.describe(), time.perf_counter() - started)
    return estimate

