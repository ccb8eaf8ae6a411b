"""Training writes its checkpoint atomically: a failure while saving keeps the previous one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lpm_edge.train import TrainConfig, read_training_info, train


def test_finished_training_leaves_only_the_checkpoint(tiny_checkpoint):
    assert [p.name for p in tiny_checkpoint.parent.iterdir()] == ["checkpoint"]  # no .partial, no .work


def test_failure_while_saving_keeps_the_previous_checkpoint(monkeypatch, tiny_checkpoint, tiny_model, tiny_data,
                                                            tmp_path):
    import transformers

    out = Path(shutil.copytree(tiny_checkpoint, tmp_path / "checkpoint"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    original = transformers.Trainer.save_model

    def save_then_fail(self, output_dir=None, _internal_call=False):
        if not str(output_dir).endswith(".partial"):  # the epoch checkpoints save normally
            return original(self, output_dir, _internal_call)
        (Path(output_dir) / "model.safetensors").write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(transformers.Trainer, "save_model", save_then_fail)
    config = TrainConfig(out=out, model=tiny_model, data=str(tiny_data), max_steps=2, batch_size=16,
                         max_length=32, patience=None, force=True)
    with pytest.raises(OSError, match="No space left"):
        train(config)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert read_training_info(out)["test"]["accuracy"] >= 0.9
    left = sorted(p.name for p in tmp_path.iterdir())
    # The Trainer's epoch checkpoints stay for `--resume`; no half-written checkpoint does.
    assert left == [".checkpoint.work", "checkpoint"], left
