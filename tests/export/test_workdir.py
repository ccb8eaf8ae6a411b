"""The export keeps its students: a second export reuses them, whatever its --out; an interrupted one resumes."""

import logging
import os
import shutil
from pathlib import Path

import pytest
import torch

from lpm_edge.export import export
from lpm_edge.export import distill as D
from lpm_edge.export.recipe import DistillConfig, PruneConfig, QuantizeConfig, Recipe
from lpm_edge.export.workdir import CACHE_ENV, checkpoint_students, students_dir

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
    [kept] = [p for p in Path(os.environ[CACHE_ENV]).iterdir() if p.is_dir()]
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
    assert distill_calls == [None] and not any(Path(os.environ[CACHE_ENV]).iterdir())
    assert not students_dir(out).exists()


def _student_weights(path):
    from transformers import AutoModelForSequenceClassification

    [kept] = [p for p in path.iterdir() if p.is_dir()]
    return AutoModelForSequenceClassification.from_pretrained(kept).state_dict()


def test_interrupted_distillation_resumes_to_the_same_weights(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(D, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every step
    whole, whole_students, students = tmp_path / "whole", tmp_path / "whole-students", tmp_path / "students"
    export(tiny_checkpoint, whole, _recipe(), student_cache=whole_students)

    real_clip, calls = torch.nn.utils.clip_grad_norm_, []

    def interrupt_at_step_4(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_clip(*args, **kwargs)

    out = tmp_path / "resumed"
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", interrupt_at_step_4)
    with pytest.raises(KeyboardInterrupt):
        export(tiny_checkpoint, out, _recipe(), student_cache=students)
    assert not out.exists()
    [partial] = [p for p in students.iterdir() if p.name.endswith(".distill")]
    assert (partial / D.CHECKPOINT_FILE).is_file()

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(tiny_checkpoint, out, _recipe(), student_cache=students)
    assert f"resuming distillation at step 3 of {STEPS}" in caplog.text
    expected, got = _student_weights(whole_students), _student_weights(students)
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


@pytest.fixture
def own_checkpoint(tiny_checkpoint, tmp_path, monkeypatch):
    """A copy of the tiny checkpoint in a folder of this test's, with the default cache (no variable)."""
    monkeypatch.delenv(CACHE_ENV)
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "runs" / "checkpoint"))


def test_exports_to_different_outs_share_the_student_beside_the_checkpoint(own_checkpoint, tmp_path,
                                                                            distill_calls, caplog):
    shared = checkpoint_students(own_checkpoint)
    assert shared == tmp_path / "runs" / "checkpoint.students"
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(own_checkpoint, tmp_path / "a" / "bundle", _recipe("dynamic"), max_accuracy_drop=50)
    assert len(distill_calls) == 1 and f"student cache: {shared} (0 students, 0.0 MB)" in caplog.text
    caplog.clear()
    # Another --out, another budget and precision: the same student.
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(own_checkpoint, tmp_path / "b" / "bundle", _recipe("none"), max_accuracy_drop=60)
    assert len(distill_calls) == 1
    assert f"student cache: {shared} (1 student, " in caplog.text and "reusing the pruned, distilled student" in caplog.text
    assert not students_dir(tmp_path / "a" / "bundle").exists() and not students_dir(tmp_path / "b" / "bundle").exists()
    # Other distillation settings never collide with it.
    export(own_checkpoint, tmp_path / "c", _recipe("dynamic", steps=STEPS + 1))
    assert len(distill_calls) == 2 and len([p for p in shared.iterdir() if p.is_dir()]) == 2


def test_read_only_checkpoint_folder_keeps_students_beside_out(own_checkpoint, tmp_path, distill_calls, caplog,
                                                               monkeypatch):
    from lpm_edge.export import workdir

    real = workdir._writable
    monkeypatch.setattr(workdir, "_writable", lambda folder: False if folder.parent == own_checkpoint.parent
                        else real(folder))
    out = tmp_path / "bundle"
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(own_checkpoint, out, _recipe())
    assert "cannot write beside the checkpoint" in caplog.text and "--student-cache DIR" in caplog.text
    assert [p for p in students_dir(out).iterdir() if p.is_dir()] and not checkpoint_students(own_checkpoint).exists()


def test_writable_probe_leaves_nothing(tmp_path):
    from lpm_edge.export.workdir import _writable

    assert _writable(tmp_path / "new") and not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("x")
    assert not _writable(tmp_path / "file")
