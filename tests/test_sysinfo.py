"""The CPU class a bundle's int8 accuracy was measured on, and the warning when the client's differs."""

import json
import logging

import pytest

import lpm_edge
from lpm_edge import sysinfo


@pytest.mark.parametrize("flags, arch, expected", [
    ({"sse2", "avx2", "avx512f", "avx512_vnni"}, "x86_64", "x86-64 AVX-512 VNNI"),
    ({"sse2", "avx2", "avx_vnni"}, "x86_64", "x86-64 AVX-VNNI"),
    ({"sse2", "avx2", "fma"}, "x86_64", "x86-64 AVX2 (no VNNI)"),
    ({"sse2"}, "x86_64", "x86-64 (no AVX2)"),
    ({"sse2", "avx2", "avx512f"}, "x86_64", "x86-64 AVX-512 (no VNNI)"),
    ({"sse2", "avx2", "avx512_vnni", "amx_int8"}, "AMD64", "x86-64 AMX int8 (AVX-512 VNNI)"),
    (set(), "x86_64", "x86-64 (instruction sets unknown)"),  # no /proc/cpuinfo (macOS, Windows)
    (set(), "riscv64", "riscv64"),
    ({"fp", "asimd", "asimddp", "i8mm"}, "aarch64", "arm64 i8mm"),
    ({"fp", "asimd", "asimddp"}, "aarch64", "arm64 dotprod"),
    ({"fp", "asimd"}, "aarch64", "arm64 (no dotprod)"),
])
def test_cpu_class(flags, arch, expected):
    assert sysinfo.cpu_class(frozenset(flags), arch) == expected


def test_cpu_flags_reads_x86_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 avx512_vnni\n\n"
                   "processor\t: 1\nflags\t\t: fpu\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\n")
    assert sysinfo.cpu_flags(str(x86)) == {"fpu", "sse2", "avx2", "avx512_vnni"}
    assert sysinfo.cpu_flags(str(arm)) == {"fp", "asimd", "asimddp"}
    assert sysinfo.cpu_flags(str(tmp_path / "none")) == frozenset()


def test_manifest_records_cpu_class_and_load_warns_on_another(tiny_bundle, monkeypatch, caplog):
    metrics = json.loads((tiny_bundle / "manifest.json").read_text())["metrics"]
    assert metrics["cpu_class"] == sysinfo.cpu_class()
    with caplog.at_level(logging.WARNING, logger="lpm_edge.runtime"):
        lpm_edge.load(tiny_bundle, providers="cpu")
    assert "measured on" not in caplog.text  # same CPU: no warning
    other = "x86-64 AVX2 (no VNNI)" if metrics["cpu_class"] != "x86-64 AVX2 (no VNNI)" else "x86-64 AVX-512 VNNI"
    fake = {"x86-64 AVX2 (no VNNI)": {"sse2", "avx2"}, "x86-64 AVX-512 VNNI": {"sse2", "avx2", "avx512_vnni"}}[other]
    monkeypatch.setattr(sysinfo, "cpu_flags", lambda path="/proc/cpuinfo": frozenset(fake))
    with caplog.at_level(logging.WARNING, logger="lpm_edge.runtime"):
        lpm_edge.load(tiny_bundle, providers="cpu")
    assert f"was measured on {metrics['cpu_class']}; this CPU is {other}" in caplog.text
    assert "lpm-edge bench" in caplog.text
    assert ("exact_int8=True" in caplog.text) == (other == "x86-64 AVX2 (no VNNI)")


def test_fp32_bundle_gives_no_cpu_class_warning(tiny_fp32_bundle, monkeypatch, caplog):
    monkeypatch.setattr(sysinfo, "cpu_flags", lambda path="/proc/cpuinfo": frozenset({"sse2"}))
    with caplog.at_level(logging.WARNING, logger="lpm_edge.runtime"):
        lpm_edge.load(tiny_fp32_bundle, providers="cpu")
    assert "measured on" not in caplog.text


def test_exact_int8_sets_the_session_option(tiny_bundle):
    clf = lpm_edge.load(tiny_bundle, providers="cpu", exact_int8=True)
    options = clf._session.get_session_options()
    assert options.get_session_config_entry("session.x64quantprecision") == "1"
    if sysinfo.cpu_info()["vnni"]:  # no saturation to avoid: the same kernels, the same numbers
        texts = ["a really great film", "awful boring plot"]
        assert (clf.logits(texts) == lpm_edge.load(tiny_bundle, providers="cpu").logits(texts)).all()


def test_cpu_info_names_this_machine_class(monkeypatch):
    info = sysinfo.cpu_info()
    assert info["class"] == sysinfo.cpu_class(sysinfo.cpu_flags())
    monkeypatch.setattr(sysinfo, "_proc_cpuinfo", lambda: (None, None))  # unreadable /proc/cpuinfo
    monkeypatch.setattr(sysinfo, "cpu_flags", lambda path="/proc/cpuinfo": frozenset())
    assert sysinfo.cpu_info()["class"] == sysinfo.cpu_class(frozenset())


@pytest.mark.parametrize("cls, pays", [
    ("x86-64 AMX int8 (AVX-512 VNNI)", True), ("x86-64 AVX-512 VNNI", True), ("x86-64 AVX-VNNI", True),
    ("arm64 i8mm", True), ("arm64 dotprod", True),
    ("x86-64 AVX-512 (no VNNI)", False), ("x86-64 AVX2 (no VNNI)", False), ("x86-64 (no AVX2)", False),
    ("x86-64 (instruction sets unknown)", False), ("arm64 (no dotprod)", False), ("riscv64", False),
])
def test_int8_pays_only_with_int8_dot_product_instructions(cls, pays):
    from lpm_edge.runtime import int8_pays

    assert int8_pays(cls) is pays


def test_inspect_says_whether_int8_pays_on_this_cpu(tiny_bundle, tiny_fp32_bundle, monkeypatch, capsys):
    from lpm_edge.cli import inspect_summary, main

    for flags, pays, words in [({"sse2", "avx2"}, False, "int8 adds little to fusion here"),
                               ({"sse2", "avx2", "avx512_vnni"}, True, "int8 pays here")]:
        monkeypatch.setattr(sysinfo, "cpu_flags", lambda path="/proc/cpuinfo", f=flags: frozenset(f))
        assert inspect_summary(tiny_bundle)["this_cpu"] == {"class": sysinfo.cpu_class(), "int8_pays": pays}
        assert main(["inspect", str(tiny_bundle)]) == 0
        assert f"this CPU    {sysinfo.cpu_class()}: {words}" in capsys.readouterr().out
    assert inspect_summary(tiny_fp32_bundle)["this_cpu"] is None  # fp32: nothing to choose
    assert main(["inspect", str(tiny_fp32_bundle)]) == 0
    assert "this CPU" not in capsys.readouterr().out
