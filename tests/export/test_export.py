import json

import numpy as np
import pytest

import lpm_edge
from lpm_edge.errors import AccuracyBudgetError, ConfigError, ExportError
from lpm_edge.export import export
from lpm_edge.reference import TorchClassifier

TEXTS = ["a really great film", "awful boring plot", "the movie was fine", "", "dull and very poor acting",
         "superb lovely story " * 20]


def test_fp32_bundle_matches_pytorch(tiny_fp32_bundle, tiny_checkpoint):
    torch_logits = TorchClassifier(tiny_checkpoint, attn_implementation="eager").logits(TEXTS)
    bundle_logits = lpm_edge.load(tiny_fp32_bundle, providers="cpu").logits(TEXTS)
    np.testing.assert_allclose(bundle_logits, torch_logits, atol=1e-4)


def test_int8_bundle_agrees_with_pytorch(tiny_bundle, tiny_checkpoint):
    torch_pred = TorchClassifier(tiny_checkpoint).logits(TEXTS).argmax(1)
    bundle_pred = lpm_edge.load(tiny_bundle, providers="cpu").logits(TEXTS).argmax(1)
    assert (torch_pred == bundle_pred).mean() >= 5 / 6


def test_manifest_records_recipe_parity_fusion_and_metrics(tiny_bundle):
    m = json.loads((tiny_bundle / "manifest.json").read_text())
    assert m["recipe"]["name"] == "cpu-int8"
    assert m["model"]["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert m["model"]["outputs"] == ["logits"]
    assert m["build"]["stages"]["fusion"]["counts"]["attention"] == 2  # one per layer
    assert m["metrics"]["parity"]["argmax_agreement"] >= 0.9
    assert m["metrics"]["bundle_accuracy"] >= 0.9
    assert "avx2" in m["build"]["machine"]["cpu"]["flags"]


def test_max_accuracy_drop_refuses_and_writes_nothing(tiny_checkpoint, tmp_path):
    out = tmp_path / "never"
    # A negative budget demands a gain no bundle can make, so the check must refuse.
    with pytest.raises(AccuracyBudgetError, match="no bundle written"):
        export(tiny_checkpoint, out, "cpu-int8", max_accuracy_drop=-100)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir()]  # no temporary leftovers


def test_existing_output_needs_force(tiny_checkpoint, tiny_bundle):
    with pytest.raises(ExportError, match="--force"):
        export(tiny_checkpoint, tiny_bundle, "cpu-int8")


def test_unknown_recipe_names_closest(tiny_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'cpu-int8'"):
        export(tiny_checkpoint, tmp_path / "b", "cpu-int9")
