"""The full PyTorch model served the way its users serve it: the reference for parity and bench.

transformers' fast tokenizer, the model with its default attention implementation (sdpa), eval
mode, torch.inference_mode, torch threads = cores. Heavy: imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np


class TorchClassifier:
    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | None = None,
        *,
        model: object | None = None,
        tokenizer: object | None = None,
        attn_implementation: str | None = None,
        threads: int | None = None,
        max_length: int = 128,
        batch_size: int = 32,
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.task = None  # the task training.json records, when it records one (its head, its outputs)
        if model is None:
            from . import tasks
            from .train import read_training_info

            info = read_training_info(Path(checkpoint))  # type: ignore[arg-type]
            if info.get("task"):
                self.task = tasks.from_training(info, info.get("labels", []))
            kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
            if self.task is not None and self.task.model_class != "AutoModelForSequenceClassification":
                import transformers

                AutoModelForSequenceClassification = getattr(transformers, self.task.model_class)  # noqa: N806
            model = AutoModelForSequenceClassification.from_pretrained(
                Path(checkpoint), local_files_only=True, use_safetensors=True, **kwargs  # type: ignore[arg-type]
            )
        if tokenizer is None:
            tokenizer = AutoTokenizer.from_pretrained(Path(checkpoint), local_files_only=True)  # type: ignore[arg-type]
        self.model = model.eval()  # type: ignore[attr-defined]
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]

    def encode(self, texts: Sequence[str]) -> dict:
        from .pairs import hf_tokenize

        return hf_tokenize(  # pairs: the tokenizer's pair encoding, truncating the longer text first
            self.tokenizer, texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """Logits (n, labels) in input order; batches of similar length, as the runtime does."""
        import torch

        own = self.task.outputs_of(self, texts) if self.task is not None else None
        if own is not None:  # a task that reads per-token outputs itself
            return own
        from .pairs import chars

        lengths = [chars(t) for t in texts]
        order = np.argsort(lengths, kind="stable")
        out: np.ndarray | None = None  # shaped by the first batch: (n, labels), or (n, dim) for embeddings
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = self.encode([texts[i] for i in rows])
                y = self.model(**batch).logits.float().numpy()
                if out is None:
                    out = np.empty((len(texts), *y.shape[1:]), dtype=np.float32)
                out[rows] = y
        return out if out is not None else np.empty((0, len(self.labels)), dtype=np.float32)


def task_reference(checkpoint: str | os.PathLike[str], task: object, *, threads: int | None = None,
                   max_length: int = 128, batch_size: int = 32) -> TorchClassifier:
    """The full model with `task`'s head (its auto class, then `task.prepare_model`: an embedding
    model's pooling), whose `logits` give the task's outputs (per-word logits over windows, vectors)."""
    import transformers
    from transformers import AutoTokenizer

    if threads:
        import torch

        torch.set_num_threads(threads)
    model = getattr(transformers, task.model_class).from_pretrained(  # type: ignore[attr-defined]
        Path(checkpoint), local_files_only=True, use_safetensors=True)
    ref = TorchClassifier(model=task.prepare_model(model.eval()),  # type: ignore[attr-defined]
                          tokenizer=AutoTokenizer.from_pretrained(Path(checkpoint), local_files_only=True),
                          max_length=max_length, batch_size=batch_size)
    ref.task = task  # type: ignore[assignment]
    return ref
