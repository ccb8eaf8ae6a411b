"""Latency: every candidate on the same inputs, interleaved round-robin, in one process.

Round r runs candidate 0, 1, ..., k-1 on input r before round r+1 starts, so a burst of noise on
a shared machine (another process, a thermal dip) hits every candidate alike instead of the one
that happened to be running. Inputs are encoded before the clock starts for the model-only path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .stats import summarize_ms

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from .candidates import Candidate
    from .progress import Progress

log = logging.getLogger("lpm_edge.bench")

MODES = ("end_to_end", "model_only")


def interleaved(
    calls: Sequence[Callable[[int], object]], rounds: int, warmup: int, tick: Callable[[int], None] | None = None
) -> list[list[float]]:
    """Seconds per call of each `calls[k](r)`, r = 0..rounds-1, candidates round-robin within a round.

    `warmup` untimed rounds come first (same inputs as the first timed rounds).
    """
    for r in range(warmup):
        for call in calls:
            call(r)
        if tick:
            tick(len(calls))
    timings: list[list[float]] = [[] for _ in calls]
    clock = time.perf_counter
    for r in range(rounds):
        for k, call in enumerate(calls):
            t0 = clock()
            call(r)
            timings[k].append(clock() - t0)
        if tick:
            tick(len(calls))
    return timings


def text_batches(pool: Sequence[str], batch: int, rounds: int) -> list[list[str]]:
    """`rounds` batches of `batch` texts walking through `pool` (wrapping around)."""
    n = len(pool)
    return [[pool[(r * batch + i) % n] for i in range(batch)] for r in range(rounds)]


@dataclass(frozen=True)
class FixedLength:
    """A batch-1 input of a fixed number of tokens: the text (end to end) and its ids (model only)."""

    tokens: int
    text: str
    text_tokens: int  # what the text tokenizes to, special tokens included, before any truncation
    ids: dict[str, np.ndarray]  # (1, tokens) int64 each


def fixed_length_inputs(tokenizer: "Tokenizer", texts: Sequence[str], lengths: Sequence[int]) -> list[FixedLength]:
    """Real words cut to exactly L tokens ([CLS] and [SEP] included) for each L in `lengths`.

    The text is the dataset's texts joined, cut at the end of the (L-2)-th word piece; its ids are
    those word pieces between the tokenizer's own special tokens, so the model-only input has
    exactly L tokens whatever the end-to-end path's truncation does with the text.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer.to_str())  # a copy: padding and truncation off, the caller's untouched
    tok.no_padding()
    tok.no_truncation()
    longest = max(lengths)
    joined, i = "", 0
    while i < len(texts) and len(tok.encode(joined, add_special_tokens=False).ids) < longest:
        joined = " ".join(texts[i : i + 64]) if not joined else joined + " " + " ".join(texts[i : i + 64])
        i += 64
    body = tok.encode(joined, add_special_tokens=False)
    specials = tok.encode("", add_special_tokens=True).ids  # e.g. [CLS, SEP] for BERT
    head, tail = specials[:1], specials[1:]
    out = []
    for length in lengths:
        n = length - len(specials)
        if n < 1 or n > len(body.ids):
            raise ValueError(f"cannot build a {length}-token input from {len(body.ids)} tokens of text")
        text = joined[: body.offsets[n - 1][1]]
        ids = np.asarray([head + body.ids[:n] + tail], dtype=np.int64)  # (1, L)
        out.append(FixedLength(
            tokens=length, text=text, text_tokens=len(tok.encode(text).ids),
            ids={"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)},
        ))
    return out


def _model_only_call(c: "Candidate", feeds: list[list[Any]]) -> Callable[[int], object]:
    def call(r: int) -> object:
        out = None
        for feed in feeds[r % len(feeds)]:
            out = c.run(feed)
        return out
    return call


def _e2e_call(c: "Candidate", batches: Sequence[Sequence[str]]) -> Callable[[int], object]:
    return lambda r: c.predict(batches[r % len(batches)])


def measure_cell(
    candidates: Sequence["Candidate"], batches: Sequence[Sequence[str]] | Sequence[Sequence[Sequence[str]]],
    rounds: int, warmup: int, model_feeds: Sequence[list[list[Any]]] | None = None,
    progress: "Progress | None" = None, per_candidate: bool = False,
) -> dict[str, list[dict[str, float]]]:
    """Both modes of one cell (one batch size or one length): {mode: [summary per candidate]}.

    `batches[r]` is the texts of round r (with `per_candidate`, `batches[k][r]` is candidate k's).
    `model_feeds[k][r]` are candidate k's native inputs for round r; by default each candidate's
    own `encode` of its batch, done here before any timing.
    """
    own = [batches[k] if per_candidate else batches for k in range(len(candidates))]  # (k, r) -> texts
    if model_feeds is None:
        model_feeds = [[c.encode(b) for b in bs] for c, bs in zip(candidates, own)]  # type: ignore[arg-type]
    tick = progress.advance if progress else None
    out = {}
    for mode in MODES:
        calls = [_e2e_call(c, bs) if mode == "end_to_end" else _model_only_call(c, list(feeds))  # type: ignore[arg-type]
                 for c, bs, feeds in zip(candidates, own, model_feeds)]
        out[mode] = [summarize_ms(t) for t in interleaved(calls, rounds, warmup, tick)]
    return out
