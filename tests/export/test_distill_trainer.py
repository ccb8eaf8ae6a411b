"""Distillation on the Trainer: gradient accumulation, precision settings, the record and the log."""

import copy
import logging
import math

import pytest
import torch

from lpm_edge.data import load_dataset
from lpm_edge.errors import ConfigError
from lpm_edge.export import distill as D
from lpm_edge.export.recipe import DistillConfig, Recipe


@pytest.fixture(scope="module")
def parts(tiny_checkpoint):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge.train import read_training_info

    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint).eval()
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    data = load_dataset(read_training_info(tiny_checkpoint)["data"]["source"])
    return model, tok, data


def test_gradient_accumulation_reads_that_many_batches_per_step(parts, monkeypatch, caplog):
    import lpm_edge.export.batches as B

    model, tok, data = parts
    limits = []
    real = B.labelled_batches

    def spy(*args, limit=None, **kwargs):
        limits.append(limit)
        return real(*args, limit=limit, **kwargs)

    monkeypatch.setattr(B, "labelled_batches", spy)
    student = copy.deepcopy(model)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    config = DistillConfig(steps=3, batch_size=8, learning_rate=1e-3, grad_accum=2, precision="bf16")
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        record = D.distill(student, model, tok, data.train, config, 32, "cpu", ["a", "b"])
    assert limits == [6]  # 3 optimizer steps x 2 batches
    assert record["steps"] == 3 and record["grad_accum"] == 2 and record["processes"] == 1
    assert record["precision"] == "fp32"  # bf16 is for GPUs: the CPU distils in fp32
    assert "distilling on the CPU in fp32" in caplog.text
    assert record["device"] == "cpu" and record["steps_per_second"] > 0 and math.isfinite(record["final_loss"])
    assert not student.training and next(student.parameters()).device.type == "cpu"
    assert any(not torch.equal(v, before[k]) for k, v in student.state_dict().items())
    # the caller's teacher is untouched and the student's forward is its own again (no autocast wrapper)
    assert "forward" not in vars(student)


def test_progress_lines_name_distill(parts, monkeypatch, caplog):
    from lpm_edge import progress as P

    model, tok, data = parts
    monkeypatch.setattr(P, "EVERY_SECONDS", 0.0)  # a line per step
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        D.distill(copy.deepcopy(model), model, tok, data.train, DistillConfig(steps=2, batch_size=8), 32, "cpu", ["a"])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("distill: ")]
    assert lines and "2/2 steps (100.0%)" in lines[-1]


@pytest.mark.parametrize("bad, match", [({"precision": "int4"}, "distill.precision='int4' must be one of auto"),
                                        ({"grad_accum": 0}, "distill.grad_accum=0 must be an integer of at least 1")])
def test_recipe_checks_the_trainer_settings(bad, match):
    with pytest.raises(ConfigError, match=match):
        Recipe.from_dict({"name": "t", "distill": {"steps": 10, **bad}})
