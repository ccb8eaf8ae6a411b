import json

import pytest
from transformers import AutoModelForSequenceClassification

from lpm_edge.errors import ConfigError
from lpm_edge.train import TrainConfig, read_training_info


def test_tiny_model_learns_separable_task(tiny_checkpoint):
    info = read_training_info(tiny_checkpoint)
    assert info["test"]["accuracy"] >= 0.9, info["test"]
    assert info["labels"] == ["neg", "pos"]
    assert [e["epoch"] for e in info["epochs"]] == [1.0, 2.0, 3.0, 4.0]
    assert {"accuracy", "macro_f1", "loss"} <= set(info["epochs"][-1])


def test_checkpoint_loads_in_transformers_with_label_mapping(tiny_checkpoint):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint, local_files_only=True)
    assert model.config.id2label == {0: "neg", 1: "pos"}
    assert model.config.label2id == {"neg": 0, "pos": 1}
    assert json.loads((tiny_checkpoint / "training.json").read_text())["config"]["model"]


@pytest.mark.parametrize(
    "kwargs, message",
    [({"device": "tpu"}, "device"), ({"batch_size": 0}, "batch_size"), ({"learning_rate": 3.0}, "learning_rate"),
     ({"metric": "f2"}, "metric")],
)
def test_bad_config_is_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)
