"""Multi-task on sentence pairs (`--text-pair-column` with several heads, a multi-label one among them):
train -> export (cpu-int8, cpu-pruned-int8) -> load -> predict([(a, b)]) -> predict --input, on a tiny model."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from lpm_edge import tasks
from lpm_edge.errors import ConfigError

from .test_pairs import pair_rows

SPEC = "label,tone:multi-label"


def write_rows(path: Path, n: int, seed: int = 0) -> Path:
    """premise, hypothesis, `label` (the sentiment of the second text, as test_pairs'), and `tone`: the
    sentiments found in either text (a label set: neg, pos or both)."""
    from .test_pairs import NEGATIVE, POSITIVE

    def tone(*texts: str) -> str:
        words = " ".join(texts).split()
        return "|".join(n for n, group in (("neg", NEGATIVE), ("pos", POSITIVE)) if any(w in group for w in words))

    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["premise", "hypothesis", "label", "tone"])
        w.writerows((a, b, y, tone(a, b)) for a, b, y in pair_rows(n, seed))
    return path


def test_pair_rows_with_several_heads_load_as_pairs(tmp_path):
    from lpm_edge.data import load_dataset

    ds = load_dataset(write_rows(tmp_path / "p.csv", 60), text_column="premise", label_column=SPEC,
                      task="multi-task", text_pair_column="hypothesis")
    assert ds.inputs == ("text", "text_pair") and all(isinstance(t, tuple) for t in ds.train.texts)
    assert ds.labels == ("label:neg", "label:pos", "tone:multi-label:neg", "tone:multi-label:pos")
    task = tasks.from_section("multi-task", ds.labels, {}, inputs=ds.inputs)
    assert task.pairs and task.input_fields == ("text", "text_pair")
    again = tasks.from_section("multi-task", ds.labels, task.section(), inputs=list(task.input_fields))
    assert again.pairs and again.kinds == task.kinds


def test_head_files_refuse_a_pair_column(tmp_path):
    from lpm_edge.data import load_dataset

    a = write_rows(tmp_path / "a.csv", 20)
    with pytest.raises(ConfigError, match="--text-pair-column hypothesis: .* single texts"):
        load_dataset(f"label={a},tone={a}:multi-label", text_column="premise", task="multi-task",
                     text_pair_column="hypothesis")


@pytest.fixture(scope="module")
def pair_multi_checkpoint(tmp_path_factory, tiny_config):
    from lpm_edge.train import train

    d = tmp_path_factory.mktemp("pair-multi")
    data = write_rows(d / "pairs.csv", 400)
    return train(tiny_config(d / "ckpt", data=str(data), task="multi-task", label_column=SPEC, text_column="premise",
                             text_pair_column="hypothesis", epochs=6))


@pytest.mark.slow
def test_train_export_load_predict_on_pairs(pair_multi_checkpoint, tmp_path, capsys):
    import lpm_edge
    from lpm_edge.cli import main
    from lpm_edge.export import export, load_recipe
    from lpm_edge.export.recipe import DistillConfig
    from lpm_edge.reference import TorchClassifier

    info = json.loads((pair_multi_checkpoint / "training.json").read_text())
    assert info["task"]["inputs"] == ["text", "text_pair"] and info["data"]["text_pair_column"] == "hypothesis"
    assert info["task"]["kinds"] == {"label": "classification", "tone": "multi-label"}
    assert info["test"]["label/accuracy"] > 0.8, info["test"]  # the label is in the second text: both texts read
    assert math.isfinite(info["test"]["tone/micro_f1"])

    int8 = export(pair_multi_checkpoint, tmp_path / "int8", "cpu-int8", max_accuracy_drop=100.0)
    assert json.loads((int8 / "manifest.json").read_text())["task"]["inputs"] == ["text", "text_pair"]
    clf = lpm_edge.load(int8)
    pairs = [(a, b) for a, b, _ in pair_rows(40, 7)]
    got = clf.predict(pairs)
    assert set(got[0]) == {"label", "tone"}
    ref = clf.task.predictions(TorchClassifier(pair_multi_checkpoint, max_length=32).logits(pairs))
    agree = np.mean([g["label"].label == r["label"].label for g, r in zip(got, ref)])
    assert agree >= 0.9  # the bundle encodes pairs as the full model does
    one = clf.predict(("the movie was superb", "it was awful"))
    assert set(one) == {"label", "tone"} and one["label"].label == "neg"
    with pytest.raises(TypeError, match="sentence pairs"):
        clf.predict("just one text")

    recipe = load_recipe("cpu-pruned-int8")
    recipe = recipe.replace(distill=DistillConfig(**{**recipe.distill.__dict__, "steps": 20}))
    pruned = export(pair_multi_checkpoint, tmp_path / "pruned", recipe, max_accuracy_drop=100.0,
                    student_cache=False)
    m = json.loads((pruned / "manifest.json").read_text())
    assert m["task"]["inputs"] == ["text", "text_pair"] and m["source"]["compression"]["distill"]["steps"] == 20
    assert set(lpm_edge.load(pruned).predict([("a dull film", "a lovely story")])[0]) == {"label", "tone"}

    src = write_rows(tmp_path / "in.csv", 12, seed=3)
    out = tmp_path / "out.csv"
    assert main(["predict", str(int8), "--input", str(src), "--output", str(out), "--text-column", "premise",
                 "--text-pair-column", "hypothesis"]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    records = clf.records([(r["premise"], r["hypothesis"]) for r in rows])
    assert [r["pred_label"] for r in rows] == [r["label"]["label"] for r in records]
    assert [r["pred_tone"] for r in rows] == ["|".join(r["tone"]["labels"]) for r in records]
    capsys.readouterr()
    assert main(["predict", str(int8), "the movie was superb\tit was awful"]) == 0
    assert capsys.readouterr().out.startswith("label=neg:")
