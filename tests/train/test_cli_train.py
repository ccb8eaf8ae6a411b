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
