"""Odd but valid texts predict; a str that is not valid Unicode is refused with its position."""

from __future__ import annotations

import pytest

import lpm_edge

ODD_TEXTS = [
    "", " ", "\n\t\r", "a\x00b", "\u200b" * 50, "\u2603 \U0001F600 \u6f22\u5b57", "e\u0301" * 300,
    "\u202eright to left", "good " * 20_000, "x" * 100_000,
]


@pytest.fixture(scope="module")
def clf(tiny_bundle):
    return lpm_edge.load(tiny_bundle, providers="cpu")


def test_odd_but_valid_texts_predict(clf):
    preds = clf.predict(ODD_TEXTS)
    assert len(preds) == len(ODD_TEXTS)
    assert all(p.label in clf.labels for p in preds)


def test_lone_surrogate_names_the_text(clf):
    with pytest.raises(ValueError, match=r"texts\[2\] is not valid Unicode .*surrogate"):
        clf.predict(["fine", "good", "bytes\udcff decoded with surrogateescape"])
