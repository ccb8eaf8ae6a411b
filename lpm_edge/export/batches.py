"""Batches of training texts for pruning, distillation and calibration, padded per batch.

Each batch is padded to its own longest text (not to max length): real texts here average 26
tokens, so padding to 128 would spend most of the compute on padding.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Any, Iterator, Sequence

if TYPE_CHECKING:
    import torch

from ..progress import Progress as _Progress

log = logging.getLogger("lpm_edge.export")
SEED = 0


def pick_device() -> str:
    """'cuda' when PyTorch sees a GPU, else 'cpu'."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def shuffled(n: int, seed: int = SEED) -> list[int]:
    """A fixed permutation of range(n): the same texts on every run."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def encode(
    tokenizer: Any, texts: Sequence[str], max_length: int, device: str = "cpu"
) -> dict[str, "torch.Tensor"]:
    """Tokenize a batch padded to its longest text: each tensor (B, T) on `device`."""
    from ..pairs import hf_tokenize

    enc = hf_tokenize(tokenizer, texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    return {k: v.to(device) for k, v in enc.items()}


def labelled_batches(
    tokenizer: Any, texts: Sequence[str], labels: Sequence[int], batch_size: int, max_length: int,
    device: str = "cpu", *, limit: int | None = None, seed: int = SEED, dtype: str = "long",
) -> Iterator[tuple[dict[str, "torch.Tensor"], "torch.Tensor"]]:
    """(inputs, labels) batches over shuffled texts, cycling epochs until `limit` batches (None: one epoch).
    dtype: the labels' torch dtype (the task's gold_dtype: "long" ids, "float32" regression targets)."""
    import torch

    if not texts:
        return
    epoch = 0
    produced = 0
    from ..pairs import chars

    lengths = [chars(t) for t in texts]  # characters: a cheap, good proxy for token counts
    while True:
        for rows in length_grouped(shuffled(len(texts), seed + epoch), lengths, batch_size, seed + epoch):
            if limit is not None and produced >= limit:
                return
            y = torch.tensor([labels[i] for i in rows], dtype=getattr(torch, dtype), device=device)  # (B,) or (B, heads)
            yield encode(tokenizer, [texts[i] for i in rows], max_length, device), y
            produced += 1
        if limit is None:
            return
        epoch += 1


def length_grouped(order: list[int], lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of similar length, in random order: sort within shuffled chunks of 50 batches.

    Like transformers' LengthGroupedSampler: batches stay random, but each carries little padding
    (real texts here vary from a few tokens to over a hundred).
    """
    chunk = 50 * batch_size
    batches = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    random.Random(seed).shuffle(batches)
    return batches


class Progress(_Progress):
    """Export progress (distillation, calibration): a bar on a terminal, else a log line on
    lpm_edge.export every few seconds with the rate and the time left."""

    def __init__(self, total: int, desc: str, *, unit: str = "steps", done: int = 0) -> None:
        super().__init__(total, desc, unit=unit, done=done, logger="lpm_edge.export")
