"""Warnings a bundle's own manifest calls for when it is loaded (stdlib only, no torch)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import sysinfo

log = logging.getLogger("lpm_edge.runtime")
INT8_MODES = ("dynamic", "static")
SATURATING = ("x86-64 AVX-512 (no VNNI)", "x86-64 AVX2 (no VNNI)", "x86-64 (no AVX2)")  # u8s8 kernels sum pairs in 16 bits


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
