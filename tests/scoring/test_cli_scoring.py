"""`lpm-edge predict BUNDLE --input FILE --output FILE` and its one-line errors."""

from __future__ import annotations

import json

from lpm_edge.cli import main


def test_predict_file_mode(tmp_path, tiny_bundle, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(["a great film", "dull"])))
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(tiny_bundle), "--input", str(src), "--output", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == 2
    assert [json.loads(l)["id"] for l in out.read_text().splitlines()] == [0, 1]


def test_predict_file_mode_bad_row_is_one_line(tmp_path, tiny_bundle, capsys):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "fine"}\n{"text": null}\n')
    assert main(["predict", str(tiny_bundle), "--input", str(src), "--output", str(tmp_path / "o.jsonl")]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("lpm-edge predict: error:") and "in.jsonl:2: not text (missing)" in err


def test_texts_mode_still_works(tiny_bundle, capsys):
    assert main(["predict", str(tiny_bundle), "a great film", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] in ("neg", "pos")
