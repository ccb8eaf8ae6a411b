"""The export keeps its students in OUT.work: a second export reuses them, an interrupted one resumes."""

import logging

import pytest
import torch

from lpm_edge.export import export
from lpm_edge.export import distill as D
from lpm_edge.export.recipe import DistillConfig, PruneConfig, QuantizeConfig, Recipe
from lpm_edge.export.workdir import students_dir

STEPS = 6


def _recipe(mode="dynamic", steps=STEPS):
    return Recipe(name="tiny-pruned", max_length=32, prune=PruneConfig(heads=0.5, ffn=0.5, importance_batches=2),
                  distill=DistillConfig(steps=steps, batch_size=16), quantize=QuantizeConfig(mode=mode))


@pytest.fixture
def distill_calls(monkeypatch):
    import lpm_edge.export.compress as C

    calls = []
    real = C.distill

    def counting(*args, **kwargs):
        calls.append(kwargs.get("checkpoint"))
        return real(*args, **kwargs)

    monkeypatch.setattr(C, "distill", counting)
    return calls


def test_second_export_reuses_the_student(tiny_checkpoint, tmp_path, distill_calls, caplog):
    out = tmp_path / "bundle"
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(tiny_checkpoint, out, _recipe("dynamic"))
    assert len(distill_calls) == 1
    [kept] = [p for p in students_dir(out).iterdir() if p.is_dir()]
    assert (kept / "compression.json").is_file()  # the checkpoint folder went once the student was saved
    assert "kept the student in" in caplog.text and " MB" in caplog.text
    # Other precision, other budget: same student, no second distillation.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(tiny_checkpoint, out, _recipe("none"), max_accuracy_drop=50, force=True)
    assert len(distill_calls) == 1
    assert "reusing the pruned, distilled student" in caplog.text


def test_no_student_cache_keeps_nothing(tiny_checkpoint, tmp_path, distill_calls):
    out = tmp_path / "bundle"
    export(tiny_checkpoint, out, _recipe(), student_cache=False)
    assert distill_calls == [None] and not students_dir(out).exists()


def _student_weights(path):
    from transformers import AutoModelForSequenceClassification

    [kept] = [p for p in path.iterdir() if p.is_dir()]
    return AutoModelForSequenceClassification.from_pretrained(kept).state_dict()


def test_interrupted_distillation_resumes_to_the_same_weights(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(D, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every step
    whole = tmp_path / "whole"
    export(tiny_checkpoint, whole, _recipe())

    real_clip, calls = torch.nn.utils.clip_grad_norm_, []

    def interrupt_at_step_4(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_clip(*args, **kwargs)

    out = tmp_path / "resumed"
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", interrupt_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        export(tiny_checkpoint, out, _recipe())
    assert not out.exists()
    [partial] = [p for p in students_dir(out).iterdir() if p.name.endswith(".distill")]
    assert (partial / D.CHECKPOINT_FILE).is_file()

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(tiny_checkpoint, out, _recipe())
    assert f"resuming distillation at step 3 of {STEPS}" in caplog.text
    expected, got = _student_weights(students_dir(whole)), _student_weights(students_dir(out))
    assert expected.keys() == got.keys()
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=0, atol=0, msg=k)
    assert not partial.exists()


def test_checkpoint_of_other_settings_is_ignored(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(D, "CHECKPOINT_SECONDS", 0.0)
    import copy

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge.data import load_dataset
    from lpm_edge.train import read_training_info

    folder = tmp_path / "ckpt"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint).eval()
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    data = load_dataset(read_training_info(tiny_checkpoint)["data"]["source"])
    student = copy.deepcopy(model)
    D.distill(student, model, tok, data.train, DistillConfig(steps=3, batch_size=16), 32, "cpu", ["a"],
              checkpoint=folder)
    assert (folder / D.CHECKPOINT_FILE).is_file()
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        D.distill(student, model, tok, data.train, DistillConfig(steps=5, batch_size=16), 32, "cpu", ["a"],
                  checkpoint=folder)
    assert "ignoring the distillation checkpoint" in caplog.text
