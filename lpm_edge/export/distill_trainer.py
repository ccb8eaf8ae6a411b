"""Distillation on Hugging Face's Trainer: the student is the Trainer's model, the teacher a frozen
passenger, and the loss the task's distillation loss plus the transfer terms (losses.py).

The Trainer brings what fine-tuning has (lpm_edge/train/trainer.py): a GPU, bf16/fp16 mixed
precision, DDP under torchrun, gradient accumulation, resumable checkpoints with the random state,
and the same progress and log lines. The batches stay the task's (`Task.labelled_batches`:
shuffled, length-grouped, padded per batch, unlabelled texts mixed in); each item of the dataset
below is one such ready batch, read in order.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, Iterator


if TYPE_CHECKING:
    import torch

    from ..tasks.base import Task
    from .early_stop import EarlyStopping
    from .losses import TransferLoss

log = logging.getLogger("lpm_edge.export")
_WINDOW = 64  # ready batches kept behind the newest (the data loader reads ahead by one or two)


class BatchPlan:
    """A map-style dataset whose item i is batch i of `batches` ({**inputs, "labels": y}), made on
    first access; items are read in increasing order (a resumed run starts further on)."""

    def __init__(self, batches: Iterator[tuple[dict[str, "torch.Tensor"], "torch.Tensor"]], n: int) -> None:
        self.batches, self.n = batches, n
        self.made: dict[int, dict[str, Any]] = {}
        self.next = 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        while self.next <= i:
            inputs, labels = next(self.batches)
            self.made[self.next] = {**inputs, "labels": labels}
            self.made.pop(self.next - _WINDOW, None)
            self.next += 1
        if i not in self.made:
            raise IndexError(f"distillation batch {i} was read out of order (the newest is {self.next - 1})")
        return self.made[i]


def one_batch(items: list[dict[str, Any]]) -> dict[str, Any]:
    """The data loader's collate function: its 'batch' of one item is a ready batch."""
    return items[0]


def distill_trainer(student: Any, teacher: Any, task: "Task", temperature: float, alpha: float,
                    transfer: "TransferLoss | None", soft_only_batches: bool, **trainer_kwargs: Any) -> Any:
    """A Trainer whose loss is the task's distillation loss against `teacher` (frozen, eval mode,
    under no_grad), plus the transfer terms. soft_only_batches: a batch with no gold label at all
    (unlabelled or augmented texts only) gets the soft loss alone."""
    import torch
    from torch.utils.data import SequentialSampler
    from transformers import Trainer

    extra = transfer.kwargs if transfer is not None else {}

    class DistillTrainer(Trainer):
        last_loss: "torch.Tensor | None" = None

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            # The batches are shuffled and length-grouped already: read them in order.
            return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            inputs = dict(inputs)
            labels = inputs.pop("labels")
            with torch.no_grad():
                t_out = teacher(**inputs, **extra)
            s_out = model(**inputs, **extra)
            gold = None if soft_only_batches and not bool(task.has_gold(labels).any()) else labels
            loss = task.distill_loss(s_out.logits.float(), t_out.logits.float(), gold, temperature, alpha)
            if transfer is not None:
                loss = loss + transfer(s_out, t_out, inputs["attention_mask"])
            self.last_loss = loss.detach()
            return (loss, s_out) if return_outputs else loss

    trainer = DistillTrainer(model=student, data_collator=one_batch, **trainer_kwargs)
    # compute_loss returns a per-batch mean: the Trainer divides it by the accumulation steps.
    trainer.model_accepts_loss_kwargs = False
    return trainer


def early_stop_callback(stopper: "EarlyStopping", student: Any) -> Any:
    """Checks the student on validation texts every `eval_every` steps; stops the run after
    `patience` checks without gain (the best weights are kept by `stopper`)."""
    from transformers import TrainerCallback

    class EarlyStop(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            done = state.global_step
            if stopper.due(done, state.max_steps) and stopper.check(done, student):
                log.info("early stopping at step %d: no gain in %d checks; keeping step %d", done,
                         stopper.patience, stopper.best_step)
                control.should_training_stop = True

    return EarlyStop()


def timed_checkpoints(every_s: Callable[[], float], on_saved: Callable[[int], None]) -> Any:
    """Asks the Trainer for a checkpoint once `every_s()` seconds have passed since the last one
    (never after the last step); `on_saved(step)` runs on the main process once it is written."""
    import time

    from transformers import TrainerCallback

    class TimedCheckpoints(TrainerCallback):
        saved = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step < state.max_steps and time.monotonic() - self.saved >= every_s():
                control.should_save = True

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.saved = time.monotonic()
            if state.is_world_process_zero:
                on_saved(state.global_step)

    return TimedCheckpoints()
