"""`lpm-edge train` passes its options through (threads, columns, resume) and reports on stdout."""

import json

from lpm_edge.cli import main


def test_cli_train_json_reports_the_run(tmp_path, tiny_model, tiny_data, capsys):
    out = tmp_path / "ckpt"
    argv = ["train", "--model", str(tiny_model), "--data", str(tiny_data), "--out", str(out), "--epochs", "1",
            "--batch-size", "16", "--lr", "3e-3", "--max-length", "32", "--threads", "1", "--patience", "0",
            "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checkpoint"] == str(out)
    assert report["threads"] == 1 and report["labels"] == ["neg", "pos"]
    assert report["config"]["patience"] is None and report["steps"] == 20
    assert main(argv + ["--resume"]) == 1  # a finished run has nothing to resume
    err = capsys.readouterr().err
    assert "nothing to resume" in err and f"--model {out}" in err


def test_train_with_a_validation_file_reports_test_figures_of_a_test_split(tmp_path, tiny_model, tiny_data, capsys):
    """The bug: with --validation FILE, the "test" figures were the validation file's."""
    import csv

    def write_csv(path, texts):
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("text", "label"), *((t, ("neg", "pos")[i % 2]) for i, t in enumerate(texts))])
        return path

    val = write_csv(tmp_path / "val.csv", [f"a new good film number {i}" for i in range(30)])
    out = tmp_path / "ckpt"
    base = ["train", "--model", str(tiny_model), "--data", str(tiny_data), "--out", str(out), "--max-steps", "2",
            "--batch-size", "16", "--max-length", "32", "--threads", "1", "--validation", str(val)]
    assert main([*base, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    splits = info["data"]["splits"]
    assert splits["validation"] == {"source": str(val), "n": 30, "dropped_overlap": 0}
    assert info["test_split"] == {"source": f"{tiny_data} (a 10% cut, seed 20240611)", "n": 40}
    assert splits["test"]["source"] != str(val) and splits["train"]["n"] == 360
    with open(tiny_data, newline="") as f:
        first = next(csv.DictReader(f))["text"]
    clash = write_csv(tmp_path / "clash.csv", [first, *(f"a bad film number {i}" for i in range(9))])
    assert main([*base[:-1], str(clash), "--strict", "--force"]) == 1  # `first` is a training text
    assert "1 of 10 validation texts of" in capsys.readouterr().err
    assert main([*base, "--force"]) == 0
    assert f"test texts of {tiny_data} (a 10% cut, seed 20240611)" in capsys.readouterr().out
