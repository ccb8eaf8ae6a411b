"""Fakes for the bench tests: candidates that record calls, a tokenizer of whitespace words."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pytest

from lpm_edge.bench import Candidate


class CallLog:
    """Shared record of which candidate ran what, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []


def fake_candidate(name: str, log: CallLog, labels_of: Any = None, n_labels: int = 2) -> Candidate:
    """A candidate whose every call is recorded as (name, what)."""

    def predict(texts: Sequence[str]) -> np.ndarray:
        log.calls.append((name, "predict"))
        ids = labels_of(texts) if labels_of else np.zeros(len(texts), dtype=int)
        return np.eye(n_labels)[ids]

    def encode(texts: Sequence[str]) -> list[Any]:
        log.calls.append((name, "encode"))
        return [list(texts)]

    def run(feed: Any) -> object:
        log.calls.append((name, "run"))
        return feed

    return Candidate(name=name, kind="fake", path=f"/fake/{name}", predict=predict, encode=encode,
                     from_ids=lambda batch: batch, run=run, size={"model_bytes": 1000, "total_bytes": 2000})


@pytest.fixture
def call_log() -> CallLog:
    return CallLog()


@pytest.fixture(scope="session")
def word_tokenizer():
    """A `tokenizers` WordLevel tokenizer with [CLS] ... [SEP], like BERT's but one token per word."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    words = "the a movie film was good bad plot acting really very and it".split()
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return tok


@pytest.fixture
def make_fake():
    """The `fake_candidate` factory (test modules cannot import conftest under importlib mode)."""
    return fake_candidate
