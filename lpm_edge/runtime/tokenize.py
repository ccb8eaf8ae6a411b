"""Tokenization with the `tokenizers` library: truncation to max length, padding per batch."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from ..errors import BundleError


def load_tokenizer(data: bytes, max_length: int, where: str) -> Tokenizer:
    try:
        tokenizer = Tokenizer.from_str(data.decode("utf-8"))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise BundleError(f"{where}: not a valid tokenizer.json ({str(exc)[:200]})") from None
    # Shipped tokenizer.json files often pad everything to a fixed length; we pad per batch.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def check_texts(texts: Sequence[object]) -> None:
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")


def pad_batch(encodings: Sequence, input_names: Sequence[str], pad_id: int) -> dict[str, np.ndarray]:
    """Stack a batch of encodings padded to its longest member: each array (B, T) int64."""
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(encodings), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(encodings), width), dtype=np.int64)
    types = np.zeros((len(encodings), width), dtype=np.int64)
    for row, e in enumerate(encodings):
        n = len(e.ids)
        ids[row, :n] = e.ids
        mask[row, :n] = 1
        types[row, :n] = e.type_ids
    available = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {name: available[name] for name in input_names}
