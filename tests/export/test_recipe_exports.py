"""Each built-in recipe that can build on a CPU exports, passes parity and loads in the runtime."""

import json

import numpy as np
import pytest

import lpm_edge
from lpm_edge.errors import ConfigError
from lpm_edge.export import export, load_recipe, preflight
from lpm_edge.export.recipe import DistillConfig, OptimizeConfig, QuantizeConfig, Recipe
from lpm_edge.reference import TorchClassifier

TEXTS = ["a really great film", "awful boring plot", "the movie was fine", "dull and very poor acting",
         "superb lovely story " * 20, ""]


def _recipe(name):
    recipe = load_recipe(name)
    if recipe.distill.steps:  # the shipped step budget is for MiniLM; a tiny model needs few
        checks = {"eval_every": 20} if recipe.distill.eval_every else {}  # early stopping checks twice
        recipe = recipe.replace(distill=DistillConfig(**{**recipe.distill.__dict__, "steps": 40, **checks}))
    return recipe


# What each pruned recipe leaves of the tiny model (2 layers, 4 heads, FFN 64): heads and FFN after.
PRUNED = {"cpu-pruned-int8": (3, 32), "cpu-narrow-int8": (2, 16)}  # a third / half of 4 heads, rounded


@pytest.fixture(scope="module", params=["cpu-pruned-int8", "cpu-narrow-int8", "cuda-fp16", "cuda-int8"])
def exported(request, tiny_checkpoint, tmp_path_factory):
    name = request.param
    out = export(tiny_checkpoint, tmp_path_factory.mktemp("recipes") / name, _recipe(name))
    return name, out, json.loads((out / "manifest.json").read_text())


def test_recipe_exports_passes_parity_and_loads(exported, tiny_checkpoint):
    name, bundle, manifest = exported
    assert manifest["recipe"]["name"] == name
    metrics = manifest["metrics"]
    assert metrics["parity"]["argmax_agreement"] >= 0.95
    assert metrics["accuracy_drop_points"] <= load_recipe(name).check.max_accuracy_drop
    assert all(v <= 1e-3 for v in manifest["build"]["stages"]["fp32_parity_max_abs_diff"].values())
    clf = lpm_edge.load(bundle, providers="cpu")
    got = clf.logits(TEXTS)
    assert got.shape == (len(TEXTS), 2) and got.dtype == np.float32 and np.isfinite(got).all()
    expected = TorchClassifier(tiny_checkpoint).logits(TEXTS)
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 5 / 6


def test_pruned_recipe_records_compression(exported):
    name, _, manifest = exported
    compression = manifest["source"]["compression"]
    if name not in PRUNED:
        assert compression == {}
        return
    heads, ffn = PRUNED[name]
    assert compression["heads"] == {"before": 4, "after": heads}
    assert compression["ffn"] == {"before": 64, "after": ffn}
    assert compression["layers"] == {"before": 2, "after": 2}  # 4 asked, the tiny model has 2
    assert compression["distill"]["steps"] == 40
    if load_recipe(name).distill.eval_every:  # early stopping measured twice and kept the better student
        stopping = compression["distill"]["early_stopping"]
        curve = stopping["curve"]  # [step, accuracy, divergence] per check
        assert [c[0] for c in curve] == [20, 40]
        assert stopping["best_step"] == max(curve, key=lambda c: (c[1], -c[2]))[0]
    fusion = manifest["build"]["stages"]["fusion"]
    assert fusion["num_heads"] == heads and fusion["hidden_size"] == heads * 8 and fusion["counts"]["attention"] == 2
    vocab = compression["vocab"]
    removed_rows = (vocab["before"] - vocab["after"]) * 32  # hidden size 32
    assert manifest["source"]["parameters"] == compression["parameters"]["after"] - removed_rows


def test_inspect_shows_compression(exported, capsys):
    from lpm_edge.cli import main

    name, bundle, manifest = exported
    assert main(["inspect", str(bundle)]) == 0
    shown = capsys.readouterr().out
    if name in PRUNED:
        heads, ffn = PRUNED[name]
        assert f"compressed  layers 2→2, heads 4→{heads}, ffn 64→{ffn}, vocab" in shown and "distilled 40 steps" in shown
    else:
        assert "compressed" not in shown


def test_cpu_graphs_keep_residual_norms_apart(exported):
    name, _, manifest = exported
    fusion = manifest["build"]["stages"].get("fusion")
    if fusion is None:  # cuda-int8: an unfused QDQ graph
        return
    assert fusion["skip_layer_norm"] == name.startswith("cuda")
    assert bool(fusion["operators"].get("SkipLayerNormalization")) == name.startswith("cuda")


def test_precision_of_the_graph(exported):
    import onnx
    from onnx import TensorProto

    name, bundle, manifest = exported
    model = onnx.load(str(bundle / "model.onnx"))
    onnx.checker.check_model(model)
    inputs = {i.name: i.type.tensor_type.elem_type for i in model.graph.input}
    assert set(inputs.values()) == {TensorProto.INT64}
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT  # logits stay fp32
    ops = {n.op_type for n in model.graph.node}
    weights = [i for i in model.graph.initializer if len(i.dims) == 2]
    if name == "cuda-fp16":
        assert {w.data_type for w in weights} == {TensorProto.FLOAT16}
        assert "Attention" in ops  # fused before conversion
    elif name == "cuda-int8":
        assert manifest["build"]["stages"]["calibration_texts"] == 256
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "Attention" not in ops  # unfused, QDQ
        int8 = {w.name for w in weights if w.data_type == TensorProto.INT8}
        assert len(int8) >= 2 * 6  # q, k, v, out, ffn in, ffn out per layer
        # TensorRT needs symmetric activations: every activation zero point is an int8 zero
        zero_points = [i for i in model.graph.initializer
                       if i.name.endswith("_zero_point") and i.data_type != TensorProto.INT32]  # int32: biases
        assert zero_points and all(z.data_type == TensorProto.INT8 for z in zero_points)
        assert all(not onnx.numpy_helper.to_array(z).any() for z in zero_points)
    else:
        assert "QAttention" in ops or "DynamicQuantizeMatMul" in ops or "MatMulInteger" in ops


@pytest.mark.gpu
def test_cuda_recipe_runs_on_the_cuda_provider(exported):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu and an NVIDIA GPU")
    name, bundle, _ = exported
    if not name.startswith("cuda"):
        pytest.skip("a CPU recipe")
    clf = lpm_edge.load(bundle, providers="cuda")
    assert clf.providers[0] == "CUDAExecutionProvider"
    cpu = lpm_edge.load(bundle, providers="cpu").logits(TEXTS)
    np.testing.assert_allclose(clf.logits(TEXTS), cpu, atol=5e-2)


@pytest.mark.parametrize(
    "recipe, message",
    [
        (Recipe(name="x", target="cpu", quantize=QuantizeConfig(mode="fp16")), "fp16 has no fast CPU kernels"),
        (Recipe(name="x", target="cuda", quantize=QuantizeConfig(mode="dynamic")), "use the cuda-fp16 recipe"),
        (Recipe(name="x", target="cuda", quantize=QuantizeConfig(mode="static")), "optimize.fusion = false"),
    ],
)
def test_preflight_refuses_known_traps(recipe, message):
    with pytest.raises(ConfigError, match=message):
        preflight(recipe)


def test_preflight_accepts_the_builtin_recipes():
    for name in ("cpu-fp32", "cpu-int8", "cpu-pruned-int8", "cpu-narrow-int8", "cuda-fp16", "cuda-int8"):
        preflight(load_recipe(name))
    preflight(Recipe(name="x", target="cuda", optimize=OptimizeConfig(fusion=False),
                     quantize=QuantizeConfig(mode="static")))


def test_preflight_runs_before_any_work(tiny_checkpoint, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ntarget = "cpu"\n[quantize]\nmode = "fp16"\n')
    with pytest.raises(ConfigError, match="cpu-int8"):
        export(tiny_checkpoint, tmp_path / "out", bad)
    assert not (tmp_path / "out").exists()
