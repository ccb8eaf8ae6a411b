"""benchmarks/memory.py on the tiny bundle: one row per setting, peak memory rising by stage."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "memory.py"


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_memory_breakdown_rows(tiny_bundle, tiny_checkpoint, tiny_data, capsys):
    spec = importlib.util.spec_from_file_location("memory", SCRIPT)
    memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(memory)
    assert memory.main([str(tiny_bundle), "--checkpoint", str(tiny_checkpoint), "--data", str(tiny_data),
                        "--texts", "12"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and r[2:3] != "-"][1:]
    assert len(rows) == len(memory.VARIANTS)
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        stages = [int(c) for c in cells[1:5]]  # a failed child prints no numbers and fails here
        assert stages == sorted(stages) and stages[0] > 0  # a high-water mark never falls
