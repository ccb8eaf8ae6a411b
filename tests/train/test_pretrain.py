"""`pretrain`: continued masked-LM training on unlabelled text, giving a model `train` fine-tunes."""

import json
import logging

import pytest

from lpm_edge.cli import main
from lpm_edge.data import split_by_movie, unlabelled_texts
from lpm_edge.errors import ConfigError

from ..conftest import synthetic_rows


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("texts") / "plots.txt"
    path.write_text("\n\n".join(t for t, _ in synthetic_rows(300, seed=7)) + "\n")
    return path


def _state(path, cls):
    return cls.from_pretrained(path).state_dict()


@pytest.mark.slow
def test_pretrain_lowers_the_held_out_loss_and_train_fine_tunes_the_result(tiny_model, text_file, tmp_path, caplog,
                                                                           tiny_config):
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    from lpm_edge.train import PretrainConfig, pretrain, train
    from lpm_edge.train.pretrain import PRETRAINING_JSON

    out = tmp_path / "adapted"
    with caplog.at_level(logging.INFO, logger="lpm_edge.train"):
        pretrain(PretrainConfig(out=out, text=text_file, model=tiny_model, max_steps=40, learning_rate=3e-3,
                                batch_size=16, max_length=32, threads=1))
    assert "has no masked-LM head; a new one is initialised" in caplog.text  # a classifier checkpoint has none
    info = json.loads((out / PRETRAINING_JSON).read_text())
    loss = info["held_out_mlm_loss"]
    assert loss["after"] < loss["before"] - 0.3, loss
    assert info["sizes"] == {"train": 285, "held_out": 15} and info["steps"] == 40
    assert any(k.startswith("cls.predictions") for k in info["new_mlm_head"])

    base, adapted = _state(tiny_model, AutoModel), _state(out, AutoModel)
    assert base.keys() == adapted.keys()
    for k in base:  # the pooler is carried over; the encoder moved
        if k.startswith("pooler."):
            torch.testing.assert_close(adapted[k], base[k], rtol=0, atol=0)
    assert not torch.equal(adapted["encoder.layer.0.attention.self.query.weight"],
                           base["encoder.layer.0.attention.self.query.weight"])
    _, loading = AutoModelForSequenceClassification.from_pretrained(out, num_labels=2, output_loading_info=True)
    assert sorted(loading["missing_keys"]) == ["classifier.bias", "classifier.weight"]

    checkpoint = train(tiny_config(tmp_path / "checkpoint", model=out, epochs=1))
    assert json.loads((checkpoint / "training.json").read_text())["base_model"] == str(out)


def test_cli_pretrain_on_a_csv_column(tiny_model, tmp_path, capsys):
    from ..conftest import write_csv

    data = write_csv(tmp_path / "d.csv", synthetic_rows(60))
    out = tmp_path / "m"
    assert main(["pretrain", "--model", str(tiny_model), "--text", str(data), "--out", str(out), "--max-steps", "2",
                 "--batch-size", "8", "--max-length", "32", "--threads", "1"]) == 0
    assert f"next: lpm-edge train --model {out}" in capsys.readouterr().out
    assert main(["pretrain", "--model", str(tiny_model), "--text", str(data), "--out", str(out)]) == 1
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(["pretrain", "--model", str(tiny_model), "--text", str(tmp_path / "nope.txt"), "--out",
                 str(tmp_path / "x")]) == 1
    assert "neither a built-in name (rotten-tomatoes-plots, rotten-tomatoes) nor a file" in capsys.readouterr().err


def test_config_refuses_bad_values(tmp_path):
    from lpm_edge.train.pretrain import PretrainConfig

    with pytest.raises(ConfigError, match="mlm_probability 1.5"):
        PretrainConfig(out=tmp_path, text="x", mlm_probability=1.5)
    # the checks TrainConfig makes too (train.config.check_run)
    for bad, message in (({"device": "gpu"}, "device='gpu' is not one of auto, cpu, cuda"),
                         ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
                         ({"limit": 0}, "limit must be a positive integer or None, got 0"),
                         ({"epochs": 0}, "epochs must be positive"),
                         ({"learning_rate": 2.0}, r"learning_rate 2.0 is out of range")):
        with pytest.raises(ConfigError, match=message):
            PretrainConfig(out=tmp_path, text="x", **bad)


def test_builtin_plots_leave_out_validation_and_test_movies():
    import bz2
    import csv

    from lpm_edge.assets import rotten_tomatoes_file

    texts, source = unlabelled_texts("rotten-tomatoes-plots")
    with bz2.open(rotten_tomatoes_file(), "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    split_of = split_by_movie([r["movie_name"] for r in rows if r["category"] in ("fresh", "rotten")])
    held = {r["text"].strip() for r in rows if r["category"] == "plot" and split_of.get(r["movie_name"]) in
            ("validation", "test")}
    assert held and not held & set(texts) and len(texts) > 1000
    assert "validation and test movies left out" in source


def test_masked_only_loss_equals_the_models_own(tiny_model, tmp_path):
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling, TrainingArguments

    from lpm_edge.train.pretrain import masked_only_trainer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForMaskedLM.from_pretrained(tiny_model).eval()
    torch.manual_seed(0)
    batch = DataCollatorForLanguageModeling(tok, mlm_probability=0.3)(
        [tok(t) for t, _ in synthetic_rows(16)])
    expected = model(**batch).loss
    seen = []
    model.get_output_embeddings().register_forward_hook(lambda m, i, o: seen.append(o.shape))
    trainer = masked_only_trainer()(model=model, args=TrainingArguments(output_dir=str(tmp_path), report_to=[],
                                                                        use_cpu=True))
    got = trainer.compute_loss(model, dict(batch))
    torch.testing.assert_close(got, expected)
    assert seen[-1] == (int((batch["labels"] != -100).sum()), model.config.vocab_size)  # masked positions only
