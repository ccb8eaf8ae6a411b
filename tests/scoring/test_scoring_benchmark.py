"""benchmarks/scoring.py end to end on the tiny bundle (the real figures come from MiniLM)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_scoring_benchmark_writes_every_run(tmp_path, tiny_bundle):
    out = tmp_path / "results"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "scoring.py"), str(tiny_bundle), "--rows", "300",
           "--workers", "1,2", "--memory-rows", "100,300", "--no-ray", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=600)
    doc = json.loads((out / "scoring.json").read_text())
    # 300 rows with 1 worker is the comparison's run, not repeated among the memory runs
    assert [(r["rows"], r["workers"]) for r in doc["memory"] + doc["throughput"]] == [(100, 1), (300, 1), (300, 2)]
    assert all(r["peak_mib"] > 10 and r["texts_per_s"] > 0 for r in doc["throughput"])
    two = doc["throughput"][1]
    assert two["peak_mib"] == two["peak_mib_main"] + 2 * two["peak_mib_child"]
    assert "| score_file | 2 | 300 |" in (out / "scoring.md").read_text()
