"""Sentence embeddings: pooling read from the model directory, fidelity metrics, export of a model
directory with --task embedding (int8, pruned + distilled), the runtime's embed/index/search."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lpm_edge.errors import ConfigError
from lpm_edge.tasks import task_class
from lpm_edge.tasks.embedding import Embedding, l2_normalize, neighbour_recall, read_pooling, top_k

from ..conftest import make_tiny_model, synthetic_rows


def st_layout(model_dir: Path, pooling: dict | None = None, normalize: bool = True, extra: list | None = None) -> Path:
    """Write sentence-transformers' modules.json and pooling config into `model_dir`."""
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    modules += extra or []
    (model_dir / "modules.json").write_text(json.dumps(modules))
    (model_dir / "1_Pooling").mkdir(exist_ok=True)
    config = {"word_embedding_dimension": 32, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True,
              "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False, **(pooling or {})}
    (model_dir / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return model_dir


# -- pooling config -----------------------------------------------------------------------------
def test_pooling_read_from_sentence_transformers_files(tmp_path: Path) -> None:
    assert read_pooling(tmp_path)["pooling"] == ["mean"] and read_pooling(tmp_path)["normalize"] is True
    st_layout(tmp_path)
    assert read_pooling(tmp_path) == {"pooling": ["mean"], "normalize": True, "pooling_source": "modules.json"}
    st_layout(tmp_path, {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, normalize=False)
    assert read_pooling(tmp_path)["pooling"] == ["cls"] and read_pooling(tmp_path)["normalize"] is False
    st_layout(tmp_path, {"pooling_mode_max_tokens": True})
    assert read_pooling(tmp_path)["pooling"] == ["max", "mean"]  # sentence-transformers' concatenation order


def test_built_in_model_is_mean_pooled_and_normalised() -> None:
    from lpm_edge.assets import builtin_model_dir
    from lpm_edge.errors import MissingDependencyError

    try:
        model = builtin_model_dir()
    except MissingDependencyError:
        pytest.skip("the built-in model package is not installed")
    found = read_pooling(model)
    assert found["pooling"] == ["mean"] and found["normalize"] is True


@pytest.mark.parametrize("change, message", [
    ({"extra": [{"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}]}, "Dense"),
    ({"pooling": {"pooling_mode_weightedmean_tokens": True}}, "weightedmean"),
    ({"pooling": {"pooling_mode_mean_tokens": False}}, "no pooling mode"),
])
def test_unsupported_pooling_is_refused(tmp_path: Path, change: dict, message: str) -> None:
    st_layout(tmp_path, **change)
    with pytest.raises(ConfigError, match=message):
        read_pooling(tmp_path)


@pytest.mark.parametrize("labels, info, message", [
    (("a",), {}, "no labels"), ((), {"pooling": ["sum"]}, "pooling"), ((), {"dim": -3}, "dim"),
    ((), {"normalize": "yes"}, "normalize"),
])
def test_section_is_validated(labels: tuple, info: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        task_class("embedding").from_section(labels, info, "manifest.json: task")


def test_corpus_from_text_and_csv_files(tmp_path: Path) -> None:
    from lpm_edge.data import load_dataset
    from lpm_edge.errors import DataError

    texts = [f"text number {i}" for i in range(50)]
    (tmp_path / "t.txt").write_text("\n".join(texts[:25]) + "\n\n" + "\n".join(texts[25:]) + "\n")
    (tmp_path / "t.csv").write_text("id,sentence\n" + "".join(f"{i},{t}\n" for i, t in enumerate(texts)))
    for name, column in (("t.txt", "text"), ("t.csv", "sentence")):
        ds = load_dataset(str(tmp_path / name), text_column=column, task="embedding")
        assert ds.labels == () and sorted(ds.train.texts + ds.validation.texts + ds.test.texts) == sorted(texts)
        assert len(ds.validation) == 5 and set(ds.validation.labels) == {0}
    with pytest.raises(DataError, match="column 'text'"):
        load_dataset(str(tmp_path / "t.csv"), task="embedding")
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(DataError, match="no texts"):
        load_dataset(str(tmp_path / "empty.txt"), task="embedding")


# -- metrics ----------------------------------------------------------------------------------------
def test_metrics_are_one_against_itself_and_drop_with_noise() -> None:
    rng = np.random.default_rng(0)
    gold = l2_normalize(rng.normal(size=(300, 16)))
    task = Embedding((), {"dim": 16})
    same = task.metrics(gold, gold * 3.0)  # scale does not matter
    assert same["cosine"] == pytest.approx(1.0) and same["recall_at_10"] == pytest.approx(1.0)
    noisy = task.metrics(gold, gold + rng.normal(scale=0.3, size=gold.shape))
    assert 0.5 < noisy["cosine"] < 0.99 and 0.1 < noisy["recall_at_10"] < 0.95
    assert task.metrics(gold, rng.normal(size=gold.shape))["recall_at_10"] < 0.15  # unrelated vectors
    assert (task.decisions(gold) != np.arange(300)).all()  # a text's nearest neighbour is another text


def test_top_k_is_exact() -> None:
    rng = np.random.default_rng(1)
    corpus, queries = l2_normalize(rng.normal(size=(2100, 8))), l2_normalize(rng.normal(size=(5, 8)))
    idx, val = top_k(queries, corpus, 7)
    brute = np.argsort(-(queries @ corpus.T), axis=1)[:, :7]
    assert (idx == brute).all() and np.allclose(val, np.take_along_axis(queries @ corpus.T, brute, 1))
    assert neighbour_recall(corpus[:50], corpus[:50]).min() == 1.0


# -- export and runtime -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def embed_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny encoder laid out as a sentence-transformers model (mean pooling, normalised)."""
    return st_layout(make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-embed"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "texts.txt"
    path.write_text("\n".join(t for t, _ in synthetic_rows(300, seed=3)) + "\n")
    return path


@pytest.fixture(scope="module")
def int8_bundle(tmp_path_factory: pytest.TempPathFactory, embed_model: Path, corpus: Path) -> Path:
    from lpm_edge.export import export

    return export(embed_model, tmp_path_factory.mktemp("b") / "emb-int8", "cpu-int8", data=str(corpus),
                  task="embedding", max_accuracy_drop=50.0, student_cache=False)


def torch_vectors(model_dir: Path, texts: list[str]) -> np.ndarray:
    """Mean pooling + L2 written here from transformers' outputs, independent of lpm-edge's module."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"].unsqueeze(-1).float()
    return l2_normalize(((h * m).sum(1) / m.sum(1)).numpy())


def test_int8_export_embeds_like_the_model(int8_bundle: Path, embed_model: Path) -> None:
    import lpm_edge

    enc = lpm_edge.load(int8_bundle, spin=False)
    assert enc.task.kind == "embedding" and enc.labels == () and enc.manifest.outputs == ("embeddings",)
    assert enc.task.info["pooling"] == ["mean"] and enc.task.info["normalize"] is True and enc.task.dim == 32
    texts = [t for t, _ in synthetic_rows(40, seed=9)]
    v = enc.embed(texts)
    assert v.shape == (40, 32) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert enc.embed(texts[0]).shape == (32,)
    ref = torch_vectors(embed_model, texts)
    assert (v * ref).sum(1).mean() > 0.98  # int8 vs fp32 PyTorch, mean cosine
    m = enc.manifest.metrics
    assert m["metric"] == "cosine" and m["reference_accuracy"] == pytest.approx(1.0)
    assert 0.98 < m["bundle_accuracy"] <= 1.0 + 1e-6 and m["accuracy_drop_ci95"] is not None
    assert m["split"] == "validation" and m["n"] == 30
    assert set(m["bundle_metrics"]) == {"cosine", "recall_at_10"} and 0 < m["bundle_metrics"]["recall_at_10"] <= 1


def test_search_finds_the_text_itself_and_predict_names_embed(int8_bundle: Path) -> None:
    import lpm_edge

    enc = lpm_edge.load(int8_bundle, spin=False)
    with pytest.raises(ConfigError, match=r"index\(texts\)"):
        enc.search("good")
    texts = list(dict.fromkeys(t for t, _ in synthetic_rows(120, seed=5)))
    index = enc.index(texts)
    assert len(index) == len(texts)
    hits = enc.search(texts[7], k=3)
    assert [h.index for h in hits][0] == 7 and hits[0].text == texts[7] and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].score >= hits[1].score >= hits[2].score
    many = enc.search([texts[1], texts[2]], k=200)
    assert len(many) == 2 and len(many[0]) == len(texts) and many[1][0].index == 2
    with pytest.raises(ConfigError, match="k must be"):
        enc.search("good", k=0)
    with pytest.raises(ConfigError, match=r"offers embed\(\), index\(\), search\(\), not predict\(\)"):
        enc.predict("good")


def test_classifier_bundle_refuses_embed(tiny_bundle: Path) -> None:
    import lpm_edge

    with pytest.raises(ConfigError, match=r"not embed\(\)"):
        lpm_edge.load(tiny_bundle, spin=False).embed(["good"])


def test_cli_export_and_inspect(embed_model: Path, corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from lpm_edge.cli import main

    out = tmp_path / "b"
    assert main(["export", str(embed_model), "--task", "embedding", "--recipe", "cpu-fp32", "--data", str(corpus),
                 "--out", str(out), "--no-student-cache"]) == 0
    assert "cosine 1.0000 vs full model 1.0000" in capsys.readouterr().out
    assert main(["inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "task        embedding" in shown and "pooling ['mean']" in shown and "cosine " in shown
    assert "recall_at_10 1.0000" in shown


def test_task_disagreeing_with_training_json_is_refused(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from lpm_edge.export import export

    with pytest.raises(ConfigError, match="records the task 'text-classification'"):
        export(tiny_checkpoint, tmp_path / "b", "cpu-int8", task="embedding")


def test_training_an_embedding_model_is_refused(embed_model: Path, corpus: Path, tmp_path: Path) -> None:
    from lpm_edge.train import TrainConfig, train

    with pytest.raises(ConfigError, match="--task embedding"):
        train(TrainConfig(out=tmp_path / "c", model=embed_model, data=str(corpus), task="embedding", epochs=1))


@pytest.mark.slow
def test_pruned_distilled_export(embed_model: Path, corpus: Path, tmp_path: Path) -> None:
    """Gradient importance without labels (in-batch contrastive), pruning, distillation on the
    teacher's vectors, vocabulary pruning and int8: the student moves towards the teacher."""
    import lpm_edge
    from lpm_edge.export import export
    from lpm_edge.export.recipe import DistillConfig, load_recipe

    recipe = load_recipe("cpu-pruned-int8")
    recipe = recipe.replace(prune=recipe.prune.__class__(heads=0.25, ffn=0.5, layers=1, importance="gradient",
                                                          importance_batches=2),
                            distill=DistillConfig(steps=80, batch_size=16, learning_rate=1e-3))
    teacher = _stronger_layers(embed_model, tmp_path / "teacher")
    cache = tmp_path / "students"
    out = export(teacher, tmp_path / "pruned", recipe, data=str(corpus), task="embedding",
                 max_accuracy_drop=100.0, student_cache=cache)
    enc = lpm_edge.load(out, spin=False)
    c = enc.manifest.source["compression"]
    assert c["layers"] == {"before": 2, "after": 1} and c["heads"]["after"] == 3
    d = c["distill"]
    assert d["kl_after"] < d["kl_before"]  # mean (1 - cosine) to the teacher went down
    assert enc.embed("good movie").shape == (32,)
    again = export(teacher, tmp_path / "pruned2", recipe, data=str(corpus), task="embedding",
                   max_accuracy_drop=100.0, student_cache=cache)  # the cached student, re-wrapped
    assert lpm_edge.load(again, spin=False).manifest.metrics["bundle_accuracy"] == pytest.approx(
        enc.manifest.metrics["bundle_accuracy"], abs=0.02)
    shutil.rmtree(cache, ignore_errors=True)


def _stronger_layers(model_dir: Path, out: Path) -> Path:
    """A copy of the tiny encoder whose layers' weights are 8x larger: at the default init (std 0.02)
    every layer is nearly the identity, so a pruned student already matches and there is nothing to distil."""
    import torch
    from transformers import AutoModel

    shutil.copytree(model_dir, out)
    model = AutoModel.from_pretrained(model_dir)
    with torch.no_grad():
        for name, p in model.encoder.named_parameters():
            if name.endswith("weight") and p.dim() == 2:
                p.mul_(8.0)
    model.save_pretrained(out)
    return out


@pytest.mark.slow
def test_pruned_embedding_distils_hidden_states_relations_and_similarities_and_stops_on_cosine(embed_model: Path, corpus: Path, tmp_path: Path) -> None:
    """The hidden-state, attention-relation and in-batch similarity terms work through the pooled
    wrapper (it passes output_hidden_states to the encoder), and the compression record says what
    they measured."""
    import lpm_edge
    from lpm_edge.export import export
    from lpm_edge.export.recipe import DistillConfig, load_recipe

    recipe = load_recipe("cpu-pruned-int8")
    recipe = recipe.replace(prune=recipe.prune.__class__(heads=0.25, ffn=0.5, layers=1, importance="magnitude"),
                            distill=DistillConfig(steps=20, batch_size=16, learning_rate=1e-3, hidden_weight=1.0,
                                                  attention_relation_weight=1.0, similarity_weight=1.0,
                                                  eval_every=10))
    teacher = _stronger_layers(embed_model, tmp_path / "teacher")
    out = export(teacher, tmp_path / "pruned", recipe, data=str(corpus), task="embedding",
                 max_accuracy_drop=100.0, student_cache=None)
    d = lpm_edge.load(out, spin=False).manifest.source["compression"]["distill"]
    text = json.dumps(d)
    assert '"hidden_weight": 1.0' in text and '"attention_relation_weight": 1.0' in text, d
    assert '"similarity_weight": 1.0' in text, d
    assert '"hidden":' in text and '"relation":' in text and '"similarity":' in text, d  # every term was computed
    # early stopping scores the student's vectors against the teacher's (the gold of embeddings)
    stop = d["early_stopping"]
    assert stop["metric"] == "cosine" and 0.3 < stop["best_accuracy"] <= 1.0, stop
    assert all(0.3 < cosine <= 1.0 for _, cosine, _ in stop["curve"]), stop
