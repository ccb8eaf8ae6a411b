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


def test_cli_bench_evaluates_every_row_of_a_test_file_with_its_columns(tiny_bundle, tiny_checkpoint, tiny_data,
                                                                        tmp_path, capsys):
    import csv

    with open(tiny_data, newline="") as f:
        train_text = next(csv.DictReader(f))["text"]  # a training text of the checkpoint
    rows = [(f"a good film number {i}" if i % 2 else f"a bad film number {i}", ("neg", "pos")[i % 2]) for i in range(23)]
    test = tmp_path / "held-out.csv"
    with open(test, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("id", "review", "y"), *((i, t, lab) for i, (t, lab) in enumerate(rows))])
    base = ["-q", "bench", str(tiny_bundle), "--reference", str(tiny_checkpoint), "--test", str(test),
            "--text-column", "review", "--label-column", "y", "--quick", "--no-plots", "--no-subprocess",
            "--batch-sizes", "1", "--seq-lengths", "8", "--repeats", "2"]
    assert main([*base, "--out", str(tmp_path / "r1")]) == 0
    doc = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert doc["data"]["split"] == "test" and doc["data"]["n"] == 23 and doc["data"]["source"] == str(test)
    assert "--test " + str(test) in doc["command"] and "--text-column review" in doc["command"]
    assert f"23 texts of {test}" in (tmp_path / "r1" / "report.md").read_text()
    capsys.readouterr()

    with open(test, "a", newline="", encoding="utf-8") as f:  # one row the checkpoint was trained on
        csv.writer(f).writerow((99, train_text, "pos"))
    assert main([*base, "--out", str(tmp_path / "r2"), "--strict"]) == 1
    assert "1 of 24 test texts of" in capsys.readouterr().err and not (tmp_path / "r2").exists()
    assert main([*base, "--out", str(tmp_path / "r3")]) == 0
    doc = json.loads((tmp_path / "r3" / "report.json").read_text())
    assert doc["data"]["n"] == 23 and doc["data"]["dropped_overlap"] == 1
