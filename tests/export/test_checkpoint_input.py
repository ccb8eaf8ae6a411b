"""The build side reads model weights only from safetensors: loading a pickle can run code."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lpm_edge.errors import ConfigError
from lpm_edge.export import export
from lpm_edge.train import TrainConfig, train


@pytest.fixture
def pickled_checkpoint(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """The tiny checkpoint with its weights saved as pytorch_model.bin (a pickle) instead."""
    from transformers import AutoModelForSequenceClassification

    ckpt = Path(shutil.copytree(tiny_checkpoint, tmp_path / "pickled"))
    model = AutoModelForSequenceClassification.from_pretrained(ckpt, local_files_only=True)
    (ckpt / "model.safetensors").unlink()
    model.save_pretrained(ckpt, safe_serialization=False)
    assert (ckpt / "pytorch_model.bin").is_file()
    return ckpt


def test_export_refuses_pickled_weights(pickled_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match=r"no \*\.safetensors weights.*never loads pickled weights"):
        export(pickled_checkpoint, tmp_path / "bundle", "cpu-int8")
    assert not (tmp_path / "bundle").exists()


def test_train_refuses_a_base_model_with_pickled_weights(pickled_checkpoint, tiny_data, tmp_path):
    with pytest.raises(ConfigError, match="safe_serialization=True"):
        train(TrainConfig(out=tmp_path / "c", model=pickled_checkpoint, data=str(tiny_data), max_steps=1))
