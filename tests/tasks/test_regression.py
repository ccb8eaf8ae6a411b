"""The regression task: numeric targets, MSE/MAE/Pearson/Spearman, and a tiny model through train,
export (int8, pruned + distilled), load, predict and bench."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from lpm_edge import tasks
from lpm_edge.data import Split, load_dataset
from lpm_edge.errors import ConfigError, DataError
from lpm_edge.evaluate import compare
from lpm_edge.tasks.regression import Regression, Value, pearson, rankdata, spearman

from ..conftest import FILLER, NEGATIVE, POSITIVE

TASK = Regression(("score",))


def regression_rows(n: int, seed: int = 0) -> list[tuple[str, float]]:
    """Texts whose score is (positive words) - (negative words) among filler words."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        pos, neg = rng.randint(0, 2), rng.randint(0, 2)
        words = rng.choices(FILLER, k=rng.randint(2, 8)) + rng.choices(POSITIVE, k=pos) + rng.choices(NEGATIVE, k=neg)
        rng.shuffle(words)
        rows.append((" ".join(words), float(pos - neg)))
    return rows


def write_jsonl(path: Path, rows: list[tuple[str, object]], column: str = "score") -> Path:
    path.write_text("".join(json.dumps({"text": t, column: v}) + "\n" for t, v in rows))
    return path


def test_average_ranks_and_correlations_match_known_values():
    assert rankdata(np.array([10.0, 20.0, 20.0, 5.0])).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert rankdata(np.array([1.0, 1.0, 1.0])).tolist() == [2.0, 2.0, 2.0]
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 4.0, 9.0, 16.0])
    assert spearman(a, b) == pytest.approx(1.0) and pearson(a, b) < 1.0
    assert spearman(a, -b) == pytest.approx(-1.0)
    assert np.isnan(pearson(a, np.ones(4)))  # a constant side has no correlation
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 200).astype(float), rng.normal(size=200)  # many ties in x
    slow = np.array([np.mean([j + 1 for j in range(200) if np.sort(x)[j] == v]) for v in x])  # average ranks
    assert rankdata(x).tolist() == slow.tolist()
    assert spearman(x, y) == pytest.approx(np.corrcoef(slow, rankdata(y))[0, 1], abs=1e-12)
    assert pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)


def test_metrics_and_predictions():
    gold = [0.0, 1.0, 2.0, 3.0]
    out = np.array([[0.5], [1.0], [2.0], [2.5]], dtype=np.float32)  # (n, 1)
    m = TASK.metrics(gold, out)
    assert m["mse"] == pytest.approx(0.125) and m["mae"] == pytest.approx(0.25)
    assert m["spearman"] == pytest.approx(1.0) and 0.9 < m["pearson"] < 1.0
    assert TASK.predictions(out)[1] == Value(1.0)
    assert TASK.output_shape(3) == (3, 1) and TASK.offers == ("predict",) and TASK.metric == "spearman"
    assert TASK.decisions(out) is None


def test_compare_gives_the_spearman_loss_in_points_with_a_ci_and_no_agreement():
    rng = np.random.default_rng(1)
    gold = rng.normal(size=120)
    ref = (gold + rng.normal(scale=0.3, size=120))[:, None]
    worse = (gold + rng.normal(scale=1.0, size=120))[:, None]
    split = Split(tuple(f"t{i}" for i in range(120)), tuple(gold), "validation", "f.jsonl")
    r, same, lossy = compare(split, [("ref", ref), ("same", ref.copy()), ("worse", worse)], TASK, n_boot=300)
    assert r.metric == "spearman" and r.agreement is None and same.loss_points == 0 and same.agreement is None
    drop = (spearman(gold, ref[:, 0]) - spearman(gold, worse[:, 0])) * 100
    assert lossy.loss_points == pytest.approx(drop) and drop > 5
    lo, hi = lossy.loss_ci95
    assert lo < drop < hi and lo > 0


def test_numeric_targets_load_and_bad_ones_name_file_and_line(tmp_path):
    data = write_jsonl(tmp_path / "s.jsonl", regression_rows(40))
    ds = load_dataset(data, label_column="score", task="regression")
    assert ds.labels == ("score",) and all(isinstance(v, float) for v in ds.train.labels)
    bad = write_jsonl(tmp_path / "bad.jsonl", [("a fine text", 1.0), ("another text", "high"), ("x y", 2)])
    with pytest.raises(DataError, match=r"bad\.jsonl:2: target 'high' in column 'score' is not a number"):
        load_dataset(bad, label_column="score", task="regression")
    inf = write_jsonl(tmp_path / "inf.jsonl", [("a fine text", 1.0), ("another text", "nan")])
    with pytest.raises(DataError, match=r"inf\.jsonl:2: .*not finite"):
        load_dataset(inf, label_column="score", task="regression")


def test_section_and_metric_choice_are_checked():
    assert tasks.from_section("regression", ["score"]).labels == ("score",)
    with pytest.raises(ConfigError, match="one target"):
        tasks.from_section("regression", ["a", "b"])
    assert TASK.best_metric("accuracy") == ("spearman", True)
    assert TASK.best_metric("mse") == ("mse", False)
    with pytest.raises(ConfigError, match="macro_f1"):
        TASK.best_metric("macro_f1")


def test_distillation_losses():
    torch = pytest.importorskip("torch")
    s, t, y = torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [4.0]]), torch.tensor([0.0, 2.0])
    assert float(TASK.distill_loss(s, t, y, 2.0, 1.0)) == pytest.approx(2.0)  # MSE to the teacher
    assert float(TASK.distill_loss(s, t, y, 2.0, 0.5)) == pytest.approx(0.5 * 2.0 + 0.5 * 0.5)
    assert float(TASK.divergence(s, t)) == pytest.approx(4.0)


@pytest.fixture(scope="module")
def regression_checkpoint(tmp_path_factory, tiny_config):
    from lpm_edge.train import train

    d = tmp_path_factory.mktemp("regression")
    data = write_jsonl(d / "scores.jsonl", regression_rows(400))
    return train(tiny_config(d / "ckpt", data=str(data), task="regression", label_column="score", epochs=6))


@pytest.mark.slow
def test_train_export_load_predict_bench(regression_checkpoint, tmp_path, capsys):
    from lpm_edge import load
    from lpm_edge.bench import bench
    from lpm_edge.export import export
    from lpm_edge.export.recipe import DistillConfig, PruneConfig, load_recipe

    info = json.loads((regression_checkpoint / "training.json").read_text())
    assert info["task"]["kind"] == "regression" and info["best"]["metric"] == "spearman"
    assert info["test"]["spearman"] > 0.6, info["test"]  # the tiny model learned the scores

    int8 = export(regression_checkpoint, tmp_path / "int8", "cpu-int8")
    clf = load(int8)
    one = clf.predict("the film was great and superb")
    assert isinstance(one, Value) and isinstance(one.value, float)
    assert one.value > clf.predict("the film was awful and boring").value
    with pytest.raises(ConfigError, match="offers predict"):
        clf.predict_proba(["a text"])
    from lpm_edge.cli import main

    assert main(["predict", str(int8), "a superb film", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["text"] == "a superb film" and isinstance(row["value"], float)
    m = json.loads((int8 / "manifest.json").read_text())["metrics"]
    assert m["metric"] == "spearman" and m["parity"]["argmax_agreement"] is None
    assert abs(m["accuracy_drop_points"]) < 5

    recipe = load_recipe("cpu-pruned-int8")
    recipe = recipe.replace(prune=PruneConfig(heads=0.5, ffn=0.75, layers=1, importance_batches=2),
                            distill=DistillConfig(steps=80, alpha=1.0, batch_size=16, learning_rate=1e-3),
                            vocab_prune=False)
    pruned = export(regression_checkpoint, tmp_path / "pruned", recipe, max_accuracy_drop=100.0)
    pm = json.loads((pruned / "manifest.json").read_text())
    d = pm["source"]["compression"]["distill"]
    assert pm["source"]["compression"]["layers"]["after"] == 1 and d["kl_after"] < d["kl_before"]
    assert isinstance(load(pruned).predict(["a good film"])[0], Value)

    report = bench([int8, pruned], regression_checkpoint, tmp_path / "bench", quick=True,
                   config=None).to_dict()
    ref, cand = report["candidates"][0], report["candidates"][1]
    assert ref["metric"] == "spearman" and cand["loss_ci95"] is not None and cand["agreement"] is None
    assert {"mse", "mae", "pearson", "spearman"} <= set(cand)
    md = (tmp_path / "bench" / "report.md").read_text()
    assert "| model | spearman | other metrics |" in md

    from lpm_edge.search import Candidate, search

    result = search(regression_checkpoint, tmp_path / "search", max_accuracy_drop=100.0, space=[Candidate()],
                    latency_texts=5)
    assert result.chosen is not None and 0.5 < result.reference_accuracy <= 1  # the full model's Spearman
    doc = json.loads((tmp_path / "search" / "search.json").read_text())
    assert doc["confirmed_on_test"]["accuracy_drop_points"] == pytest.approx(
        (doc["confirmed_on_test"]["reference_accuracy"] - doc["confirmed_on_test"]["bundle_accuracy"]) * 100)
