"""Tiny fp32 bundles of every task, for the tests of the output paths (predict, file scoring, Ray, serve).

Each is trained for a few epochs on the tasks' own synthetic data (tests/tasks) and exported once per
test session; the models are barely trained: the tests compare every path with `Classifier.records`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

KINDS = ("text-classification", "multi-label", "regression", "multi-task", "embedding", "token-classification")
# Texts every path scores: filler words, sentiment words, a topic word and names the NER data uses.
TEXTS = ["the plot was superb", "a dull and boring film", "the movie and alice smith in paris",
         "the acting was awful", "it was a really lovely story", "bob jones and the plot in rome"]

_BUILT: dict[str, Path] = {}


def task_bundle(kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The tiny bundle of task `kind` (or "pairs": single-label on sentence pairs), built on first use
    in this session."""
    if kind not in _BUILT:
        if kind == "text-classification":
            _BUILT[kind] = request.getfixturevalue("tiny_fp32_bundle")
        else:
            _BUILT[kind] = _build(kind, tmp_path_factory.mktemp(f"task-{kind}"), request)
    return _BUILT[kind]


def _build(kind: str, d: Path, request: pytest.FixtureRequest) -> Path:
    from lpm_edge.export import export
    from lpm_edge.train import train

    from .conftest import make_tiny_model, synthetic_rows, tiny_train_config

    model = request.getfixturevalue("tiny_model")
    if kind == "embedding":
        from .tasks.test_embedding import st_layout

        corpus = d / "texts.txt"
        corpus.write_text("\n".join(t for t, _ in synthetic_rows(120, seed=3)) + "\n")
        embed_model = st_layout(make_tiny_model(d / "tiny-embed"))
        return export(embed_model, d / "bundle", "cpu-fp32", data=str(corpus), task="embedding",
                      max_accuracy_drop=50.0, student_cache=False)
    options: dict[str, Any]
    if kind == "pairs":  # single-label on (premise, hypothesis) pairs
        from .tasks.test_pairs import pair_rows, write_pairs

        options = {"data": str(write_pairs(d / "pairs.csv", pair_rows(200))), "text_column": "premise",
                   "text_pair_column": "hypothesis"}
        kind = "text-classification"
    elif kind == "multi-label":
        from .tasks.test_multi_label import multi_rows, write_jsonl

        options = {"data": str(write_jsonl(d / "ml.jsonl", multi_rows(200))), "label_column": "labels"}
    elif kind == "regression":
        from .tasks.test_regression import regression_rows
        from .tasks.test_regression import write_jsonl as write_scores

        options = {"data": str(write_scores(d / "scores.jsonl", regression_rows(200))), "label_column": "score"}
    elif kind == "multi-task":
        from .tasks.test_multitask import multi_rows as head_rows, write_rows

        options = {"data": str(write_rows(d / "multi.csv", head_rows(200))), "label_column": "sentiment,topic"}
    else:
        from .tasks.test_token_classification import ner_sentences, write_conll

        options = {"data": str(write_conll(d / "train.conll", ner_sentences(300))), "metric": "entity_f1"}
    checkpoint = train(tiny_train_config(d / "ckpt", model, task=kind, epochs=4, **options))
    return export(checkpoint, d / "bundle", "cpu-fp32", max_accuracy_drop=100.0, student_cache=False)
