"""benchmarks/train_speed.py runs end to end (on the tiny model; the real figures come from MiniLM)."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "train_speed.py"


def test_train_speed_script_writes_json_and_markdown(tmp_path, tiny_model, tiny_data):
    spec = importlib.util.spec_from_file_location("train_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "report"
    assert module.main(["--model", str(tiny_model), "--data", str(tiny_data), "--steps", "4", "--warmup", "1",
                        "--batch-size", "16", "--threads", "1", "--variants", "baseline,bucketing",
                        "--out", str(out)]) == 0
    report = json.loads((out / "train_speed.json").read_text())
    by_name = {r["variant"]: r for r in report["results"]}
    assert set(by_name) == {"baseline", "bucketing"}
    assert all(r["steps_per_second"] > 0 for r in report["results"])
    assert by_name["bucketing"]["padding_share"] < by_name["baseline"]["padding_share"]
    assert by_name["baseline"]["speedup_vs_baseline"] == 1.0
    assert report["machine"]["cpu"]["cores"] >= 1
    assert "| bucketing | 1 |" in (out / "train_speed.md").read_text()
