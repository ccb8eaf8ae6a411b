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
    # the check names its split and where it came from (file name only: a bundle ships elsewhere)
    assert m["metrics"]["split"] == "validation" and m["metrics"]["n"] == 40
    assert m["metrics"]["source"] == "tiny.csv (a 10% cut, seed 20240611)"
    lo, hi = m["metrics"]["accuracy_drop_ci95"]
    assert lo <= m["metrics"]["accuracy_drop_points"] <= hi


def test_max_accuracy_drop_refuses_and_writes_nothing(tiny_checkpoint, tmp_path):
    out = tmp_path / "never"
    # A negative budget demands a gain no bundle can make, so the check must refuse.
    with pytest.raises(AccuracyBudgetError, match="no bundle written"):
        export(tiny_checkpoint, out, "cpu-int8", max_accuracy_drop=-100)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["never.rejected"]  # the best effort, no temporary leftovers


def test_export_checks_on_a_given_validation_file_with_its_columns(tiny_checkpoint, tmp_path, capsys):
    from lpm_edge.cli import main

    val = tmp_path / "files" / "dev.tsv"
    val.parent.mkdir()
    val.write_text("sentence\ty\n" + "".join(f"a {'great' if i % 2 else 'awful'} film {i}\t{('neg', 'pos')[i % 2]}\n"
                                              for i in range(12)))
    out = tmp_path / "b"
    assert main(["-q", "export", str(tiny_checkpoint), "--recipe", "cpu-fp32", "--out", str(out), "--validation",
                 str(val), "--text-column", "sentence", "--label-column", "y", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["metrics"]
    assert (metrics["split"], metrics["source"], metrics["n"]) == ("validation", "dev.tsv", 12)
    with pytest.raises(AccuracyBudgetError, match=r"on 12 validation texts of .*dev.tsv, over the allowed"):
        export(tiny_checkpoint, tmp_path / "never", "cpu-fp32", validation=val, text_column="sentence",
               label_column="y", max_accuracy_drop=-100)


def test_existing_output_needs_force(tiny_checkpoint, tiny_bundle):
    with pytest.raises(ExportError, match="--force"):
        export(tiny_checkpoint, tiny_bundle, "cpu-int8")


def test_unknown_recipe_names_closest(tiny_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'cpu-int8'"):
        export(tiny_checkpoint, tmp_path / "b", "cpu-int9")


def test_fp32_fallback_routes_batches_by_length(tiny_checkpoint, tiny_fp32_bundle, tiny_bundle, tmp_path):
    import dataclasses

    from lpm_edge.bundle import pack_zip
    from lpm_edge.export.recipe import load_recipe

    recipe = load_recipe("cpu-int8")
    recipe = dataclasses.replace(recipe, name="int8-short-fp32",
                                 quantize=dataclasses.replace(recipe.quantize, fp32_tokens=(0, 8)))
    path = export(tiny_checkpoint, tmp_path / "mixed", recipe)
    m = json.loads((path / "manifest.json").read_text())
    assert m["schema_version"] == 3
    assert m["model"]["fp32_fallback"] == {"file": "model-fp32.onnx", "tokens": [0, 8]}
    assert set(m["files"]) == {"model.onnx", "model-fp32.onnx", "tokenizer.json"}
    from lpm_edge.cli import inspect_summary

    assert inspect_summary(path)["fp32_fallback"] == {"file": "model-fp32.onnx", "tokens": [0, 8]}
    short = ["great", "awful film", "fine", ""]  # at most 8 tokens with [CLS] and [SEP]
    long = ["superb lovely story " * 5, "a really great film with a very dull and poor plot"]
    fp32, int8 = lpm_edge.load(tiny_fp32_bundle, providers="cpu"), lpm_edge.load(tiny_bundle, providers="cpu")
    for mixed in (lpm_edge.load(path, providers="cpu"), lpm_edge.load(pack_zip(path, tmp_path / "m.zip"))):
        got = mixed.logits(short + long)  # one call: the batcher must split at the 8-token boundary
        np.testing.assert_allclose(got[:4], fp32.logits(short), atol=1e-5)
        np.testing.assert_allclose(got[4:], int8.logits(long), atol=1e-5)
        assert not np.allclose(got[4:], fp32.logits(long), atol=1e-5)  # the long ones really ran int8


def test_fp32_fallback_needs_int8(tiny_checkpoint, tmp_path):
    from lpm_edge.export.recipe import Recipe

    with pytest.raises(ConfigError, match="fp32_tokens falls back from int8"):
        Recipe.from_dict({"name": "x", "quantize": {"mode": "none", "fp32_tokens": [0, 8]}})
    with pytest.raises(ConfigError, match=r"must be \[low, high\]"):
        Recipe.from_dict({"name": "x", "quantize": {"mode": "dynamic", "fp32_tokens": [9, 8]}})
