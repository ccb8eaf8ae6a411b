import json

import numpy as np
import pytest

from lpm_edge.errors import ConfigError
from lpm_edge.export import export, load_recipe, preflight
from lpm_edge.export.onnx_graph import onnx_logits, quantize_dynamic_int8
from lpm_edge.export.recipe import QuantizeConfig, Recipe
from lpm_edge.export.sensitivity import auto_exclude, node_groups

TEXTS = ["a really great film", "awful boring plot", "the movie was fine", "dull and very poor acting"]
INT8_OPS = {"MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "QEmbedLayerNormalization", "QGemm"}


@pytest.fixture(scope="module")
def fused(tiny_fp32_bundle, tiny_checkpoint):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    enc = tokenizer(TEXTS, padding=True, return_tensors="np")
    feeds = [{k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}]
    graph = tiny_fp32_bundle / "model.onnx"
    return graph, feeds, np.concatenate(onnx_logits(graph, feeds))


def _int8_nodes(path):
    import onnx

    return sum(n.op_type in INT8_OPS for n in onnx.load(str(path)).graph.node)


def test_node_groups_follow_the_encoder_layers(fused):
    graph, _, _ = fused
    groups = node_groups(graph, ["MatMul", "Attention", "EmbedLayerNormalization", "Gather"])
    assert list(groups)[:3] == ["embeddings", "layer.0", "layer.1"] and list(groups)[-1] == "head"
    for layer in ("layer.0", "layer.1"):
        names = groups[layer]
        assert sum(n.startswith("Attention") for n in names) == 1  # fused: named by the consumer's layer
        assert sum("dense/MatMul" in n for n in names) == 3  # attention output, FFN in, FFN out
        assert all(layer in n for n in names if not n.startswith("Attention"))


def test_auto_exclude_returns_the_most_sensitive_layers_to_fp32(fused, tmp_path):
    graph, feeds, reference = fused

    def quantize(dst, exclude):
        quantize_dynamic_int8(graph, dst, tmp_path, True, exclude)

    everything = tmp_path / "all.onnx"
    quantize(everything, [])
    total = _int8_nodes(everything)
    groups = node_groups(graph, ["MatMul", "Attention", "EmbedLayerNormalization", "Gather"])
    # A stand-in accuracy drop: one point per int8 node, so the budget forces two layers out.
    final, report = auto_exclude(groups, tmp_path, quantize, _int8_nodes, total - 5, feeds, reference)
    assert set(report["sensitivity"]) == set(groups) and all(v >= 0 for v in report["sensitivity"].values())
    ranked = sorted(groups, key=lambda g: report["sensitivity"][g], reverse=True)
    assert report["excluded_groups"] == ranked[: len(report["excluded_groups"])]
    assert report["attempts"][0] == {"excluded": [], "accuracy_drop_points": total}
    assert report["attempts"][-1]["accuracy_drop_points"] <= total - 5 < report["attempts"][-2]["accuracy_drop_points"]
    assert _int8_nodes(final) == report["attempts"][-1]["accuracy_drop_points"]
    assert set(report["excluded_nodes"]) == {n for g in report["excluded_groups"] for n in groups[g]}


def test_auto_exclude_keeps_all_int8_when_the_budget_holds(fused, tmp_path):
    graph, feeds, reference = fused
    groups = node_groups(graph, ["MatMul", "Attention"])
    final, report = auto_exclude(
        groups, tmp_path, lambda dst, ex: quantize_dynamic_int8(graph, dst, tmp_path, True, ex),
        lambda path: 0.0, 0.5, feeds, reference)
    assert report["excluded_groups"] == [] and len(report["attempts"]) == 1
    assert _int8_nodes(final) >= 8


def test_export_with_auto_exclude_records_sensitivity(tiny_checkpoint, tmp_path):
    base = load_recipe("cpu-int8")
    recipe = base.replace(name="auto", quantize=QuantizeConfig(mode="dynamic", auto_exclude=True))
    out = export(tiny_checkpoint, tmp_path / "b", recipe, max_accuracy_drop=0.5)
    stage = json.loads((out / "manifest.json").read_text())["build"]["stages"]["int8_auto_exclude"]
    assert list(stage["sensitivity"]) == ["embeddings", "layer.0", "layer.1", "head"]
    assert stage["budget_points"] == 0.5 and stage["excluded_groups"] == []


def test_auto_exclude_needs_a_budget_and_int8(tiny_checkpoint, tmp_path):
    recipe = Recipe(name="x", quantize=QuantizeConfig(mode="dynamic", auto_exclude=True))
    with pytest.raises(ConfigError, match="--max-accuracy-drop"):
        export(tiny_checkpoint, tmp_path / "b", recipe)
    with pytest.raises(ConfigError, match="auto_exclude applies to int8"):
        preflight(Recipe(name="x", quantize=QuantizeConfig(mode="none", auto_exclude=True)))
