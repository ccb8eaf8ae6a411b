"""Multi-task heads of mixed kinds: a regression head (`stars:regression`) beside classification heads,
losses summed, each head's own metric, a budget that holds for every head, and a tiny model through
train, export (int8, pruned + distilled), load, predict and bench."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from lpm_edge import tasks
from lpm_edge.data import Split, load_dataset
from lpm_edge.errors import ConfigError, DataError
from lpm_edge.evaluate import compare
from lpm_edge.tasks.multitask import MultiTask
from lpm_edge.tasks.regression import Value, spearman
from lpm_edge.tasks.single_label import Prediction

from ..conftest import FILLER, NEGATIVE, POSITIVE

LABELS = ("sentiment:neg", "sentiment:pos", "topic:acting", "topic:plot", "stars:regression")
TASK = MultiTask(LABELS)
SPEC = "sentiment,topic,stars:regression"


def mixed_rows(n: int, seed: int = 0) -> list[tuple[str, str, str, str]]:
    """(text, sentiment, topic, stars): stars = positive words - negative words, sentiment its sign."""
    rng = random.Random(seed)
    filler = [w for w in FILLER if w not in ("acting", "plot")]
    rows = []
    for i in range(n):
        p, q = rng.choice([(1, 0), (2, 0), (0, 1), (0, 2)])
        topic = ("acting", "plot")[i % 2]
        words = rng.choices(filler, k=rng.randint(2, 6)) + rng.choices(POSITIVE, k=p) + rng.choices(NEGATIVE, k=q)
        words.append(topic)
        rng.shuffle(words)
        rows.append((" ".join(words), "pos" if p > q else "neg", topic, str((p - q) / 4)))
    return rows


def write_rows(path: Path, rows, header=("text", "sentiment", "topic", "stars")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_a_regression_head_is_declared_after_its_column_and_recorded_with_its_kind(tmp_path):
    ds = load_dataset(write_rows(tmp_path / "m.csv", mixed_rows(60)), label_column=SPEC, task="multi-task")
    assert ds.labels == LABELS
    assert all(len(g) == 3 and isinstance(g[2], float) for g in ds.train.labels)
    task = tasks.from_section("multi-task", ds.labels)
    assert task.kinds == {"sentiment": "classification", "topic": "classification", "stars": "regression"}
    assert task.blocks["stars"] == (4, 5) and task.metric == "worst_head_score"
    section = task.section()
    assert section["kinds"]["stars"] == "regression"
    assert tasks.from_section("multi-task", LABELS, section).kinds == task.kinds
    with pytest.raises(ConfigError, match="kinds"):
        tasks.from_section("multi-task", LABELS, {**section, "kinds": {**section["kinds"], "stars": "classification"}})
    # an all-classification task keeps its metric and reads records without kinds (bundles before mixed heads)
    old = tasks.from_section("multi-task", LABELS[:4], {"heads": {"sentiment": ["neg", "pos"],
                                                                  "topic": ["acting", "plot"]}})
    assert old.metric == "worst_head_accuracy"


def test_bad_regression_targets_and_kinds_are_one_line_data_errors(tmp_path):
    rows = mixed_rows(30)
    rows[6] = (rows[6][0], "pos", "plot", "five")
    with pytest.raises(DataError, match=r"head 'stars': .*m\.csv:8: target 'five' in column 'stars' is not a number"):
        load_dataset(write_rows(tmp_path / "m.csv", rows), label_column=SPEC, task="multi-task")
    with pytest.raises(DataError, match="unknown kind 'ordinal'"):
        load_dataset(write_rows(tmp_path / "n.csv", mixed_rows(30)), label_column="sentiment,stars:ordinal",
                     task="multi-task")


def test_predictions_give_a_label_or_a_value_per_head_and_metrics_per_head():
    out = np.array([[2.0, 0.0, 0.0, 3.0, 1.5], [0.0, 1.0, 5.0, 0.0, -0.5]], dtype=np.float32)  # (n, 5)
    p = TASK.predictions(out)
    assert isinstance(p[0]["sentiment"], Prediction) and p[0]["stars"] == Value(1.5)
    assert (p[0]["topic"].label, p[1]["stars"].value) == ("plot", -0.5)
    s = TASK.scores(out)
    assert s.shape == (2, 5) and np.allclose(s[:, :2].sum(1), 1) and s[1, 4] == pytest.approx(-0.5)
    m = TASK.metrics([(0, 1, 1.0), (1, 1, 0.0)], out)  # topic right once; stars ordered right
    assert m["sentiment/accuracy"] == 1.0 and m["topic/accuracy"] == 0.5
    assert m["stars/mse"] == pytest.approx((0.25 + 0.25) / 2) and m["stars/spearman"] == pytest.approx(1.0)
    assert m["worst_head_score"] == 0.5
    assert TASK.decisions(out).shape == (2, 2)  # classification heads only


def test_the_budget_holds_for_the_regression_head_too():
    rng = np.random.default_rng(0)
    n = 300
    gold = [(int(a), int(b), float(v)) for a, b, v in zip(rng.integers(0, 2, n), rng.integers(0, 2, n),
                                                           rng.normal(size=n))]
    ref = np.zeros((n, 5), np.float32)
    for i, (a, b, v) in enumerate(gold):
        ref[i, a], ref[i, 2 + b], ref[i, 4] = 1, 1, v + 0.1 * rng.normal()
    cand = ref.copy()
    cand[:, 4] = [g[2] + rng.normal() for g in gold]  # the classifiers unchanged, the number much noisier
    split = Split(tuple(f"t{i}" for i in range(n)), tuple(gold), "validation", "m.csv")
    r, c = compare(split, [("ref", ref), ("cand", cand)], TASK, n_boot=200)
    drop = (spearman(np.array([g[2] for g in gold]), ref[:, 4]) - spearman(np.array([g[2] for g in gold]),
                                                                           cand[:, 4])) * 100
    assert c.loss_points == pytest.approx(drop) and drop > 10
    assert c.loss_ci95[0] > 0 and c.agreement == 1.0


def test_losses_sum_the_heads_and_leave_out_examples_without_a_heads_label():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    out = torch.randn(4, 5)
    gold = torch.tensor([[0, 1, 2.0], [1, 0, -1.0], [1, 1, math.nan], [0, 0, 0.5]])
    expected = (F.cross_entropy(out[:, :2], gold[:, 0].long()) + F.cross_entropy(out[:, 2:4], gold[:, 1].long())
                + F.mse_loss(out[[0, 1, 3], 4], gold[[0, 1, 3], 2]))
    assert float(TASK.loss(out, gold)) == pytest.approx(float(expected), rel=1e-5)
    assert float(TASK.distill_loss(out, out, gold, 2.0, 1.0)) == pytest.approx(0.0, abs=1e-6)
    none = torch.full((4, 3), math.nan)
    assert float(TASK.loss(out, none)) == 0.0  # no head has a label: nothing to learn, no NaN
    d = TASK.distill_loss(out, out + 1, gold, 2.0, 0.5)
    assert torch.isfinite(d) and float(TASK.divergence(out, out)) == pytest.approx(0.0, abs=1e-5)


@pytest.fixture(scope="module")
def mixed_checkpoint(tmp_path_factory, tiny_config):
    from lpm_edge.train import train

    d = tmp_path_factory.mktemp("mixed")
    data = write_rows(d / "mixed.csv", mixed_rows(400))
    return train(tiny_config(d / "ckpt", data=str(data), task="multi-task", label_column=SPEC, epochs=8))


@pytest.mark.slow
def test_train_export_load_predict_bench(mixed_checkpoint, tmp_path, capsys):
    from lpm_edge import load
    from lpm_edge.bench import bench
    from lpm_edge.export import export
    from lpm_edge.export.recipe import DistillConfig, PruneConfig, load_recipe
    from lpm_edge.reference import TorchClassifier

    info = json.loads((mixed_checkpoint / "training.json").read_text())
    assert info["task"]["kinds"]["stars"] == "regression" and info["best"]["metric"] == "worst_head_score"
    t = info["test"]
    assert t["sentiment/accuracy"] > 0.75 and t["topic/accuracy"] > 0.75 and t["stars/spearman"] > 0.6, t

    int8 = export(mixed_checkpoint, tmp_path / "int8", "cpu-int8")
    clf = load(int8)
    texts = ["the acting was superb and great", "a dull plot", "the plot was awful"]
    full = TASK.predictions(TorchClassifier(mixed_checkpoint).logits(texts))
    got = clf.predict(texts)
    assert [g["sentiment"].label for g in got] == [f["sentiment"].label for f in full]
    assert all(abs(g["stars"].value - f["stars"].value) < 0.3 for g, f in zip(got, full))
    assert isinstance(got[0]["stars"], Value) and got[0]["stars"].value > got[1]["stars"].value
    m = json.loads((int8 / "manifest.json").read_text())
    assert m["task"]["kinds"]["stars"] == "regression" and m["metrics"]["metric"] == "worst_head_score"
    from lpm_edge.cli import main

    assert main(["predict", str(int8), "a dull plot"]) == 0
    assert "stars" in capsys.readouterr().out

    recipe = load_recipe("cpu-pruned-int8").replace(
        prune=PruneConfig(heads=0.5, ffn=0.75, layers=1, importance_batches=2),
        distill=DistillConfig(steps=80, batch_size=16, learning_rate=1e-3), vocab_prune=False)
    pruned = export(mixed_checkpoint, tmp_path / "pruned", recipe, max_accuracy_drop=100.0)
    d = json.loads((pruned / "manifest.json").read_text())["source"]["compression"]["distill"]
    assert d["kl_after"] < d["kl_before"]
    assert isinstance(load(pruned).predict(["a good plot"])[0]["stars"], Value)

    report = bench([int8, pruned], mixed_checkpoint, tmp_path / "bench", quick=True).to_dict()
    cand = report["candidates"][1]
    assert cand["metric"] == "worst_head_score" and cand["loss_ci95"] is not None
    assert {"sentiment/accuracy", "stars/spearman", "stars/mae"} <= set(cand)


def test_records_give_each_head_its_own_answer():
    out = np.array([[2.0, 0.0, 0.0, 3.0, 1.5]], dtype=np.float32)
    [r] = TASK.records(TASK.scores(out))
    assert r["sentiment"]["label"] == "neg" and r["topic"]["label"] == "plot" and r["stars"] == {"value": 1.5}
    assert set(r["topic"]["scores"]) == {"acting", "plot"}
