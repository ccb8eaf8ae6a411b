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


def _proc_cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str | None, set[str] | None]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; None for what it does not say."""
    model, flags = None, None
    try:
        with open(path, encoding="utf-8") as f:
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


def cpu_info() -> dict[str, Any]:
    model, flags = _proc_cpuinfo()
    flags = flags or set()
    return {
        "model": model or platform.processor() or platform.machine(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "flags": {name: flag in flags for flag, name in FLAGS.items()},
        "vnni": bool({"avx512_vnni", "avx_vnni"} & flags),
        "class": cpu_class(frozenset(flags)),
    }


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo ('flags' on x86, 'Features' on
    arm64); empty where there is no such file."""
    return frozenset(_proc_cpuinfo(path)[1] or ())


def cpu_class(flags: frozenset[str] | set[str] | None = None, arch: str | None = None) -> str:
    """What decides int8 numerics and speed: which int8 dot-product instructions the CPU has.

    ONNX Runtime's u8s8 int8 kernels sum pairs of products in 16 bits on x86 without VNNI (they
    can saturate); with VNNI (AVX-512 or AVX) they accumulate in 32 bits. Figures measured on one
    class do not carry to another (dynamic int8 gave 4.2x PyTorch's throughput with AVX-512 VNNI
    and 1.35x and 2.4x on two AVX2 CPUs without VNNI), so reports and manifests name it. One of
    "x86-64 AMX int8 (AVX-512 VNNI)", "x86-64 AVX-512 VNNI", "x86-64 AVX-VNNI",
    "x86-64 AVX-512 (no VNNI)", "x86-64 AVX2 (no VNNI)", "x86-64 (no AVX2)",
    "x86-64 (instruction sets unknown)", "arm64 i8mm", "arm64 dotprod", "arm64 (no dotprod)",
    or the machine name.
    """
    flags = cpu_flags() if flags is None else frozenset(flags)
    arch = (arch or platform.machine()).lower()
    if arch in ("x86_64", "amd64", "i386", "i686", "x86") or "sse2" in flags:
        if not flags:  # no /proc/cpuinfo (macOS, Windows)
            return "x86-64 (instruction sets unknown)"
        if "amx_int8" in flags:
            return "x86-64 AMX int8 (AVX-512 VNNI)"
        if "avx512_vnni" in flags:
            return "x86-64 AVX-512 VNNI"
        if "avx_vnni" in flags:
            return "x86-64 AVX-VNNI"
        if "avx512f" in flags:
            return "x86-64 AVX-512 (no VNNI)"
        return "x86-64 AVX2 (no VNNI)" if "avx2" in flags else "x86-64 (no AVX2)"
    if arch in ("aarch64", "arm64") or "asimd" in flags:
        if "i8mm" in flags:
            return "arm64 i8mm"
        return "arm64 dotprod" if "asimddp" in flags else "arm64 (no dotprod)"
    return arch or "unknown"


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
