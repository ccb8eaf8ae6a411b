"""`search` for bundles judged on another metric than accuracy: sentence embeddings (mean cosine to
the full model's vectors, a model directory without training.json) and token classification
(entity F1 over windows), on tiny models with a tiny space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lpm_edge.cli import main
from lpm_edge.search import Candidate, SearchBudgetError, search

from ..conftest import make_tiny_model, synthetic_rows
from ..tasks.test_embedding import st_layout
from ..tasks.test_token_classification import ner_sentences, write_conll

SPACE = [Candidate(), Candidate(ffn=0.5, distill_steps=4)]


@pytest.fixture(scope="module")
def embed_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("emb")
    corpus = folder / "texts.txt"
    corpus.write_text("\n".join(t for t, _ in synthetic_rows(200, seed=4)) + "\n")
    return st_layout(make_tiny_model(folder / "model")), corpus


@pytest.mark.slow
def test_search_embedding_model_on_cosine(embed_model, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    model, corpus = embed_model
    out = tmp_path / "s"
    code = main(["search", str(model), "--task", "embedding", "--data", str(corpus), "--out", str(out),
                 "--max-accuracy-drop", "50", "--layers", "2", "--heads", "0", "--ffn", "0", "--json"])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "search.json").read_text())
    assert doc["metric"] == "cosine" and doc["reference_accuracy"] == pytest.approx(1.0, abs=1e-5)
    assert doc["chosen"] is not None and 0.9 < doc["chosen"]["accuracy"] <= 1.0 + 1e-6
    confirmed = doc["confirmed_on_test"]
    assert confirmed["metric"] == "cosine" and confirmed["reference_accuracy"] == pytest.approx(1.0, abs=1e-5)
    assert 0.9 < confirmed["bundle_accuracy"] <= 1.0 + 1e-6
    assert json.loads((out / "bundle" / "manifest.json").read_text())["task"]["kind"] == "embedding"
    md = (out / "search.md").read_text()
    assert "validation cosine" in md and "test cosine" in md


@pytest.mark.slow
def test_search_embedding_budget_is_the_cosine(embed_model, tmp_path: Path) -> None:
    """A pruned candidate with 4 distillation steps loses cosine; a budget of 0.01 points refuses it."""
    model, corpus = embed_model
    with pytest.raises(SearchBudgetError, match="validation cosine"):
        search(model, tmp_path / "s", data=str(corpus), task="embedding", max_accuracy_drop=0.001,
               space=[Candidate(ffn=0.5, distill_steps=4)], latency_texts=5)
    doc = json.loads((tmp_path / "s" / "search.json").read_text())
    assert doc["chosen"] is None and doc["points"][0]["accuracy"] < 1.0 - 1e-5


@pytest.fixture(scope="module")
def ner_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    from lpm_edge.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("ner")
    data = write_conll(folder / "train.conll", ner_sentences(300))
    return train(TrainConfig(out=folder / "ckpt", model=tiny_model, data=str(data), task="token-classification",
                             epochs=4, batch_size=16, learning_rate=3e-3, max_length=16, patience=None, threads=1,
                             metric="entity_f1"))


@pytest.mark.slow
def test_search_token_model_on_entity_f1(ner_checkpoint: Path, tmp_path: Path) -> None:
    result = search(ner_checkpoint, tmp_path / "s", max_accuracy_drop=100.0, space=SPACE, latency_texts=5)
    assert result.metric == "entity_f1" and result.reference_accuracy > 0.5
    assert result.chosen is not None and len(result.points) == 2
    assert result.confirmed["metric"] == "entity_f1" and result.confirmed["reference_accuracy"] > 0.5
    assert "validation entity f1" in (tmp_path / "s" / "search.md").read_text()


@pytest.mark.slow
def test_rescue_variants_export_for_embeddings(embed_model, tmp_path: Path) -> None:
    """auto_exclude and the fp32 fallback on a graph whose output is `embeddings`, not `logits`."""
    model, corpus = embed_model
    space = [Candidate(exclude_budget=100.0), Candidate(fp32_tokens=(0, 8))]
    result = search(model, tmp_path / "s", data=str(corpus), task="embedding", max_accuracy_drop=100.0,
                    space=space, latency_texts=5)
    assert len(result.points) == 2 and all(p.accuracy > 0.9 for p in result.points)
    excl = json.loads((tmp_path / "s" / "bundles" / space[0].key() / "manifest.json").read_text())
    assert excl["build"]["stages"]["int8_auto_exclude"]["sensitivity"]  # every group measured on `embeddings`
