"""The machine a figure came from: CPU model, cores, instruction-set flags, library versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

FLAGS = {
    "avx2": "avx2",
    "avx512f": "avx512",
    "avx512_vnni": "avx512_vnni",
    "avx_vnni": "avx_vnni",
    "amx_int8": "amx",
}
LIBRARIES = ("lpm-edge", "onnxruntime", "onnxruntime-gpu", "tokenizers", "numpy", "torch",
             "transformers", "onnx", "optimum", "optimum-onnx")


def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return {
        "model": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "flags": {name: flag in flags for flag, name in FLAGS.items()},
        "vnni": bool({"avx512_vnni", "avx_vnni"} & flags),
    }


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def machine() -> dict[str, Any]:
    return {"cpu": cpu_info(), "platform": platform.platform(), "python": platform.python_version(),
            "libraries": library_versions()}
