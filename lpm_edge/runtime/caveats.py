"""Warnings a bundle's own manifest calls for when it is loaded (stdlib only, no torch)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import sysinfo

log = logging.getLogger("lpm_edge.runtime")
INT8_MODES = ("dynamic", "static")
SATURATING = ("x86-64 AVX-512 (no VNNI)", "x86-64 AVX2 (no VNNI)", "x86-64 (no AVX2)")  # u8s8 kernels sum pairs in 16 bits
# int8 dot-product instructions: where ONNX Runtime's int8 kernels beat fused fp32 by a wide margin
INT8_PAYS = ("x86-64 AMX int8 (AVX-512 VNNI)", "x86-64 AVX-512 VNNI", "x86-64 AVX-VNNI", "arm64 i8mm", "arm64 dotprod")


def int8_pays(cpu_class: str | None = None) -> bool:
    """True where int8 is worth its accuracy risk over a fused fp32 graph: CPUs with int8
    dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX; ARM dot-product or i8mm).

    Measured on 2 cores: with AVX-512 VNNI dynamic int8 gave 4.2x PyTorch fp32's throughput, on
    AVX2 without VNNI 1.35x, and there a 4-layer, 6-head student ran faster in fused fp32 (5.9x)
    than in int8 (5.5x). ARM classes are listed by their instructions, not measured. `cpu_class`:
    a `sysinfo.cpu_class()` string; this CPU's when None.
    """
    return (sysinfo.cpu_class() if cpu_class is None else cpu_class) in INT8_PAYS


def warn_about(path: Path, manifest: Any) -> None:
    """Log a warning when the bundle missed its accuracy budget, or when its int8 accuracy was
    measured on a CPU class other than this one (int8 kernels round differently per class)."""
    metrics = manifest.metrics if isinstance(manifest.metrics, dict) else {}
    if metrics.get("accepted") is False:
        log.warning("%s missed its accuracy budget (%s); it is kept for inspection: bench it, then publish it "
                    "with `lpm-edge accept %s`", path, metrics.get("rejected_reason", "see its manifest"), path)
    measured_on = metrics.get("cpu_class")
    mode = manifest.recipe.get("quantize", {}).get("mode") if isinstance(manifest.recipe, dict) else None
    if mode in INT8_MODES and isinstance(measured_on, str):
        here = sysinfo.cpu_class()
        if here != measured_on:
            log.warning("%s: its int8 accuracy (%s) was measured on %s; this CPU is %s, whose int8 kernels round "
                        "differently: re-measure it here with `lpm-edge bench %s --reference CHECKPOINT`%s",
                        path, _accuracy(metrics), measured_on, here, path,
                        " (on a CPU without VNNI, load(..., exact_int8=True) avoids u8s8 saturation)"
                        if here in SATURATING else "")


def _accuracy(metrics: dict[str, Any]) -> str:
    acc = metrics.get("bundle_accuracy")
    return f"{acc:.4f}" if isinstance(acc, (int, float)) else "?"
