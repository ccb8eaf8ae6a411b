"""The multi-task task: several label columns, one encoder with the heads' logits side by side, a budget
that holds for every head, and a tiny model through train, export (int8, pruned + distilled), load,
predict and bench."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from lpm_edge import tasks
from lpm_edge.data import Split, load_dataset
from lpm_edge.errors import ConfigError, DataError
from lpm_edge.evaluate import compare
from lpm_edge.tasks.multitask import MultiTask
from lpm_edge.tasks.single_label import Prediction

from ..conftest import FILLER, NEGATIVE, POSITIVE

LABELS = ("sentiment:neg", "sentiment:pos", "topic:acting", "topic:plot", "topic:story")
TASK = MultiTask(LABELS)


def multi_rows(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """Texts with a sentiment word (neg/pos) and a topic word (acting/plot/story) among filler words."""
    rng = random.Random(seed)
    filler = [w for w in FILLER if w not in ("acting", "plot", "story")]
    rows = []
    for i in range(n):
        sentiment, topic = ("neg", "pos")[i % 2], ("acting", "plot", "story")[(i // 2) % 3]
        words = rng.choices(filler, k=rng.randint(2, 8)) + [rng.choice(POSITIVE if i % 2 else NEGATIVE), topic]
        rng.shuffle(words)
        rows.append((" ".join(words), sentiment, topic))
    return rows


def write_rows(path: Path, rows: list[tuple[str, ...]], header=("text", "sentiment", "topic")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_heads_come_from_label_columns_and_gold_is_one_id_per_head(tmp_path):
    data = write_rows(tmp_path / "m.csv", multi_rows(60))
    ds = load_dataset(data, label_column="sentiment,topic", task="multi-task")
    assert ds.labels == LABELS
    assert all(isinstance(g, tuple) and len(g) == 2 for g in ds.train.labels)
    task = tasks.from_section("multi-task", ds.labels)
    assert task.heads == {"sentiment": ("neg", "pos"), "topic": ("acting", "plot", "story")}
    assert task.blocks == {"sentiment": (0, 2), "topic": (2, 5)}
    assert task.section() == {"heads": {"sentiment": ["neg", "pos"], "topic": ["acting", "plot", "story"]},
                              "kinds": {"sentiment": "classification", "topic": "classification"}}
    assert tasks.from_section("multi-task", LABELS, task.section()).heads == task.heads


def test_a_head_with_one_class_and_a_missing_column_are_data_errors(tmp_path):
    rows = [(t, s, "plot") for t, s, _ in multi_rows(30)]
    with pytest.raises(DataError, match=r"head 'topic': .*m\.csv:2-31: every training row has the label 'plot'"):
        load_dataset(write_rows(tmp_path / "m.csv", rows), label_column="sentiment,topic", task="multi-task")
    with pytest.raises(DataError, match=r"no column 'genre'"):
        load_dataset(write_rows(tmp_path / "n.csv", multi_rows(30)), label_column="sentiment,genre",
                     task="multi-task")
    with pytest.raises(DataError, match="several label columns"):
        load_dataset(write_rows(tmp_path / "o.csv", multi_rows(30)), label_column="sentiment", task="multi-task")
    with pytest.raises(ConfigError, match="at least two heads"):
        MultiTask(("sentiment:neg", "sentiment:pos"))


def test_predictions_scores_and_metrics_per_head():
    logits = np.array([[2.0, 0.0, 0.0, 3.0, 0.0], [0.0, 1.0, 5.0, 0.0, 0.0]], dtype=np.float32)  # (n, 5)
    p = TASK.predictions(logits)
    assert set(p[0]) == {"sentiment", "topic"} and isinstance(p[0]["topic"], Prediction)
    assert (p[0]["sentiment"].label, p[0]["topic"].label, p[1]["topic"].label) == ("neg", "plot", "acting")
    s = TASK.scores(logits)
    assert s.shape == (2, 5) and np.allclose(s[:, :2].sum(1), 1) and np.allclose(s[:, 2:].sum(1), 1)
    m = TASK.metrics([(0, 1), (1, 1)], logits)  # sentiment right twice, topic right once
    assert m["sentiment/accuracy"] == 1.0 and m["topic/accuracy"] == 0.5 and m["worst_head_accuracy"] == 0.5
    assert TASK.decisions(logits).tolist() == [[0, 1], [1, 0]]


def test_the_loss_is_the_worst_heads_loss_not_the_drop_of_the_worst_accuracy():
    rng = np.random.default_rng(0)
    n = 200
    gold = [(int(a), int(b)) for a, b in zip(rng.integers(0, 2, n), rng.integers(0, 3, n))]
    ref = np.zeros((n, 5), np.float32)
    for i, (a, b) in enumerate(gold):  # sentiment always right, topic right on 3 of 4 texts
        ref[i, a] = 1
        ref[i, 2 + (b if i % 4 else (b + 1) % 3)] = 1
    cand = ref.copy()
    wrong = np.arange(n) % 10 == 1  # sentiment now wrong on 10% of texts: still above topic's 75%
    cand[wrong, :2] = cand[wrong, :2][:, ::-1]
    split = Split(tuple(f"t{i}" for i in range(n)), tuple(gold), "validation", "m.csv")
    r, c = compare(split, [("ref", ref), ("cand", cand)], TASK, n_boot=300)
    assert r.value == c.value == 0.75  # the worst head's accuracy did not move ...
    assert c.loss_points == pytest.approx(10.0)  # ... but the sentiment head lost 10 points
    assert c.loss_ci95[0] > 0 and c.agreement == pytest.approx(0.9)


def test_training_loss_and_distillation_sum_the_heads():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    out, gold = torch.randn(4, 5), torch.tensor([[0, 2], [1, 0], [1, 1], [0, 0]])
    expected = F.cross_entropy(out[:, :2], gold[:, 0]) + F.cross_entropy(out[:, 2:], gold[:, 1])
    assert float(TASK.loss(out, gold)) == pytest.approx(float(expected))
    teacher = torch.randn(4, 5)
    kl = lambda s, t: F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="sum")  # noqa: E731
    assert float(TASK.divergence(out, teacher)) == pytest.approx(float(kl(out[:, :2], teacher[:, :2])
                                                                       + kl(out[:, 2:], teacher[:, 2:])), rel=1e-5)
    assert float(TASK.distill_loss(out, out, gold, 2.0, 1.0)) == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def multi_checkpoint(tmp_path_factory, tiny_config):
    from lpm_edge.train import train

    d = tmp_path_factory.mktemp("multi")
    data = write_rows(d / "multi.csv", multi_rows(400))
    return train(tiny_config(d / "ckpt", data=str(data), task="multi-task", label_column="sentiment,topic",
                             epochs=8))


@pytest.mark.slow
def test_train_export_load_predict_bench(multi_checkpoint, tmp_path, capsys):
    from lpm_edge import load
    from lpm_edge.bench import bench
    from lpm_edge.export import export
    from lpm_edge.export.recipe import DistillConfig, PruneConfig, load_recipe

    info = json.loads((multi_checkpoint / "training.json").read_text())
    assert info["task"]["kind"] == "multi-task" and info["best"]["metric"] == "worst_head_accuracy"
    # both heads learned (chance: 0.5 and 0.33); the best epoch is chosen by the worst head
    assert info["test"]["sentiment/accuracy"] > 0.75 and info["test"]["topic/accuracy"] > 0.6, info["test"]

    int8 = export(multi_checkpoint, tmp_path / "int8", "cpu-int8")
    clf = load(int8)
    from lpm_edge.reference import TorchClassifier

    texts = ["the acting was superb", "a dull plot", "the story was awful"]
    full = TASK.predictions(TorchClassifier(multi_checkpoint).logits(texts))
    got = clf.predict(texts)
    assert [{h: p.label for h, p in g.items()} for g in got] == [{h: p.label for h, p in f.items()} for f in full]
    one = clf.predict("the acting was superb")
    assert set(one) == {"sentiment", "topic"} and one["topic"].label in ("acting", "plot", "story")
    assert clf.predict_proba(["a dull plot"]).shape == (1, 5)
    from lpm_edge.cli import main

    assert main(["predict", str(int8), "the acting was superb"]) == 0
    assert capsys.readouterr().out.startswith(f"sentiment={one['sentiment'].label}:")
    m = json.loads((int8 / "manifest.json").read_text())
    assert m["task"]["heads"]["topic"] == ["acting", "plot", "story"] and m["metrics"]["metric"] == "worst_head_accuracy"

    recipe = load_recipe("cpu-pruned-int8")
    recipe = recipe.replace(prune=PruneConfig(heads=0.5, ffn=0.75, layers=1, importance_batches=2),
                            distill=DistillConfig(steps=80, batch_size=16, learning_rate=1e-3), vocab_prune=False)
    pruned = export(multi_checkpoint, tmp_path / "pruned", recipe, max_accuracy_drop=100.0)
    d = json.loads((pruned / "manifest.json").read_text())["source"]["compression"]["distill"]
    assert d["kl_after"] < d["kl_before"]
    assert set(load(pruned).predict(["a good plot"])[0]) == {"sentiment", "topic"}

    report = bench([int8, pruned], multi_checkpoint, tmp_path / "bench", quick=True).to_dict()
    cand = report["candidates"][1]
    assert cand["metric"] == "worst_head_accuracy" and cand["loss_ci95"] is not None
    assert {"sentiment/accuracy", "topic/accuracy"} <= set(cand) and cand["agreement"] is not None

    from lpm_edge.search import Candidate, search

    result = search(multi_checkpoint, tmp_path / "search", max_accuracy_drop=100.0, space=[Candidate()],
                    latency_texts=5)
    point, = result.points
    m = json.loads((Path(point.extra["bundle"]) / "manifest.json").read_text())["metrics"]
    # the candidate's drop is the export's loss: the worst head's, not the worst accuracy's difference
    assert point.accuracy == pytest.approx(m["reference_accuracy"] - m["accuracy_drop_points"] / 100)
