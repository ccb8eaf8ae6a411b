"""Device and precision selection, tested without a GPU by faking what torch.cuda reports."""

import pytest
import torch

from lpm_edge.cli import main
from lpm_edge.errors import ConfigError
from lpm_edge.train import DevicePlan, plan_device, train


def fake_gpu(monkeypatch, present: bool, bf16: bool = True, cuda_build: str | None = "12.4") -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: present)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: present and bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    monkeypatch.setattr(torch.version, "cuda", cuda_build)


@pytest.mark.parametrize(
    "present, bf16, device, precision, expected",
    [
        (False, False, "auto", "auto", ("cpu", "fp32")),
        (True, True, "auto", "auto", ("cuda", "bf16")),  # Ampere and later
        (True, False, "auto", "auto", ("cuda", "fp16")),  # e.g. T4, V100: bf16 only emulated
        (True, True, "cuda", "fp32", ("cuda", "fp32")),
        (True, True, "cpu", "auto", ("cpu", "fp32")),  # a GPU present but not wanted
        (True, False, "cuda", "fp16", ("cuda", "fp16")),
    ],
)
def test_plan_picks_mixed_precision_on_gpu_only(monkeypatch, present, bf16, device, precision, expected):
    fake_gpu(monkeypatch, present, bf16)
    assert plan_device(device, precision) == DevicePlan(*expected)


def test_trainer_args_use_gloo_for_ddp_on_cpu():
    assert DevicePlan("cpu", "fp32").trainer_args(world_size=2) == {
        "use_cpu": True, "bf16": False, "fp16": False, "ddp_backend": "gloo"}
    assert "ddp_backend" not in DevicePlan("cpu", "fp32").trainer_args(world_size=1)
    assert DevicePlan("cuda", "bf16").trainer_args(world_size=8) == {"use_cpu": False, "bf16": True, "fp16": False}


@pytest.mark.parametrize(
    "present, bf16, cuda_build, device, precision, message",
    [
        (False, False, None, "cuda", "auto", r"this PyTorch build .* has no CUDA support; install a CUDA build"),
        (False, False, "12.4", "cuda", "auto", r"sees no GPU here; check nvidia-smi"),
        (False, False, None, "auto", "bf16", r"--precision bf16 is for GPUs"),
        (True, False, "12.4", "auto", "bf16", r"Tesla T4\) has no native bf16; use --precision fp16"),
    ],
)
def test_impossible_requests_are_refused_with_the_fix(monkeypatch, present, bf16, cuda_build, device, precision,
                                                      message):
    fake_gpu(monkeypatch, present, bf16, cuda_build)
    with pytest.raises(ConfigError, match=message):
        plan_device(device, precision)


def test_cuda_on_a_cpu_only_machine_fails_before_any_work(monkeypatch, tmp_path, tiny_config, capsys):
    fake_gpu(monkeypatch, present=False, cuda_build=None)
    with pytest.raises(ConfigError, match="no CUDA support"):
        train(tiny_config(tmp_path / "out", device="cuda"))
    cfg = tiny_config(tmp_path / "out")
    code = main(["train", "--model", str(cfg.model), "--data", cfg.data, "--out", str(cfg.out), "--device", "cuda"])
    assert code == 1
    err = capsys.readouterr().err
    assert "lpm-edge train: error: --device cuda, but this PyTorch build" in err and "Traceback" not in err
    assert not cfg.out.exists()
