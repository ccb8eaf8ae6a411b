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


def _proc_cpuinfo() -> tuple[str | None, set[str] | None]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; None for what it does not say."""
    model, flags = None, None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model is None:
                    model = value.strip()
                elif key in ("flags", "Features"):  # x86 says flags, arm64 says Features
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model, flags


def cpu_flags() -> set[str]:
    """The CPU's instruction-set flags as Linux names them (avx2, avx512_vnni, ...); empty where
    /proc/cpuinfo is unreadable (macOS, Windows)."""
    return _proc_cpuinfo()[1] or set()


def cpu_class(flags: set[str] | None = None, machine: str | None = None) -> str:
    """What int8 speed depends on, in a few words: "x86-64 AVX-512 VNNI", "x86-64 AVX2 (no VNNI)", "arm64".

    Figures measured on one class do not carry to another (dynamic int8 gave 4.2x throughput
    with AVX-512 VNNI and 1.35x on AVX2 without VNNI), so every report names its class.
    """
    arch = (machine or platform.machine()).lower()
    if arch in ("aarch64", "arm64"):
        return "arm64"
    if arch not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return arch or "unknown CPU"
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return "x86-64 (instruction sets unknown)"
    if "amx_int8" in flags:
        return "x86-64 AMX int8 (AVX-512 VNNI)"
    if "avx512_vnni" in flags:
        return "x86-64 AVX-512 VNNI"
    if "avx_vnni" in flags:
        return "x86-64 AVX2 with AVX-VNNI"
    if "avx512f" in flags:
        return "x86-64 AVX-512 (no VNNI)"
    if "avx2" in flags:
        return "x86-64 AVX2 (no VNNI)"
    return "x86-64 (no AVX2)"


def cpu_info() -> dict[str, Any]:
    model, flags = _proc_cpuinfo()
    flags = flags or set()
    return {
        "model": model or platform.processor() or platform.machine(),
        "class": cpu_class(flags),
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
