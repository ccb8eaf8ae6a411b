"""Per-token outputs of a loaded bundle or a PyTorch reference, over overlapping windows: a text
longer than max_length is cut into windows of max_length tokens overlapping by a quarter, and each
token keeps the logits of the window where it sits farthest from a cut (numpy and tokenizers only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

STRIDE_SHARE = 4  # windows overlap by max_length // STRIDE_SHARE tokens


@dataclass
class Tokens:
    """A text's tokens (specials left out), in order: character offsets, word ids, logits."""

    offsets: np.ndarray  # (m, 2)
    words: np.ndarray  # (m,), -1 where the tokenizer gives none
    logits: np.ndarray  # (m, labels)


def window_stride(max_length: int, specials: int) -> int:
    """Tokens two consecutive windows of max_length share, for a tokenizer adding `specials` tokens
    per window (training and the runtime cut alike)."""
    room = max_length - specials
    if room < 2:
        raise ConfigError(f"max_length {max_length} leaves no room for tokens besides {specials} special ones")
    return min(max_length // STRIDE_SHARE, room // 2)


def window_tokenizer(tokenizer: Any, max_length: int) -> Any:
    """A copy of a `tokenizers` Tokenizer that cuts long texts into windows of max_length tokens
    overlapping by max_length // STRIDE_SHARE (fewer when the special tokens leave little room)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()
    tok.enable_truncation(max_length, stride=window_stride(max_length, len(tok.encode("").ids)))
    return tok


def _parts_of(runner: Any) -> tuple[Any, Any, int, int | None, Any]:
    """(window tokenizer, run(encodings) -> (B, T, labels), batch size, tokens per batch, the bundle's
    graph by length or None) of a loaded bundle or a PyTorch reference model."""
    cached = getattr(runner, "_lpm_windows", None)
    if cached is not None:
        return cached
    if hasattr(runner, "_tokenizer") and hasattr(runner, "run"):  # lpm_edge.runtime.Classifier
        tok = window_tokenizer(runner._tokenizer, runner.max_length)
        inputs, pad_id = runner._inputs, runner.manifest.pad_id

        def run(encodings: Sequence[Any]) -> np.ndarray:
            from ..runtime.tokenize import pad_batch

            return runner.run(pad_batch(encodings, inputs, pad_id))

        graph_for = runner.manifest.graph_for if getattr(runner.manifest, "fallback_file", None) else None
        parts = (tok, run, runner.batch_size, runner.max_batch_tokens, graph_for)
    else:  # lpm_edge.reference.TorchClassifier: a transformers model and fast tokenizer
        import inspect

        import torch

        from ..runtime.tokenize import pad_batch

        tok = window_tokenizer(runner.tokenizer.backend_tokenizer, runner.max_length)
        accepted = set(inspect.signature(runner.model.forward).parameters)
        inputs = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                  if n in accepted and n in runner.tokenizer.model_input_names]
        pad_id = int(runner.tokenizer.pad_token_id or 0)

        def run(encodings: Sequence[Any]) -> np.ndarray:
            feed = pad_batch(encodings, inputs, pad_id)
            with torch.inference_mode():
                return runner.model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.float().numpy()

        parts = (tok, run, runner.batch_size, None, None)
    try:
        runner._lpm_windows = parts
    except AttributeError:
        pass
    return parts


def token_outputs(runner: Any, texts: Sequence[str]) -> list[Tokens]:
    """Each text's tokens with their logits; a text longer than the window is run as overlapping
    windows and each token takes its logits from the window where it has the most context."""
    from ..runtime.tokenize import encode_batch, length_batches

    tok, run, batch_size, max_tokens, graph_for = _parts_of(runner)
    encodings = encode_batch(tok, list(texts))
    windows = [(i, w, e) for i, first in enumerate(encodings) for w, e in enumerate([first, *first.overflowing])]
    logits: list[np.ndarray | None] = [None] * len(windows)
    for rows in length_batches([len(e.ids) for _, _, e in windows], batch_size, max_tokens, graph_for):
        out = run([windows[r][2] for r in rows])
        for k, r in enumerate(rows):
            logits[r] = out[k, : len(windows[r][2].ids)]
    stride = tok.truncation["stride"] if tok.truncation else 0
    found: list[Tokens] = []
    start = 0
    for i in range(len(texts)):
        end = start
        while end < len(windows) and windows[end][0] == i:
            end += 1
        found.append(_merge(windows[start:end], logits[start:end], stride))
        start = end
    return found


def _merge(windows: Sequence[tuple[int, int, Any]], logits: Sequence[Any], stride: int) -> Tokens:
    """One text's windows into one token sequence. Window w's content starts `stride` tokens before
    the previous window's content ends; a token seen in two windows keeps the logits of the one where
    it is farther from a cut (a text's own start and end are no cut)."""
    best: dict[int, tuple[float, int, int]] = {}  # global position -> (distance to a cut, window, index)
    offsets: dict[int, tuple[int, int]] = {}
    words: dict[int, int] = {}
    position = 0
    last = len(windows) - 1
    for w, (_, _, enc) in enumerate(windows):
        content = [j for j, s in enumerate(enc.special_tokens_mask) if not s]
        n = len(content)
        for k, j in enumerate(content):
            left = k if w > 0 else np.inf
            right = n - 1 - k if w < last else np.inf
            distance = min(left, right)
            g = position + k
            if g not in best or distance > best[g][0]:
                best[g] = (distance, w, j)
                offsets[g] = enc.offsets[j]
                word = enc.word_ids[j]
                words[g] = -1 if word is None else int(word)
        position += n - stride
    order = sorted(best)
    labels = logits[0].shape[-1] if len(logits) else 0
    return Tokens(
        offsets=np.asarray([offsets[g] for g in order], dtype=np.int64).reshape(-1, 2),
        words=np.asarray([words[g] for g in order], dtype=np.int64),
        logits=np.asarray([logits[best[g][1]][best[g][2]] for g in order], dtype=np.float32).reshape(-1, labels),
    )
