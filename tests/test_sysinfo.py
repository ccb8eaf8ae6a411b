"""The CPU class every report names: from /proc/cpuinfo's flags, with a fallback where there are none."""

from lpm_edge import sysinfo
from lpm_edge.sysinfo import cpu_class


def test_cpu_class_from_flags():
    assert cpu_class({"avx2", "avx512f", "avx512_vnni", "avx_vnni"}, "x86_64") == "x86-64 AVX-512 VNNI"
    assert cpu_class({"avx2", "fma"}, "x86_64") == "x86-64 AVX2 (no VNNI)"
    assert cpu_class({"avx2", "avx_vnni"}, "x86_64") == "x86-64 AVX2 with AVX-VNNI"
    assert cpu_class({"avx2", "avx512f"}, "x86_64") == "x86-64 AVX-512 (no VNNI)"
    assert cpu_class({"avx2", "avx512_vnni", "amx_int8"}, "AMD64") == "x86-64 AMX int8 (AVX-512 VNNI)"
    assert cpu_class({"sse4_2"}, "x86_64") == "x86-64 (no AVX2)"
    assert cpu_class({"fp", "asimd", "asimddp"}, "aarch64") == "arm64"
    assert cpu_class(set(), "arm64") == "arm64"
    assert cpu_class(set(), "x86_64") == "x86-64 (instruction sets unknown)"  # no /proc/cpuinfo (macOS, Windows)
    assert cpu_class(set(), "riscv64") == "riscv64"


def test_cpu_info_names_this_machine_class(monkeypatch):
    info = sysinfo.cpu_info()
    assert info["class"] == cpu_class(sysinfo.cpu_flags())
    monkeypatch.setattr(sysinfo, "_proc_cpuinfo", lambda: (None, None))  # unreadable /proc/cpuinfo
    assert sysinfo.cpu_flags() == set()
    assert sysinfo.cpu_info()["class"] == cpu_class(set())  # "x86-64 (instruction sets unknown)" here
