"""`bench` on bundles whose outputs are not one score vector per text: sentence embeddings (fidelity
to the full model's vectors) and token classification (entity F1 over windows), end to end on tiny
models, plus the Task hooks bench times with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lpm_edge.bench import BenchConfig

from ..conftest import make_tiny_model, synthetic_rows
from ..tasks.test_embedding import st_layout
from ..tasks.test_token_classification import ner_sentences, write_conll

TINY = dict(batch_sizes=(1, 4), seq_lengths=(16,), repeats=4, min_repeats=2, seq_repeats=2, warmup=1, pool=16,
            throughput_rounds=1, process_runs=1, process_workload=8, bootstrap=200, plots=False)


@pytest.fixture(scope="module")
def embedding(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(model directory without training.json, corpus, int8 bundle)."""
    from lpm_edge.export import export

    folder = tmp_path_factory.mktemp("emb")
    model = st_layout(make_tiny_model(folder / "model"))
    corpus = folder / "texts.txt"
    corpus.write_text("\n".join(t for t, _ in synthetic_rows(240, seed=5)) + "\n")
    bundle = export(model, folder / "int8", "cpu-int8", data=str(corpus), task="embedding", max_accuracy_drop=50.0,
                    student_cache=False)
    return model, corpus, bundle


@pytest.mark.slow
def test_bench_embedding_bundle_against_the_full_models_vectors(embedding, tmp_path: Path) -> None:
    import lpm_edge

    model, corpus, bundle = embedding
    report = lpm_edge.bench([bundle], reference=model, out=tmp_path / "r", data=str(corpus),
                            config=BenchConfig(**TINY, subprocess=True))
    ref, got = report.candidates
    assert ref["metric"] == got["metric"] == "cosine"
    assert ref["cosine"] == pytest.approx(1.0, abs=1e-5) and ref["recall_at_10"] == pytest.approx(1.0)
    assert 0.95 < got["cosine"] <= 1.0 + 1e-6 and 0 < got["recall_at_10"] <= 1.0
    lo, hi = got["loss_ci95"]
    assert lo <= got["loss_points"] <= hi and got["loss_points"] == pytest.approx((1 - got["cosine"]) * 100, abs=1e-3)
    # the manifest's own check measured the same metric on another split; both near 1
    assert json.loads((bundle / "manifest.json").read_text())["metrics"]["metric"] == "cosine"
    for c in (ref, got):  # latency tables, throughput and a fresh process for both
        assert c["latency"]["batch"]["1"]["end_to_end"]["median_ms"] > 0
        assert c["throughput"]["texts_per_s"] > 0 and c["process"]["cold_start_s"] > 0
    assert got["vs_reference"]["end_to_end_b1_speedup"] > 0
    text = (tmp_path / "r" / "report.md").read_text()
    assert "Cosine" in text and "recall_at_10" in text
    assert json.loads((tmp_path / "r" / "report.json").read_text())["candidates"][1]["metric"] == "cosine"


@pytest.fixture(scope="module")
def ner(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> tuple[Path, Path]:
    """(checkpoint trained on BIO sentences with max_length 16, int8 bundle)."""
    from lpm_edge.export import export
    from lpm_edge.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("ner")
    data = write_conll(folder / "train.conll", ner_sentences(300))
    config = TrainConfig(out=folder / "ckpt", model=tiny_model, data=str(data), task="token-classification",
                         epochs=4, batch_size=16, learning_rate=3e-3, max_length=16, patience=None, threads=1,
                         metric="entity_f1")
    ckpt = train(config)
    return ckpt, export(ckpt, folder / "int8", "cpu-int8", student_cache=False)


@pytest.mark.slow
def test_bench_token_bundle_scores_entities_over_windows(ner, tmp_path: Path) -> None:
    import lpm_edge
    from lpm_edge.evaluate import evaluate
    from lpm_edge.export.pipeline import checkpoint_dataset
    from lpm_edge.reference import TorchClassifier
    from lpm_edge.train import read_training_info

    ckpt, bundle = ner
    long_test = tmp_path / "long.conll"  # sentences longer than the 16-token window: scored over windows
    write_conll(long_test, [(sum((w for w, _ in part), []), sum((t for _, t in part), []))
                            for part in zip(*[iter(ner_sentences(120, seed=7))] * 3)])
    report = lpm_edge.bench([bundle], reference=ckpt, out=tmp_path / "r", test=long_test,
                            config=BenchConfig(**TINY, subprocess=False))
    ref, got = report.candidates
    assert ref["metric"] == "entity_f1" and {"entity_precision", "entity_recall"} <= set(got)
    assert ref["entity_f1"] > 0.5 and got["loss_ci95"][0] <= got["loss_points"] <= got["loss_ci95"][1]
    # the figures are the one evaluator's on the windowed outputs, as export's check computes them
    data = checkpoint_dataset(None, read_training_info(ckpt), test=long_test)
    model = lpm_edge.load(bundle, spin=False)
    full, mine = evaluate(data.test, [("full", TorchClassifier(ckpt, max_length=model.max_length).logits),
                                      ("int8", model.logits)], model.task, n_boot=200)
    assert ref["entity_f1"] == pytest.approx(full.value) and got["entity_f1"] == pytest.approx(mine.value)
    assert got["agreement"] == pytest.approx(mine.agreement)
    assert got["latency"]["batch"]["4"]["end_to_end"]["median_ms"] > 0
    assert "Entity-F1" in (tmp_path / "r" / "report.md").read_text()


def test_served_is_what_users_call() -> None:
    from lpm_edge.tasks import task_class
    from lpm_edge.tasks.token_classification import TokenClassification

    class Runner:
        def logits(self, texts):
            return np.tile([[2.0, 0.0]], (len(texts), 1))

    single = task_class("text-classification")(("neg", "pos"))
    assert single.served_method() == "predict_proba"
    assert np.allclose(single.served(Runner(), ["a", "b"]).sum(axis=1), 1.0)
    emb = task_class("embedding")((), {"dim": 2})
    assert emb.served_method() == "embed"
    assert np.allclose(np.linalg.norm(emb.served(Runner(), ["a"]), axis=1), 1.0)
    assert TokenClassification(("O", "B-PER", "I-PER")).served_method() == "entities"
    assert task_class("regression")(("y",)).served_method() == "predict"


@pytest.mark.slow
def test_cli_bench_embedding_bundle(embedding, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lpm_edge.cli import main

    model, corpus, bundle = embedding
    code = main(["bench", str(bundle), "--reference", str(model), "--data", str(corpus), "--out", str(tmp_path / "r"),
                 "--quick", "--batch-sizes", "1", "--seq-lengths", "16", "--repeats", "2", "--no-plots",
                 "--no-subprocess", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert [c["metric"] for c in doc["candidates"]] == ["cosine", "cosine"]
    assert doc["candidates"][1]["loss_ci95"] is not None
