"""Texts of one example: a str, or a (text, text_pair) tuple for tasks on sentence pairs.

A split's texts are all str or all pairs (the task's input fields say which). The helpers here let
the code that handles texts (tokenizing, sorting by length, hashing, de-duplicating) take either.
Standard library only: the runtime uses them too.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence, Union

from .errors import ConfigError

Text = Union[str, tuple[str, str]]
SINGLE = ("text",)
PAIR = ("text", "text_pair")
INPUTS = (SINGLE, PAIR)


def check_inputs(fields: Sequence[str], where: str) -> tuple[str, ...]:
    """The input fields of a task record, validated: ("text",) or ("text", "text_pair")."""
    fields = tuple(fields)
    if fields not in INPUTS:
        raise ConfigError(f"{where}: inputs {list(fields)} are not supported; use {list(SINGLE)} or {list(PAIR)}")
    return fields


def is_pairs(texts: Sequence[Any]) -> bool:
    """True when `texts` holds (text, text_pair) tuples (judged by its first item)."""
    return len(texts) > 0 and isinstance(texts[0], tuple)


def chars(text: Text) -> int:
    """Characters of an example: a cheap proxy of its token count, for sorting by length."""
    return len(text) if isinstance(text, str) else sum(len(t) for t in text)


def strings(texts: Sequence[Text]) -> Iterator[str]:
    """Every str in `texts` (both texts of each pair), e.g. to learn which tokens they use."""
    for t in texts:
        if isinstance(t, str):
            yield t
        else:
            yield from t


def key(text: Text) -> str:
    """One str standing for an example, for hashing (the two texts of a pair joined by U+001F)."""
    return text if isinstance(text, str) else "\x1f".join(text)


def normal(text: Text) -> Text:
    """Whitespace-normalised example (each text of a pair on its own)."""
    if isinstance(text, str):
        return " ".join(text.split())
    return tuple(" ".join(t.split()) for t in text)  # type: ignore[return-value]


def hf_tokenize(tokenizer: Any, texts: Sequence[Text], **kwargs: Any) -> Any:
    """A transformers tokenizer called on `texts`: pairs go in as (text, text_pair), encoded with the
    tokenizer's pair template (segment ids 0 and 1 for BERT); truncation=True truncates the longer of
    the two texts first ("longest_first"), so both keep tokens."""
    texts = list(texts)
    if is_pairs(texts):
        return tokenizer([a for a, _ in texts], [b for _, b in texts], **kwargs)
    return tokenizer(texts, **kwargs)
