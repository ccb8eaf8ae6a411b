"""Search defaults that succeed: the recipe's distillation budget, and a time estimate said up front."""

import logging

import pytest

import lpm_edge.search as S
from lpm_edge.export.recipe import load_recipe
from lpm_edge.search import Candidate, default_space
from lpm_edge.search import estimate as E
from lpm_edge.search.space import recipe_distill_steps


def test_default_budget_is_the_cpu_pruned_int8_recipes():
    assert recipe_distill_steps() == load_recipe("cpu-pruned-int8").distill.steps == 1600
    space = default_space(6, vnni=False)
    assert {c.distill_steps for c in space if c.pruned} == {1600}
    assert {c.distill_steps for c in default_space(6, vnni=False, distill_steps=300) if c.pruned} == {300}


def test_cli_search_default_is_the_recipes(monkeypatch, tmp_path):
    from lpm_edge.cli import main

    seen = {}

    def fake(checkpoint, out, **kwargs):
        seen.update(kwargs)
        raise S.SearchBudgetError("stop here")

    monkeypatch.setattr(S, "search", fake)
    assert main(["search", str(tmp_path), "--out", str(tmp_path / "s")]) == 1
    assert seen["distill_steps"] is None  # search() then takes recipe_distill_steps()


def test_estimate_scales_with_steps_and_counts_shared_students():
    one = E.plan(default_space(6, vnni=False, distill_steps=100), step_seconds=0.5)
    two = E.plan(default_space(6, vnni=False, distill_steps=200), step_seconds=0.5)
    assert two.seconds == pytest.approx(2 * one.seconds) and two.steps == 2 * one.steps
    # precision variants share a student: the default ladder's 2 pruned architectures
    assert one.students == 2 and one.steps == 2 * 100 and one.candidates > one.students
    assert "estimate" in one.describe() and "s a step" in one.describe()
    assert E.plan([Candidate()], step_seconds=1.0).steps == 0


def test_step_time_is_measured_on_the_checkpoint(tiny_checkpoint):
    from lpm_edge import tasks
    from lpm_edge.export.pipeline import checkpoint_dataset
    from lpm_edge.train import read_training_info

    info = read_training_info(tiny_checkpoint)
    dataset = checkpoint_dataset(None, info)
    seconds = E.step_seconds(tiny_checkpoint, dataset, tasks.from_training(info, dataset.labels), 8, 32)
    assert seconds > 0 and seconds == seconds and seconds != float("inf")  # no time bound: a shared machine


@pytest.mark.parametrize("steps", [4, 8])
def test_search_says_the_estimate_before_the_first_candidate(tiny_checkpoint, tmp_path, monkeypatch, caplog, steps):
    monkeypatch.setattr(E, "step_seconds", lambda *a, **k: 1.5)  # the same machine speed for both budgets

    class Stop(Exception):
        pass

    def no_candidates(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(S, "run_search", no_candidates)
    space = [Candidate(), Candidate(ffn=0.5, distill_steps=steps), Candidate(ffn=0.5, distill_steps=steps,
                                                                              quantize="none", per_channel=False)]
    with caplog.at_level(logging.INFO, logger="lpm_edge.search"), pytest.raises(Stop):
        S.search(tiny_checkpoint, tmp_path / "s", space=space)
    [line] = [r.getMessage() for r in caplog.records if "estimate:" in r.getMessage()]
    assert f"up to 1 students to distil, {steps:,} steps in all, at 1.50 s a step" in line
    assert f"about {E.duration(1.5 * steps)} of distillation" in line and "3 candidates" in line


@pytest.mark.parametrize("pays", [False, True])
def test_search_offers_fused_fp32_where_int8_does_not_pay(tiny_checkpoint, tmp_path, monkeypatch, pays):
    import lpm_edge.runtime as R
    import lpm_edge.sysinfo as I

    monkeypatch.setattr(R, "int8_pays", lambda *a: pays)  # a CPU with (True) or without int8 dot products
    monkeypatch.setattr(I, "cpu_info", lambda: {"vnni": pays})
    monkeypatch.setattr(E, "step_seconds", lambda *a, **k: 1.0)
    spaces = []

    class Stop(Exception):
        pass

    def capture(space, *args, **kwargs):
        spaces.append(space)
        raise Stop

    monkeypatch.setattr(S, "run_search", capture)
    with pytest.raises(Stop):
        S.search(tiny_checkpoint, tmp_path / "s", grid={"layers": [1], "heads": [0.5], "ffn": [0.5]})
    modes = {c.quantize for c in spaces[0]}
    assert ("none" in modes) is (not pays) and ("static" in modes) is pays
    assert {c.distill_steps for c in spaces[0] if c.pruned} == {1600}
