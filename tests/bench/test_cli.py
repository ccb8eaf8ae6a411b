"""`lpm-edge bench` end to end on a tiny bundle: report.md, report.json and the PNGs."""

import json

import pytest

from lpm_edge.cli import main


def test_cli_writes_markdown_json_and_plots(tiny_bundle, tiny_checkpoint, tiny_data, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "report"
    code = main(["-q", "bench", str(tiny_bundle), "--reference", str(tiny_checkpoint), "--data", str(tiny_data),
                 "--out", str(out), "--quick", "--batch-sizes", "1,4", "--seq-lengths", "8,32"])
    assert code == 0
    assert "## Accuracy" in capsys.readouterr().out
    for name in ("report.md", "report.json", "accuracy_vs_latency.png", "latency_by_length.png"):
        assert (out / name).stat().st_size > 0, name
    doc = json.loads((out / "report.json").read_text())
    ref, bundle = doc["candidates"]
    assert ref["kind"] == "pytorch" and bundle["kind"] == "lpm-edge"
    assert bundle["info"]["providers"] == ["CPUExecutionProvider"] and bundle["info"]["ort_spinning"] is False
    assert set(bundle["latency"]["batch"]) == {"1", "4"} and set(bundle["latency"]["seq_len"]) == {"8", "32"}
    for c in doc["candidates"]:  # fresh processes ran and reported
        assert c["process"]["cold_start_s"] > 0 and c["process"]["peak_rss_bytes"] > 0
    assert doc["command"].startswith("lpm-edge bench ")
    assert 0 <= bundle["agreement"] <= 1


def test_cli_rejects_bad_lists(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "b", "--reference", "r", "--out", "o", "--batch-sizes", "1,x"])
    assert exc.value.code == 2
    assert "comma-separated list of integers" in capsys.readouterr().err
