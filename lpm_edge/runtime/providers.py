"""Execution-provider selection, and the check that a session really got what was asked.

onnxruntime-gpu lists CUDA as available even on a machine with no GPU, and when CUDA cannot
start it logs an error and runs on the CPU. So the list of providers a session *actually* runs
on (`InferenceSession.get_providers()`) is the only truth.
"""

from __future__ import annotations

import logging
from typing import Sequence

from ..errors import ConfigError, ProviderError

log = logging.getLogger("lpm_edge.runtime")

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
ALIASES = {"cpu": CPU, "cuda": CUDA, "tensorrt": "TensorrtExecutionProvider"}


def requested(providers: str | Sequence[str], available: Sequence[str]) -> tuple[list[str], bool]:
    """Turn the user's choice into an ordered provider list; the flag says 'auto'."""
    if isinstance(providers, str):
        if providers == "auto":
            return ([CUDA, CPU] if CUDA in available else [CPU]), True
        providers = [providers]
    names = []
    for p in providers:
        if not isinstance(p, str):
            raise ConfigError(f"provider {p!r} must be a string such as 'cpu', 'cuda' or 'CPUExecutionProvider'")
        name = ALIASES.get(p.lower(), p)
        if name not in available:
            hint = (
                'install the GPU runtime with: pip install "lpm-edge[gpu]" (and uninstall onnxruntime first)'
                if name == CUDA
                else "choose from " + ", ".join(available)
            )
            raise ProviderError(f"execution provider {p!r} is not available in this onnxruntime; {hint}")
        names.append(name)
    if CPU not in names:
        names.append(CPU)  # ORT needs a CPU fallback for the few ops other providers lack
    return names, False


def disabled_optimizers(asked: Sequence[str]) -> list[str]:
    """ONNX Runtime graph rewrites to leave out for a session on these providers. On the CPU alone:
    SkipLayerNormFusion, which folds each residual Add, its bias Add and the LayerNormalization after
    them into one SkipLayerNormalization, whose CPU kernel measured 2.7-6.3× slower than the three
    operators (onnxruntime 1.32; benchmarks/layernorm_kernels.py). CPU bundles are exported without
    that fusion, and this keeps ONNX Runtime from redoing it at load. With CUDA (or TensorRT) in the
    list the fused kernel is the fast one, so nothing is left out."""
    return ["SkipLayerNormFusion"] if set(asked) == {CPU} else []


def check_session(asked: list[str], got: Sequence[str], auto: bool) -> None:
    """Refuse a silent fallback: every explicitly asked provider must be in `got`."""
    missing = [p for p in asked if p not in got]
    if auto:
        if missing:
            log.info("providers=auto: %s could not start here, running on %s", ", ".join(missing), ", ".join(got))
        else:
            log.info("providers=auto: running on %s", ", ".join(got))
        return
    if missing:
        raise ProviderError(
            f"asked for {', '.join(missing)} but ONNX Runtime could only start {', '.join(got)} "
            "(no usable GPU, or CUDA/cuDNN libraries missing); use providers='cpu' or 'auto'"
        )
