from pathlib import Path

import pytest

from lpm_edge.errors import ConfigError
from lpm_edge.export.recipe import Recipe, builtin_names, load_recipe

ROOT = Path(__file__).resolve().parents[2]


def test_builtin_recipes_load_and_round_trip():
    names = builtin_names()
    assert {"cpu-fp32", "cpu-int8", "cpu-pruned-int8", "cpu-narrow-int8", "cuda-fp16", "cuda-int8"} <= set(names)
    for name in names:
        recipe = load_recipe(name)
        assert recipe.name == name
        assert Recipe.from_dict(_tomlable(recipe.to_dict())) == recipe


def _tomlable(d):
    return {k: (_tomlable(v) if isinstance(v, dict) else list(v) if isinstance(v, tuple) else v)
            for k, v in d.items() if v is not None}


def test_top_level_export_folder_holds_the_packaged_recipes():
    packaged = ROOT / "lpm_edge" / "export" / "recipes"
    for path in packaged.glob("*.toml"):
        assert (ROOT / "export" / path.name).read_text() == path.read_text(), path.name


@pytest.mark.parametrize(
    "text, message",
    [
        ('name = "x"\n[quantize]\nmdoe = "dynamic"\n', "did you mean 'quantize.mode'"),
        ('name = "x"\ntarget = "tpu"\n', "target"),
        ('name = "x"\n[quantize]\nmode = "int4"\n', "quantize.mode"),
        ('name = "x"\n[prune]\nheads = 1.5\n', "prune.heads"),
        ('name = "x"\n[prune]\nlayer_selection = "random"\n', "prune.layer_selection"),
        ('name = "x"\n[prune]\nlayer = 4\n', "did you mean 'prune.layers'"),
        ('name = "x"\n[distill]\nsteps = -1\n', "steps >= 0"),
        ('name = "x"\n[distill]\nsimilarity_weight = -1.0\n', "similarity_weight=-1.0 must be >= 0"),
        ('name = "x"\n[prune]\nlayers = "4"\n', "prune.layers"),
        ('name = "x"\n[check]\nmax_accuracy_drop = "1"\n', "check.max_accuracy_drop"),
        ('name = "x"\n[quantize]\ncalibration_samples = 0\n', "calibration_samples"),
        ('name = "x"\n[optimize]\nfusion = "yes"\n', "true or false"),
        ('description = "no name"\n', "missing key 'name'"),
        ('name = "x"\nopset = "17"\n', "must be int"),
        ("name = [", "not valid TOML"),
    ],
)
def test_bad_recipes_are_refused_with_the_fix(tmp_path, text, message):
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_recipe(path)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "nope.toml")


def test_reduce_range_needs_int8():
    ok = Recipe.from_dict({"name": "r", "quantize": {"mode": "dynamic", "reduce_range": True}})
    assert ok.quantize.reduce_range is True
    with pytest.raises(ConfigError, match="reduce_range .* needs mode 'dynamic' or 'static'"):
        Recipe.from_dict({"name": "r", "quantize": {"mode": "none", "reduce_range": True}})


def test_pruned_recipe_uses_7_bit_weights():
    # Its accuracy then holds on CPUs without VNNI too (benchmarks/results/u8s8_saturation_demo.md).
    from lpm_edge.export import load_recipe

    assert load_recipe("cpu-pruned-int8").quantize.reduce_range is True
    assert load_recipe("cpu-int8").quantize.reduce_range is False
