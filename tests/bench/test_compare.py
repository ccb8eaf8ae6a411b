"""benchmarks/compare.py on the tiny BERT: every peer in one report, with the issue-3 targets."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compare.py"


@pytest.mark.slow
def test_compare_runs_every_peer_side_by_side(tiny_bundle, tiny_checkpoint, tiny_data, tmp_path):
    pytest.importorskip("optimum.onnxruntime")
    spec = importlib.util.spec_from_file_location("compare", SCRIPT)
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)
    out = tmp_path / "compare"
    assert compare.main([str(tiny_bundle), "--checkpoint", str(tiny_checkpoint), "--data", str(tiny_data),
                         "--out", str(out), "--quick", "--batch-sizes", "1,4", "--seq-lengths", "8",
                         "--no-plots"]) == 0
    doc = json.loads((out / "report.json").read_text())
    assert [c["kind"] for c in doc["candidates"]] == ["pytorch", "pytorch-int8", "optimum", "optimum", "lpm-edge"]
    assert [c["name"] for c in doc["candidates"]][2:4] == ["optimum avx2 dynamic int8", "optimum O2 fused fp32"]
    assert all(c["process"]["peak_rss_bytes"] > 0 for c in doc["candidates"])
    md = (out / "report.md").read_text()
    assert "## Runtime targets (issue 3)" in md and "cold start" in md
    assert doc["command"].startswith("PYTHONPATH=. python benchmarks/compare.py ")
