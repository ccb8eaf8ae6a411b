"""Where training runs and in which precision: CPU, one GPU, or one process per GPU under torchrun."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class DevicePlan:
    """The resolved device ("cpu" or "cuda") and precision ("fp32", "bf16" or "fp16")."""

    device: str
    precision: str

    def trainer_args(self, world_size: int | None = None) -> dict[str, Any]:
        """The TrainingArguments fields this plan sets."""
        world = world_size if world_size is not None else int(os.environ.get("WORLD_SIZE", "1"))
        args: dict[str, Any] = {
            "use_cpu": self.device == "cpu",
            "bf16": self.precision == "bf16",
            "fp16": self.precision == "fp16",
        }
        if self.device == "cpu" and world > 1:
            args["ddp_backend"] = "gloo"  # NCCL needs GPUs; gloo runs DDP between CPU processes
        return args


def _bf16_on_gpu(torch: Any) -> bool:
    # Pre-Ampere GPUs only emulate bf16 (slowly); count native support only
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch before 2.3 has no including_emulation
        return bool(torch.cuda.is_bf16_supported())


def plan_device(device: str = "auto", precision: str = "auto") -> DevicePlan:
    """Resolve --device auto|cpu|cuda and --precision auto|fp32|bf16|fp16 on this machine.

    auto picks the GPU when PyTorch sees one, and on a GPU mixed precision: bf16 where the GPU
    supports it natively (Ampere and later), else fp16. CPU training is fp32.
    """
    import torch

    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        if torch.version.cuda is None:
            raise ConfigError(
                f"--device cuda, but this PyTorch build ({torch.__version__}) has no CUDA support; install a "
                "CUDA build of torch, or use --device cpu (or auto)"
            )
        raise ConfigError(
            f"--device cuda, but PyTorch (CUDA {torch.version.cuda}) sees no GPU here; check nvidia-smi and "
            "CUDA_VISIBLE_DEVICES, or use --device cpu (or auto)"
        )
    resolved = "cuda" if cuda and device != "cpu" else "cpu"
    if precision == "auto":
        precision = ("bf16" if _bf16_on_gpu(torch) else "fp16") if resolved == "cuda" else "fp32"
    elif precision != "fp32" and resolved == "cpu":
        raise ConfigError(
            f"--precision {precision} is for GPUs; training on the CPU runs in fp32: use --precision auto or fp32"
        )
    elif precision == "bf16" and not _bf16_on_gpu(torch):
        raise ConfigError(
            f"--precision bf16, but this GPU ({torch.cuda.get_device_name()}) has no native bf16; "
            "use --precision fp16 (or auto)"
        )
    return DevicePlan(resolved, precision)
