import json

import pytest
from transformers import AutoModelForSequenceClassification

from lpm_edge.errors import ConfigError
from lpm_edge.train import TrainConfig, read_training_info, train


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


def test_python_api_is_callable_after_the_subpackage_is_imported(tmp_path, tiny_config):
    import torch

    import lpm_edge
    import lpm_edge.train  # binds the subpackage as lpm_edge.train, where the verb was

    threads = torch.get_num_threads()
    out = lpm_edge.train(tiny_config(tmp_path / "api", epochs=1, threads=1))
    assert out == tmp_path / "api" and (out / "training.json").is_file()
    assert lpm_edge.TrainConfig is TrainConfig
    assert torch.get_num_threads() == threads  # --threads applies to the run only
    assert read_training_info(out)["threads"] == 1


def test_string_labels_map_to_ids_in_a_stable_order_and_travel_with_the_checkpoint(tmp_path, tiny_config):
    rows = [{"review": f"{w} film {i}", "stars": s} for i, (w, s) in enumerate(
            (("great", "high"), ("awful", "low"), ("fine", "mid"), ("superb", "high"), ("dull", "low"),
             ("lovely", "mid")) * 10)]  # distinct texts: a text in two splits would be dropped
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = train(tiny_config(tmp_path / "ckpt", data=str(data), text_column="review", label_column="stars",
                            epochs=1))
    model = AutoModelForSequenceClassification.from_pretrained(out, local_files_only=True)
    assert model.config.id2label == {0: "high", 1: "low", 2: "mid"}
    assert model.config.num_labels == 3
    info = read_training_info(out)
    assert info["labels"] == ["high", "low", "mid"]
    assert info["data"]["text_column"] == "review" and info["data"]["label_column"] == "stars"


def test_training_logs_progress_lines_off_a_terminal(tmp_path, tiny_config, monkeypatch, caplog):
    import io
    import logging
    import sys

    from lpm_edge import progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a TTY
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)  # a line per step
    with caplog.at_level(logging.INFO, logger="lpm_edge.train"):
        train(tiny_config(tmp_path / "ckpt", max_steps=3, epochs=1))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("train: ")]
    assert lines[0].startswith("train: 1/3 steps (33.3%)") and "left" in lines[0]
    assert lines[-1].startswith("train: 3/3 steps (100.0%)")
