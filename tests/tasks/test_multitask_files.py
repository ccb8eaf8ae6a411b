"""Multi-task from several files, one per head (`--head NAME=FILE[:regression]`): texts merged across
files, a head's missing label masked out of its loss and metrics, one-line errors naming file and line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lpm_edge import tasks
from lpm_edge.data import load_dataset
from lpm_edge.errors import ConfigError, DataError
from lpm_edge.tasks.multitask_files import parse

from .test_multitask_mixed import mixed_rows, write_rows


def head_files(d: Path, n: int = 120) -> str:
    """sentiment and stars on the first 2/3 of the texts, topic on the last 2/3: a third share both."""
    rows = mixed_rows(n)
    a, b = rows[: 2 * n // 3], rows[n // 3 :]
    write_rows(d / "sent.csv", [(t, s) for t, s, _, _ in a], header=("text", "label"))
    write_rows(d / "topic.csv", [(t, tp) for t, _, tp, _ in b], header=("text", "topic"))
    (d / "stars.jsonl").write_text("".join(json.dumps({"text": t, "label": float(v)}) + "\n" for t, _, _, v in a))
    return f"sentiment={d / 'sent.csv'},topic={d / 'topic.csv'},stars={d / 'stars.jsonl'}:regression"


def test_files_merge_by_text_and_missing_labels_are_nan(tmp_path):
    spec = head_files(tmp_path)
    ds = load_dataset(spec, task="multi-task")
    assert ds.labels == ("sentiment:neg", "sentiment:pos", "topic:acting", "topic:plot", "stars:regression")
    gold = np.array([g for s in (ds.train, ds.validation, ds.test) for g in s.labels], dtype=float)
    assert len(gold) == 120  # one example per distinct text
    has = ~np.isnan(gold)
    assert has[:, 0].sum() == 80 and has[:, 1].sum() == 80 and has[:, 2].sum() == 80
    assert (has[:, 0] & has[:, 1]).sum() == 40  # the shared third carries both heads' labels
    task = tasks.from_section("multi-task", ds.labels)
    out = np.zeros((len(ds.test), 5), np.float32)
    m = task.metrics(ds.test.labels, out)  # each head scored on its own examples only: no NaN
    assert not any(math.isnan(v) for k, v in m.items() if "accuracy" in k)


def test_head_spec_parsing_and_bad_rows_name_file_and_line(tmp_path):
    assert parse("a=x.csv,b=C:/d/y.csv:regression") == [("a", "classification", Path("x.csv")),
                                                         ("b", "regression", Path("C:/d/y.csv"))]
    with pytest.raises(ConfigError, match="at least two heads"):
        parse("a=x.csv")
    with pytest.raises(ConfigError, match="given twice"):
        parse("a=x.csv,a=y.csv")
    spec = head_files(tmp_path)
    lines = (tmp_path / "stars.jsonl").read_text().splitlines()
    lines[4] = json.dumps({"text": "a fine film", "label": "many"})
    (tmp_path / "stars.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"head 'stars': .*stars\.jsonl:5: target 'many'"):
        load_dataset(spec, task="multi-task")
    rows = mixed_rows(120)
    write_rows(tmp_path / "topic.csv", [(rows[0][0], "plot" if rows[0][2] == "acting" else "acting"),
                                        *[(t, tp) for t, _, tp, _ in rows]], header=("text", "topic"))
    (tmp_path / "stars.jsonl").write_text("".join(json.dumps({"text": t, "label": float(v)}) + "\n"
                                                  for t, _, _, v in rows))
    with pytest.raises(DataError, match=r"topic\.csv:3: label .* of head 'topic', but .*topic\.csv:2 gives"):
        load_dataset(spec, task="multi-task")
    write_rows(tmp_path / "topic.csv", [(t, tp) for t, _, tp, _ in rows], header=("text", "genre"))
    with pytest.raises(DataError, match=r"topic\.csv:1: no label column 'topic' .* or 'label'"):
        load_dataset(spec, task="multi-task")


def test_cli_head_flags_train_a_masked_multi_task_model(tmp_path, tiny_model, capsys):
    from lpm_edge.cli import main

    spec = head_files(tmp_path, 240).split(",")
    out = tmp_path / "ckpt"
    rc = main(["train", "--model", str(tiny_model), "--out", str(out), *[f"--head={h}" for h in spec],
               "--epochs", "1", "--batch-size", "16", "--max-length", "32", "--threads", "1", "--patience", "0"])
    assert rc == 0, capsys.readouterr().err
    summary = capsys.readouterr().out
    assert "test worst_head_score" in summary and "nan" not in summary, summary  # no macro-F1 a regression head lacks
    info = json.loads((out / "training.json").read_text())
    assert info["task"]["kinds"] == {"sentiment": "classification", "topic": "classification", "stars": "regression"}
    assert math.isfinite(info["test"]["worst_head_score"]) and math.isfinite(info["test"]["stars/mse"])
    assert main(["train", "--model", str(tiny_model), "--out", str(tmp_path / "x"), "--head", spec[0],
                 "--head", spec[1], "--task", "regression"]) == 1
    assert "--head trains a multi-task model" in capsys.readouterr().err
    # export reads the head files again from training.json and measures every head on its own examples
    from lpm_edge import load
    from lpm_edge.export import export

    bundle = export(out, tmp_path / "int8", "cpu-int8", max_accuracy_drop=100.0)
    m = json.loads((bundle / "manifest.json").read_text())["metrics"]
    assert m["metric"] == "worst_head_score" and math.isfinite(m["accuracy_drop_points"])
    assert set(load(bundle).predict("a good plot")) == {"sentiment", "topic", "stars"}
