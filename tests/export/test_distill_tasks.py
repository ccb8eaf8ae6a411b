"""Distillation goes through the task: early stopping measures the task's budget metric (regression:
Spearman's rho on float targets, not an accuracy of truncated ids) and texts without gold carry the
task's own marker (regression: NaN), which its loss leaves out of the gold term."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lpm_edge.data import Split  # noqa: E402
from lpm_edge.export import distill as D  # noqa: E402
from lpm_edge.export import early_stop as E  # noqa: E402
from lpm_edge.export.recipe import DistillConfig  # noqa: E402
from lpm_edge.tasks.multitask import MultiTask  # noqa: E402
from lpm_edge.tasks.regression import Regression, spearman  # noqa: E402
from lpm_edge.tasks.single_label import SingleLabel  # noqa: E402

from ..tasks.test_regression import regression_rows  # noqa: E402

TASK = Regression(("score",))


def test_no_gold_markers_per_task():
    assert math.isnan(TASK.no_gold()) and SingleLabel(("a", "b")).no_gold() == -100
    assert TASK.has_gold(torch.tensor([1.0, math.nan, -100.0])).tolist() == [True, False, True]  # -100 is a target
    mt = MultiTask(("a:x", "a:y", "b:regression"))
    assert mt.has_gold(torch.tensor([mt.no_gold(), (1.0, math.nan)])).tolist() == [False, True]


def test_regression_distill_loss_leaves_texts_without_gold_out_of_the_gold_term():
    s, t = torch.tensor([[1.0], [2.0], [0.0]]), torch.tensor([[1.5], [2.0], [1.0]])
    gold = torch.tensor([0.0, math.nan, 1.0])
    soft = ((s - t) ** 2).mean()
    hard = ((s[[0, 2], 0] - gold[[0, 2]]) ** 2).mean()
    assert float(TASK.distill_loss(s, t, gold, 2.0, 0.5)) == pytest.approx(float(0.5 * soft + 0.5 * hard))
    assert float(TASK.distill_loss(s, t, torch.full((3,), math.nan), 2.0, 0.5)) == pytest.approx(float(soft))


@pytest.fixture(scope="module")
def regression_parts(tiny_model):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    teacher = AutoModelForSequenceClassification.from_pretrained(
        tiny_model, num_labels=1, problem_type="regression", attn_implementation="eager",
        ignore_mismatched_sizes=True).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    rows = regression_rows(120)
    # targets with fractions: an accuracy of ids (long) would truncate them
    split = lambda rs, name: Split(tuple(t for t, _ in rs), tuple(v + 0.25 for _, v in rs), name, "t")  # noqa: E731
    return teacher, tok, split(rows[:96], "train"), split(rows[96:], "validation")


def test_early_stopping_measures_spearman_on_float_targets(regression_parts):
    teacher, tok, _, validation = regression_parts
    config = DistillConfig(steps=4, eval_every=2, patience=2, eval_samples=24)
    stopper = E.EarlyStopping(teacher, tok, validation, config, 32, TASK)
    assert stopper.labels.dtype == torch.float32 and float(stopper.labels[0]) % 1 == 0.25
    student = copy.deepcopy(teacher)
    with torch.no_grad():
        student.classifier.weight.mul_(-1)  # orders the texts the other way round
    stopper.check(2, student)
    texts, gold = E.sample(validation, 24)
    out = E.logits_of(student, tok, texts, 32).numpy()[:, 0]
    step, value, div = stopper.curve[0]
    assert value == pytest.approx(spearman(np.asarray(gold), out), abs=1e-5)
    assert stopper.record(2)["metric"] == "spearman" and div > 0


def test_regression_distillation_with_unlabelled_texts_and_early_stopping(regression_parts):
    teacher, tok, train, validation = regression_parts
    student = copy.deepcopy(teacher)
    config = DistillConfig(steps=8, batch_size=8, learning_rate=1e-3, alpha=0.5, eval_every=4, patience=2,
                           eval_samples=16)
    extra = ["the film was good and lovely", "a dull boring story", "it was the acting"] * 10
    torch.manual_seed(0)
    record = D.distill(student, teacher, tok, train, config, 32, "cpu", list(train.texts[:8]), validation=validation,
                       extra_texts=extra, task=TASK)
    assert record["extra_texts"] == 30 and math.isfinite(record["final_loss"])
    es = record["early_stopping"]
    assert es["metric"] == "spearman" and all(math.isfinite(c[1]) for c in es["curve"])
