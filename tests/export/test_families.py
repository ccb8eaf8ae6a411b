"""Every encoder family: adapters prune exactly what they should, and each family goes through
train, every CPU recipe, parity, runtime load and predict (tiny random models built here)."""

import copy
import json
import logging

import numpy as np
import pytest
import torch

import lpm_edge
from lpm_edge.errors import ConfigError
from lpm_edge.export import export, load_recipe
from lpm_edge.export import prune as P
from lpm_edge.export.recipe import DistillConfig
from lpm_edge.families import adapter_for, check_capabilities
from lpm_edge.reference import TorchClassifier

TEXTS = ["a really great film", "awful boring plot", "the movie was fine", "dull and very poor acting",
         "superb lovely story " * 20, ""]
FAMILIES = ("bert", "roberta", "xlm-roberta", "electra", "distilbert", "mpnet", "deberta-v2", "modernbert")
NO_HEADS = {"mpnet", "deberta-v2", "modernbert"}  # families whose heads stay (see each adapter's no_heads)
ATTENTION_FUSED = {"bert", "roberta", "xlm-roberta", "electra", "distilbert"}


def _model(path, family):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(
        path, attn_implementation=adapter_for(family).attn_implementation).eval()


def _load(path, family):
    from transformers import AutoTokenizer

    return _model(path, family), AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module", params=FAMILIES)
def tiny_family(request, tmp_path_factory, family_model):
    family = request.param
    return family, family_model(tmp_path_factory.mktemp("families") / family, family, layers=3)


def test_pruning_removes_exactly_what_it_should(tiny_family, tmp_path):
    family, path = tiny_family
    model, tokenizer = _load(path, family)
    fam = adapter_for(family)
    x = dict(tokenizer(TEXTS[:4], padding=True, return_tensors="pt"))
    heads, ffn = P.gradient_importance(model, [(x, torch.tensor([1, 0, 1, 0]))])
    assert heads.shape == (3, 4) and ffn.shape == (3, 64) and (heads > 0).any() and (ffn > 0).any()
    keep_layers = (0, 1) if family == "modernbert" else (0, 2)  # ModernBERT: global attention every 2nd layer
    plan = P.plan(heads, ffn, 0.0 if family in NO_HEADS else 0.5, 0.25, keep_layers)
    student = copy.deepcopy(model)
    P.apply(student, plan)

    heads_left = 4 if family in NO_HEADS else 2
    assert P.shape(student)["layers"] == len(keep_layers) and P.shape(student)["heads"] == heads_left
    for layer, keep in zip(fam.layers(student), plan.keep_neurons):
        assert len(keep) == 48
        assert layer.get_submodule(fam.ffn_out).weight.shape == (32, 48)  # (hidden, I')
        gated = 2 if family == "modernbert" else 1  # ModernBERT's Wi holds input and gate halves
        assert layer.get_submodule(fam.ffn_in).weight.shape == (48 * gated, 32)
        assert layer.get_submodule(fam.attn_out).weight.shape == (32, heads_left * 8)  # head size 8
    # the kept neurons are the original ones: the first kept layer's FFN input rows are a subset
    old = fam.layers(model)[keep_layers[0]].get_submodule(fam.ffn_out).weight[:, list(plan.keep_neurons[0])]
    torch.testing.assert_close(fam.layers(student)[0].get_submodule(fam.ffn_out).weight, old)
    untouched = _model(path, family).state_dict()
    assert all(torch.equal(v, untouched[k]) for k, v in model.state_dict().items())

    student.save_pretrained(tmp_path)  # still loadable, same function
    loaded = _model(tmp_path, family)
    assert P.shape(loaded) == P.shape(student)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**x).logits, student(**x).logits)


def test_magnitude_importance_finds_a_dead_neuron(tiny_family):
    family, path = tiny_family
    model = _model(path, family)
    fam = adapter_for(family)
    with torch.no_grad():
        fam.layers(model)[1].get_submodule(fam.ffn_out).weight[:, 5] = 0  # neuron 5 reaches nothing
    heads, ffn = P.magnitude_importance(model)
    assert heads.shape == (3, 4) and ffn[1, 5] == ffn[1].min() == 0


def test_heads_of_a_family_that_keeps_them_are_refused(tiny_family):
    family, path = tiny_family
    if family not in NO_HEADS:
        pytest.skip("this family's heads can be pruned")
    model = _model(path, family)
    plan = P.PrunePlan((0, 1, 2), {0: (1,), 1: (1,), 2: (1,)}, tuple(tuple(range(64)) for _ in range(3)))
    with pytest.raises(lpm_edge.errors.ExportError, match="keep their heads"):
        P.apply(model, plan)


def test_modernbert_layers_go_in_whole_periods(family_model, tmp_path):
    from lpm_edge.export.compress import _keep_layers
    from lpm_edge.export.recipe import PruneConfig

    path = family_model(tmp_path / "mb", "modernbert", layers=5)  # global attention at layers 0, 2, 4
    model = _model(path, "modernbert")
    assert adapter_for("modernbert").layer_period(model.config) == 2
    x = {"input_ids": torch.tensor([[2, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 3]]),
         "attention_mask": torch.ones(1, 13, dtype=torch.long)}  # longer than the local window of 8

    def keep(n, how="even"):
        return _keep_layers(model, PruneConfig(layers=n, layer_selection=how), [(x, torch.tensor([1]))], 5, 2)

    assert keep(1) == keep(2) == (0, 1) and keep(3) == (0, 1, 4) and keep(5) == tuple(range(5))
    assert keep(3, "importance") in ((0, 1, 2, 3), (0, 1, 4))  # the first block stays, whole blocks go
    with pytest.raises(lpm_edge.errors.ExportError, match="whole blocks of 2"):
        adapter_for("modernbert").keep_layers(copy.deepcopy(model), (0, 2))  # layer 2 is global, new index 1 local
    student = copy.deepcopy(model)
    P.apply(student, P.PrunePlan((0, 1, 4), {}, tuple(tuple(range(64)) for _ in range(3))))
    student.save_pretrained(tmp_path / "pruned")
    loaded = _model(tmp_path / "pruned", "modernbert")
    kinds = [l.attn.local_attention for l in adapter_for("modernbert").layers(loaded)]
    assert kinds == [l.attn.local_attention for l in adapter_for("modernbert").layers(student)]
    with torch.no_grad():
        torch.testing.assert_close(loaded(**x).logits, student(**x).logits)


def test_unknown_family_is_refused_with_the_supported_ones():
    with pytest.raises(ConfigError, match="'albert'.*use one of .*distilbert.*modernbert"):
        adapter_for({"model_type": "albert"})


def test_capabilities_say_what_a_recipe_skips(caplog):
    recipe = load_recipe("cpu-pruned-int8")
    with caplog.at_level(logging.WARNING, logger="lpm_edge.families"):
        notes = check_capabilities({"model_type": "modernbert"}, recipe)
    assert any("prune.heads" in n and "heads stay" in n for n in notes)
    assert any("Attention" in n for n in notes) and not any("prune.layers" in n for n in notes)
    assert len(caplog.records) == len(notes)
    assert check_capabilities({"model_type": "bert"}, recipe) == []


def test_train_refuses_a_family_export_cannot_handle(tmp_path, tiny_model):
    from lpm_edge.train import resolve_model_dir

    bad = tmp_path / "albert"
    bad.mkdir()
    for f in tiny_model.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    config = json.loads((bad / "config.json").read_text())
    (bad / "config.json").write_text(json.dumps({**config, "model_type": "albert"}))
    with pytest.raises(ConfigError, match="no family adapter"):
        resolve_model_dir(bad)


# -- every family through train and each CPU recipe (slow) ---------------------------------------

@pytest.fixture(scope="module", params=FAMILIES)
def family_checkpoint(request, tmp_path_factory, family_model, tiny_config):
    from lpm_edge.train import train

    family = request.param
    root = tmp_path_factory.mktemp(f"family-{family}")
    model = family_model(root / "model", family)
    return family, train(tiny_config(root / "checkpoint", model=model))


def _recipe(name):
    recipe = load_recipe(name)
    if recipe.distill.steps:  # the shipped step budget is for MiniLM; a tiny model needs few
        recipe = recipe.replace(distill=DistillConfig(**{**recipe.distill.__dict__, "steps": 40}))
    return recipe


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["cpu-fp32", "cpu-int8", "cpu-pruned-int8", "cpu-narrow-int8", "cuda-fp16",
                                    "cuda-int8"])
def test_family_exports_passes_parity_and_predicts(family_checkpoint, recipe, tmp_path, caplog, capsys):
    family, ckpt = family_checkpoint
    with caplog.at_level(logging.INFO, logger="lpm_edge"):
        out = export(ckpt, tmp_path / recipe, _recipe(recipe))
    m = json.loads((out / "manifest.json").read_text())
    stages = m["build"]["stages"]
    assert all(v <= 1e-3 for v in stages["fp32_parity_max_abs_diff"].values())
    assert m["metrics"]["parity"]["argmax_agreement"] >= 0.95
    fusion = stages.get("fusion")
    if fusion is None:  # cuda-int8: an unfused QDQ graph for TensorRT
        assert recipe == "cuda-int8"
    elif family in ATTENTION_FUSED:
        assert fusion["counts"]["attention"] == m["source"]["compression"].get("layers", {}).get("after", 2)
    else:  # no attention fusion, said in the log and the manifest
        assert fusion["counts"]["attention"] == 0 and "Attention" in fusion["unfused"]
        assert any(family in r.getMessage() and "attention stays unfused" in r.getMessage() for r in caplog.records)
    if fusion is not None:
        assert fusion["family"] == adapter_for(family).name
        assert fusion["counts"]["layernorm"] > 0 and fusion["counts"]["gelu"] > 0
        from lpm_edge.cli import main

        assert main(["inspect", str(out)]) == 0
        shown = capsys.readouterr().out
        assert "fusions     " in shown
        # CPU graphs keep each residual Add apart from its LayerNormalization (ORT's fused CPU kernel is slower)
        fused_line = shown.split("fusions")[1].splitlines()[0]
        assert ("SkipLayerNormalization" in fused_line) == recipe.startswith("cuda")
        assert fusion["skip_layer_norm"] == recipe.startswith("cuda")
        assert ("Attention" in shown.split("fusions")[1].splitlines()[0]) == (family in ATTENTION_FUSED)
        assert ("unfused     " in shown) == bool(adapter_for(family).fusion.missing)
    has_types = family in ("bert", "electra")
    assert ("token_type_ids" in m["model"]["inputs"]) == has_types

    clf = lpm_edge.load(out, providers="cpu")
    got = clf.logits(TEXTS)
    assert got.shape == (len(TEXTS), 2) and np.isfinite(got).all()
    expected = TorchClassifier(ckpt).logits(TEXTS)
    if recipe == "cpu-fp32":
        np.testing.assert_allclose(got, expected, atol=1e-4)
    else:
        assert (got.argmax(1) == expected.argmax(1)).mean() >= 5 / 6
    pruned = {"cpu-pruned-int8": (3, 32), "cpu-narrow-int8": (2, 16)}  # heads and FFN left of 4 and 64
    if recipe in pruned:
        heads, ffn = pruned[recipe]
        c = m["source"]["compression"]
        assert c["ffn"] == {"before": 64, "after": ffn}
        assert c["heads"]["after"] == (4 if family in NO_HEADS else heads)
        assert ("skipped" in c) == (family in NO_HEADS)


@pytest.mark.parametrize("family, expected", [
    ("deberta-v2", ["input_ids", "attention_mask"]),  # DeBERTa-v3's tokenizer makes token types; the model ignores them
    ("roberta", ["input_ids", "attention_mask", "token_type_ids"]),  # a table of one type: zeros are valid
    ("distilbert", ["input_ids", "attention_mask"]),  # forward() takes none
])
def test_graph_inputs_are_what_the_model_uses(family, expected, family_model, tmp_path):
    import onnx
    from transformers import AutoTokenizer

    from lpm_edge.export.onnx_graph import input_names, to_onnx

    path = family_model(tmp_path / family, family)
    tokenizer = AutoTokenizer.from_pretrained(path, model_input_names=["input_ids", "token_type_ids", "attention_mask"])
    model = _model(path, family)
    names = input_names(model, tokenizer)
    assert names == expected
    to_onnx(model, names, tmp_path / "raw.onnx", 17)
    assert [i.name for i in onnx.load(str(tmp_path / "raw.onnx")).graph.input] == expected


def test_export_refuses_an_unknown_family_before_any_work(tiny_checkpoint, tmp_path):
    import shutil

    ckpt = tmp_path / "albert"
    shutil.copytree(tiny_checkpoint, ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**config, "model_type": "albert"}))
    with pytest.raises(ConfigError, match="'albert'.*no family adapter"):
        export(ckpt, tmp_path / "out", "cpu-int8")
    assert not (tmp_path / "out").exists()
