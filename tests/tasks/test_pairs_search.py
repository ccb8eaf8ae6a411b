"""`lpm-edge search` end to end on a tiny checkpoint trained on sentence pairs (text + text_pair): every
candidate is measured on pairs, with the pair task's metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from .test_pairs import pair_rows, write_pairs


@pytest.fixture(scope="module")
def pair_ckpt(tmp_path_factory, tiny_model):
    from lpm_edge.train import TrainConfig, train

    d = tmp_path_factory.mktemp("pair-search")
    data = write_pairs(d / "pairs.csv", pair_rows(300))
    return train(TrainConfig(out=d / "checkpoint", model=tiny_model, data=str(data), text_column="premise",
                             text_pair_column="hypothesis", epochs=5, batch_size=16, learning_rate=3e-3,
                             max_length=32, patience=None, threads=1))


@pytest.mark.slow
def test_search_cli_on_a_pair_checkpoint_reports_the_pair_metric(pair_ckpt, tmp_path, capsys):
    from lpm_edge.bundle import read_manifest
    from lpm_edge.cli import main
    from lpm_edge.data import load_dataset
    from lpm_edge.reference import TorchClassifier
    from lpm_edge.tasks import from_training

    out = tmp_path / "search"
    rc = main(["search", str(pair_ckpt), "--out", str(out), "--max-accuracy-drop", "100", "--layers", "2,1",
               "--heads", "0", "--ffn", "0", "--distill-steps", "20", "--json"])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    info = json.loads((pair_ckpt / "training.json").read_text())
    task = from_training(info, info["labels"])
    assert task.pairs and task.metric == "accuracy"

    # the full model's figure is its accuracy on the validation PAIRS, computed here independently
    ds = load_dataset(info["data"]["source"], text_column="premise", label_column="label", text_pair_column="hypothesis")
    texts = list(ds.validation.texts)
    assert all(isinstance(t, tuple) and len(t) == 2 for t in texts)
    full = TorchClassifier(pair_ckpt).logits(texts)
    expected = float((full.argmax(1) == np.asarray(ds.validation.labels)).mean())
    assert result["reference_accuracy"] == pytest.approx(expected)
    assert result["reference_accuracy"] > 0.7  # pairs learned: chance is 0.5

    candidates = [p for p in result["points"] if p["key"] != "reference"]
    assert len(candidates) >= 2
    for p in candidates:
        m = read_manifest(Path(p["extra"]["bundle"]))
        assert tuple(m.input_fields) == ("text", "text_pair")
        assert m.metrics["metric"] == "accuracy"  # the pair task's budget metric
        assert p["accuracy"] == pytest.approx(float(m.metrics["bundle_accuracy"]))
    assert result["chosen"] is not None and (out / "bundle" / "manifest.json").is_file()
