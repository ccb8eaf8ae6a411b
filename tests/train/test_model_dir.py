"""A model directory that transformers cannot load as it is gets a ConfigError with the fix;
code shipped with a model is never run (trust_remote_code stays off)."""

import json
import shutil

import pytest

from lpm_edge.errors import ConfigError
from lpm_edge.train import read_training_info, train

# Python that a model could ship (auto_map): importing it would leave a marker file
EVIL = "import pathlib\npathlib.Path(__file__).with_name('RAN').write_text('remote code ran')\n"


def plant_remote_code(directory, model_type=None):
    (directory / "evil.py").write_text(EVIL)
    config = json.loads((directory / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig",
                          "AutoModelForSequenceClassification": "evil.EvilModel"}
    if model_type:
        config["model_type"] = model_type
    (directory / "config.json").write_text(json.dumps(config))
    tok = json.loads((directory / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", "evil.EvilTokenizer"]}
    (directory / "tokenizer_config.json").write_text(json.dumps(tok))


@pytest.fixture
def model_copy(tmp_path, tiny_model):
    return shutil.copytree(tiny_model, tmp_path / "model")


def broken(kind, path):
    if kind == "missing":
        return path / "nowhere"
    if kind == "file":
        (path / "weights.bin").write_bytes(b"x")
        return path / "weights.bin"
    if kind == "no config.json":
        (path / "config.json").unlink()
    elif kind == "bad config.json":
        (path / "config.json").write_text("{not json")
    elif kind == "unknown architecture":
        (path / "config.json").write_text(json.dumps({"model_type": "llama-but-not-really"}))
    elif kind == "custom code":
        plant_remote_code(path, model_type="evil-bert")
    elif kind == "no weights":
        (path / "model.safetensors").unlink()
    elif kind == "no tokenizer":
        (path / "tokenizer.json").unlink()
    return path


@pytest.mark.parametrize("kind, message", [
    ("missing", r"does not exist; pass a directory written by save_pretrained\(\)"),
    ("file", "is a file, not a directory"),
    ("no config.json", r"not a Hugging Face model directory \(no config.json\); pass a directory written by"),
    ("bad config.json", "not valid JSON"),
    ("unknown architecture", "'llama-but-not-really' has no sequence-classification model in transformers"),
    ("custom code", r"never runs such code \(trust_remote_code stays off\)"),
    ("no weights", r"has no weights \(model.safetensors or pytorch_model.bin\)"),
    ("no tokenizer", r"no tokenizer files .* tokenizer.save_pretrained"),
])
def test_not_a_loadable_model_dir_gives_config_error_with_the_fix(tmp_path, model_copy, tiny_config, kind, message):
    model = broken(kind, model_copy)
    with pytest.raises(ConfigError, match=message):
        train(tiny_config(tmp_path / "out", model=model))
    assert not (model_copy / "RAN").exists()


def test_a_known_architecture_shipping_code_trains_with_the_built_in_class(tmp_path, model_copy, tiny_config):
    plant_remote_code(model_copy)  # model_type stays "bert": transformers has it, so no code is needed
    out = train(tiny_config(tmp_path / "out", model=model_copy, epochs=1))
    assert not (model_copy / "RAN").exists()
    assert read_training_info(out)["architecture"] == "bert"
