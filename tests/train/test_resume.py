"""--resume continues an interrupted run from its last epoch checkpoint instead of starting over."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file
from transformers import TrainerCallback

from lpm_edge.errors import ConfigError
from lpm_edge.train import read_training_info, train
from lpm_edge.train.resume import RUN_CONFIG, last_checkpoint, work_dir

# Trainer's checkpoint rotation warns when two saves land within the filesystem's mtime resolution
pytestmark = pytest.mark.filterwarnings("ignore:mtime may not be reliable:UserWarning")


class Killed(Exception):
    """Stands for the process dying (SIGKILL, a lost node) right after a checkpoint."""


class DieAfterFirstSave(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        raise Killed(state.global_step)


class RecordSteps(TrainerCallback):
    def __init__(self):
        self.steps = []

    def on_step_end(self, args, state, control, **kwargs):
        self.steps.append(state.global_step)


def test_resume_continues_from_the_saved_step_and_matches_an_uninterrupted_run(
    tmp_path, tiny_config, tiny_checkpoint
):
    config = tiny_config(tmp_path / "run")  # the same fine-tune as tiny_checkpoint: 4 epochs of 20 steps
    with pytest.raises(Killed):
        train(config, callbacks=[DieAfterFirstSave()])
    work = work_dir(config.out)
    assert not config.out.exists()  # nothing half-written under the final name
    assert last_checkpoint(work).name == "checkpoint-20"

    with pytest.raises(ConfigError, match=r"learning_rate: 0.003 -> 0.001"):
        train(config.replace(resume=True, learning_rate=1e-3))  # another run's settings: refused

    steps = RecordSteps()
    out = train(config.replace(resume=True), callbacks=[steps])
    assert steps.steps == list(range(21, 81))  # epochs 2-4 only
    info, reference = read_training_info(out), read_training_info(tiny_checkpoint)
    assert (info["steps"], info["resumed_from_step"]) == (80, 20)
    assert [e["step"] for e in info["epochs"]] == [20, 40, 60, 80]  # epoch 1's evaluation kept from the first run
    assert [e["loss"] for e in info["epochs"]] == pytest.approx([e["loss"] for e in reference["epochs"]], abs=1e-6)
    ours, theirs = load_file(out / "model.safetensors"), load_file(tiny_checkpoint / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for name in ours:  # optimizer, scheduler and RNG states were restored: the same weights
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-6, err_msg=name)
    assert not work.exists()  # removed once the checkpoint is written


def test_a_checkpoint_cut_short_while_saving_is_skipped(tmp_path):
    work = tmp_path / ".run.work"
    for step, complete in ((10, True), (20, True), (30, False)):
        (work / f"checkpoint-{step}").mkdir(parents=True)
        if complete:
            (work / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert last_checkpoint(work) == work / "checkpoint-20"
    assert last_checkpoint(tmp_path / "none") is None


def test_resume_of_a_finished_run_is_refused_with_the_fix(tmp_path, tiny_config):
    out = tmp_path / "done"
    out.mkdir()
    with pytest.raises(ConfigError, match=r"finished run.*--model .*done --out NEW"):
        train(tiny_config(out, resume=True))
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        train(tiny_config(out))


def test_a_fresh_run_starts_over_and_ignores_an_old_work_dir(tmp_path, tiny_config):
    config = tiny_config(tmp_path / "run", epochs=1)
    stale = work_dir(config.out) / "checkpoint-999"
    stale.mkdir(parents=True)
    (stale / "trainer_state.json").write_text("{}")
    steps = RecordSteps()
    out = train(config, callbacks=[steps])
    assert steps.steps[0] == 1 and read_training_info(out)["resumed_from_step"] == 0
    assert not work_dir(config.out).exists()


def test_resume_without_a_checkpoint_starts_from_the_beginning(tmp_path, tiny_config):
    out = train(tiny_config(tmp_path / "run", epochs=1, resume=True))
    info = read_training_info(out)
    assert info["steps"] == 20 and info["resumed_from_step"] == 0


def test_run_config_is_recorded_for_resume_checks(tmp_path, tiny_config):
    config = tiny_config(tmp_path / "run")
    with pytest.raises(Killed):
        train(config, callbacks=[DieAfterFirstSave()])
    saved = json.loads((work_dir(config.out) / RUN_CONFIG).read_text())
    assert saved == config.to_dict()
    # how long and where may change; here the run goes on to 6 epochs (extending the schedule)
    out = train(config.replace(resume=True, epochs=6, device="cpu", out=tmp_path / "." / "run"))
    assert read_training_info(out)["steps"] == 120
