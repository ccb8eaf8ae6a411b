"""Tokenization with the `tokenizers` library: truncation to max length, padding per batch."""

from __future__ import annotations

import json
from typing import Callable, Sequence

import numpy as np
from tokenizers import Tokenizer

from ..errors import BundleError, InferenceError, brief

# Ordinary letters plus a character few vocabularies hold, so that the unknown-token path runs too.
PROBE = "probe \u2603"


def _is_panic(exc: BaseException) -> bool:
    """A Rust panic inside tokenizers reaches Python as pyo3's PanicException, a BaseException."""
    return type(exc).__name__ == "PanicException"


def load_tokenizer(data: bytes, max_length: int, where: str, pairs: bool = False) -> Tokenizer:
    try:
        tokenizer = Tokenizer.from_str(data.decode("utf-8"))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise BundleError(f"{where}: not a valid tokenizer.json ({str(exc)[:200]})") from None
    # Shipped tokenizer.json files often pad everything to a fixed length; we pad per batch.
    tokenizer.no_padding()
    # longest_first: a pair longer than max_length loses tokens from its longer text first, so both keep some
    tokenizer.enable_truncation(max_length, strategy="longest_first")
    # A text longer than max_length must come out truncated (a post-processor can defeat
    # truncation when max_length is below its special tokens); check once, at load.
    try:
        long = " ".join([PROBE] * min(max_length, 4096))
        n = len(tokenizer.encode(long, long).ids if pairs else tokenizer.encode(long).ids)
    except BaseException as exc:  # a bare Exception, or a panic (seen: a template naming a missing token)
        if not (isinstance(exc, Exception) or _is_panic(exc)):
            raise
        raise BundleError(f"{where}: the tokenizer fails on a probe text ({str(exc)[:200]})") from None
    if n > max_length:
        raise BundleError(
            f"{where}: texts are not truncated to the manifest's max_length {max_length} (got {n} tokens); "
            "re-export the bundle"
        )
    return tokenizer


def largest_id(tokenizer: Tokenizer) -> int:
    """The largest token id `tokenizer` can emit: its vocabulary, added tokens, and the ids a
    post-processor inserts (written in tokenizer.json as numbers, unchecked against the vocabulary)."""
    top = max(tokenizer.get_vocab(with_added_tokens=True).values(), default=0)
    processor = None
    if tokenizer.post_processor is not None:
        # The post-processor's own JSON (small), not the whole tokenizer.json again (~20 ms for BERT's).
        processor = json.loads(tokenizer.post_processor.__getstate__())
    stack = [processor]
    while stack:  # TemplateProcessing: special_tokens.*.ids; Bert/RobertaProcessing: cls/sep = [token, id]
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "ids" and isinstance(value, list):
                    top = max([top, *(v for v in value if isinstance(v, int))])
                elif key in ("cls", "sep") and isinstance(value, list) and len(value) == 2 and isinstance(value[1], int):
                    top = max(top, value[1])
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
    return top


def check_texts(texts: Sequence[object], pairs: bool = False) -> list:
    """`texts` checked: str each, or for a bundle on pairs a (text, text_pair) tuple (or 2-list) of str
    each; returns them as a list (pairs as tuples)."""
    if not pairs:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str"
                                + ("; this bundle takes one text per example, not pairs" if isinstance(t, tuple) else ""))
        return list(texts)
    out = []
    for i, t in enumerate(texts):
        if isinstance(t, str):
            raise TypeError(f"texts[{i}] is a str; this bundle scores sentence pairs: pass (text, text_pair) "
                            "tuples, e.g. predict([(premise, hypothesis)])")
        if not isinstance(t, (tuple, list)) or len(t) != 2:
            got = f"a {type(t).__name__} of {len(t)} items" if isinstance(t, (tuple, list)) else type(t).__name__
            raise TypeError(f"texts[{i}] is {got}; expected a (text, text_pair) tuple of two str")
        if not all(isinstance(x, str) for x in t):
            raise TypeError(f"texts[{i}] holds {type(t[0]).__name__} and {type(t[1]).__name__}; expected a "
                            "(text, text_pair) tuple of two str")
        out.append((t[0], t[1]))
    return out


def encode_batch(tokenizer: Tokenizer, texts: list) -> list:
    """tokenizer.encode_batch, with a clear error for a str that is not valid Unicode. A (text,
    text_pair) tuple is encoded as a pair: the tokenizer's pair template, segment ids 0 then 1."""
    try:
        return tokenizer.encode_batch(texts)
    except BaseException as exc:
        if _is_panic(exc):
            raise InferenceError(f"the bundle's tokenizer crashed ({brief(exc, 200)}); re-export the bundle") from None
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt, SystemExit
        if not isinstance(exc, TypeError):
            raise InferenceError(
                f"the bundle's tokenizer failed on a batch of {len(texts)} texts ({brief(exc, 200)})"
            ) from None
        # tokenizers refuses a str holding lone surrogates (e.g. bytes decoded with
        # surrogateescape) with a message that names neither the text nor the reason.
        for i, t in enumerate(texts):
            try:
                for part in ([t] if isinstance(t, str) else t):
                    part.encode("utf-8")
            except UnicodeEncodeError as bad:
                raise ValueError(
                    f"texts[{i}] is not valid Unicode ({bad.reason} at index {bad.start}); "
                    "decode input bytes as UTF-8 without errors='surrogateescape'"
                ) from None
        raise


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


def length_batches(
    lengths: Sequence[int], batch_size: int, max_tokens: int | None = None, graph_for: Callable[[int], str] | None = None,
) -> list[list[int]]:
    """Indices grouped into batches by ascending length: at most `batch_size` texts and, when set,
    `max_tokens` tokens once padded (a longer single text still gets a batch of its own); a batch
    never spans two `graph_for` length ranges. The runtime's batching, shared with the export's
    accuracy checks so that dynamic int8 sees the same batches in both."""
    groups: list[list[int]] = []
    for i in np.argsort(lengths, kind="stable"):  # ascending: the text being added is the batch's widest
        group = groups[-1] if groups else None
        if group is None or len(group) >= batch_size or (
            max_tokens is not None and (len(group) + 1) * lengths[i] > max_tokens
        ) or (graph_for is not None and graph_for(lengths[i]) != graph_for(lengths[group[-1]])):
            groups.append([int(i)])
        else:
            group.append(int(i))
    return groups
