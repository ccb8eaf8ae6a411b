"""Every task's bundle through `lpm-edge predict` (stdin) and `predict --input/--output` (CSV, TSV, JSONL,
Parquet; worker processes, --skip-bad, --resume): each path gives `Classifier.records`."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import lpm_edge
from lpm_edge.scoring import score_file

from ..task_bundles import (KINDS, TEXTS, close, corrupt_copy, killed_after_two_chunks, read_output, task_bundle,
                            write_texts)

pytestmark = pytest.mark.slow  # the first use of each task trains and exports its tiny bundle


@pytest.fixture(params=KINDS)
def bundle(request, tmp_path_factory) -> Path:
    return task_bundle(request.param, tmp_path_factory, request)


def test_predict_stdin_prints_every_tasks_records(bundle, monkeypatch, capsys):
    from lpm_edge.cli import main

    clf = lpm_edge.load(bundle)
    want = clf.records(TEXTS)
    assert len(want) == len(TEXTS) and all(isinstance(r, dict) for r in want)
    json.dumps(want)  # JSON-ready
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO("\n".join(TEXTS).encode())))
    assert main(["predict", str(bundle), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert close(got, [{"text": t, **r} for t, r in zip(TEXTS, want)])
    assert main(["predict", str(bundle), *TEXTS[:2]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{clf.task.line(r)}\t{t}" for t, r in zip(TEXTS[:2], want[:2])]


def _texts(n: int) -> list[str]:
    return [TEXTS[i % len(TEXTS)] + " " + ["and", "very", "it"][i % 3] for i in range(n)]


def _cells(task, path: Path, rows: list[dict]) -> list[tuple]:
    """The added columns of `rows` as the task's `row` gives them (CSV cells parsed back)."""
    out = []
    for r in rows:
        values = []
        for name, kind in task.columns():
            v = r[name]
            if path.suffix in (".csv", ".tsv") and kind == "float":
                v = float(v)
            elif kind == "json" and path.suffix != ".jsonl" or kind == "vector" and path.suffix in (".csv", ".tsv"):
                v = json.loads(v)
            values.append(v)
        out.append(tuple(values))
    return out


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_score_file_adds_the_tasks_columns(bundle, suffix, tmp_path):
    texts = _texts(30)
    src = write_texts(tmp_path / f"in{suffix}", texts)
    result = score_file(bundle, src, tmp_path / f"out{suffix}", chunk_rows=8, progress=False)
    clf = lpm_edge.load(bundle)
    rows = read_output(result.output)
    assert result.rows == 30 and [int(r["id"]) for r in rows] == list(range(30))
    want = [clf.task.row(r) for r in clf.records(texts)]
    assert close(_cells(clf.task, result.output, rows), want)
    if suffix == ".parquet":  # typed columns: float32 scores, list<float32> vectors
        import pyarrow.parquet as pq

        types = {f.name: str(f.type) for f in pq.read_schema(result.output)}
        kinds = dict(clf.task.columns())
        assert all(types[n] == {"string": "string", "float": "float", "json": "string",
                                "vector": "list<element: float>"}[k] for n, k in kinds.items())


def test_workers_skip_bad_and_resume(bundle, tmp_path, monkeypatch):
    texts = _texts(40)
    src = write_texts(tmp_path / "in.jsonl", texts, bad={5, 17})
    local = score_file(bundle, src, tmp_path / "one.jsonl", chunk_rows=6, skip_bad=True, progress=False)
    assert (local.rows, local.skipped) == (38, 2)
    two = score_file(bundle, src, tmp_path / "two.jsonl", chunk_rows=6, skip_bad=True, workers=2, progress=False)
    assert two.output.read_bytes() == local.output.read_bytes()

    out = tmp_path / "out.jsonl"
    with killed_after_two_chunks(monkeypatch):
        score_file(bundle, src, out, chunk_rows=6, skip_bad=True, progress=False)
    result = score_file(bundle, src, out, chunk_rows=6, skip_bad=True, resume=True, progress=False)
    assert (result.resumed_chunks, result.rows, result.skipped) == (2, 38, 2)
    assert out.read_bytes() == local.output.read_bytes()


def test_cli_predict_input_output(bundle, tmp_path, capsys):
    from lpm_edge.cli import main

    src = write_texts(tmp_path / "in.jsonl", _texts(10), bad={3})
    out = tmp_path / "out.jsonl"
    args = ["predict", str(bundle), "--input", str(src), "--output", str(out)]
    assert main(args) == 1
    assert "in.jsonl:4: not text (missing); pass --skip-bad" in capsys.readouterr().err
    assert main([*args, "--skip-bad", "--force"]) == 0
    rows = read_output(out)
    clf = lpm_edge.load(bundle)
    names = [n for n, _ in clf.task.columns()]
    assert [r["id"] for r in rows] == [i for i in range(10) if i != 3]
    assert all(set(r) == {"id", "text", *names} for r in rows)


def test_record_shapes(bundle):
    clf = lpm_edge.load(bundle)
    records = clf.records(TEXTS)
    print(clf.task.kind, json.dumps(records[2])[:300])
    kind = clf.task.kind
    if kind == "text-classification":
        assert set(records[0]) == {"label", "score", "scores"}
    elif kind == "multi-label":
        assert set(records[0]) == {"labels", "scores", "all_scores"}
    elif kind == "regression":
        assert set(records[0]) == {"value"} and isinstance(records[0]["value"], float)
    elif kind == "multi-task":
        assert set(records[0]) == {"sentiment", "topic"} and set(records[0]["topic"]) == {"label", "score", "scores"}
    elif kind == "embedding":
        v = np.asarray(records[0]["embedding"])
        assert v.shape == (clf.task.dim,) and abs(np.linalg.norm(v) - 1) < 1e-4
        assert np.allclose(v, clf.embed(TEXTS[0]), atol=1e-6)
    else:
        want = clf.entities(TEXTS)
        assert [[tuple(e.values()) for e in r["entities"]] for r in records] == \
            [[(e.label, e.score, e.start, e.end, e.text) for e in found] for found in want]
        assert any(r["entities"] for r in records)
        assert all(TEXTS[i][e["start"]:e["end"]] == e["text"] for i, r in enumerate(records) for e in r["entities"])


def test_a_bundle_that_fails_to_load_in_a_worker_is_one_line(tmp_path, tiny_bundle, capsys):
    from lpm_edge.cli import main

    bad = corrupt_copy(tiny_bundle, tmp_path / "bundle")  # each worker's load refuses it
    src = write_texts(tmp_path / "in.jsonl", _texts(4))
    code = main(["predict", str(bad), "--input", str(src), "--output", str(tmp_path / "out.jsonl"), "--workers", "2"])
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if x.startswith("lpm-edge predict: error: ")]  # besides an info log line
    assert code == 1 and "model.onnx: sha256" in line and "Traceback" not in err
