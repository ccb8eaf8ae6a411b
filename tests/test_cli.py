import json

import pytest

import lpm_edge
from lpm_edge.cli import main


def test_predict_prints_label_score_text(tiny_bundle, capsys):
    assert main(["predict", str(tiny_bundle), "a great film", "awful plot"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["pos", "neg"]
    assert lines[0].endswith("a great film")


def test_predict_json(tiny_bundle, capsys):
    assert main(["predict", str(tiny_bundle), "superb", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["label"] == "pos" and set(row["scores"]) == {"neg", "pos"}


def test_inspect_text_and_json(tiny_bundle, capsys):
    assert main(["inspect", str(tiny_bundle)]) == 0
    text = capsys.readouterr().out
    assert "cpu-int8" in text and "neg, pos" in text and "accuracy" in text
    assert "on 40 validation texts of tiny.csv (a 10% cut, seed 20240611)" in text
    assert "fusions     Attention 2," in text and "(bert family)" in text
    assert main(["inspect", str(tiny_bundle), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["labels"] == ["neg", "pos"]
    assert summary["fusion"]["attention"] == 2
    assert summary["total_bytes"] > 0


def test_pack_then_load_zip(tiny_bundle, tmp_path, capsys):
    archive = tmp_path / "b.zip"
    assert main(["pack", str(tiny_bundle), str(archive)]) == 0
    from_zip = lpm_edge.load(archive, providers="cpu").predict_proba(["great", "bad"])
    from_dir = lpm_edge.load(tiny_bundle, providers="cpu").predict_proba(["great", "bad"])
    assert (from_zip == from_dir).all()


def test_known_errors_exit_1_with_one_line(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "missing"), "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lpm-edge predict: error:") and "does not exist" in err
    assert len(err.splitlines()) == 1


def test_export_refuses_to_overwrite_without_force(tiny_checkpoint, tiny_bundle, capsys):
    assert main(["export", str(tiny_checkpoint), "--out", str(tiny_bundle)]) == 1
    assert "--force" in capsys.readouterr().err


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main(["export"])
    assert exc.value.code == 2
