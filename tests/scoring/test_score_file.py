"""Batch scoring of files: formats, order, other columns kept, bad rows, resume, workers."""

from __future__ import annotations

import json

import pytest

from lpm_edge.errors import ConfigError, DataError
from lpm_edge.scoring import formats, run, score_file

from ..conftest import synthetic_rows
from ..task_bundles import killed_after_two_chunks, read_output, write_texts


def _texts(n: int) -> list[str]:
    return [t for t, _ in synthetic_rows(n, seed=3)]


@pytest.fixture(scope="module")
def clf(tiny_bundle):
    from lpm_edge import load

    return load(tiny_bundle, providers="cpu")


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_every_row_scored_in_order_with_its_columns(tmp_path, tiny_bundle, clf, suffix):
    texts = _texts(300) + ['a "quoted", comma, text']
    src = write_texts(tmp_path / f"in{suffix}", texts)
    result = score_file(tiny_bundle, src, tmp_path / f"out{suffix}", chunk_rows=64, progress=False)
    rows = read_output(result.output)
    assert (result.rows, result.skipped, result.chunks) == (301, 0, 5)
    assert [str(r["id"]) for r in rows] == [str(i) for i in range(301)]
    assert [r["text"] for r in rows] == texts
    # chunk by chunk, as scoring does: dynamic int8 quantizes each batch with its own scales
    expected = [p for i in range(0, len(texts), 64) for p in clf.predict(texts[i : i + 64])]
    assert [r["pred_label"] for r in rows] == [p.label for p in expected]
    assert max(abs(float(r["pred_score"]) - p.score) for r, p in zip(rows, expected)) < 1e-5
    assert not run.work_dir(result.output).exists()


def test_reading_is_streamed(tmp_path):
    src = write_texts(tmp_path / "in.csv", _texts(1000))
    fmt = formats.open_format(src, "text", 100, 1000)
    chunks = fmt.chunks()
    first = next(chunks)
    assert len(first.texts) == 100 and fmt.progress() < 0.5


def test_bad_rows_stop_the_run_with_their_line_or_are_skipped(tmp_path, tiny_bundle):
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(_texts(40))]
    lines[4] = json.dumps({"id": 4, "text": 17})
    lines[8] = "{not json"
    lines[12] = json.dumps({"id": 12, "text": "x" * 500})
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"in.jsonl:5: not text \(int\); pass --skip-bad"):
        score_file(tiny_bundle, src, tmp_path / "out.jsonl", max_chars=400, progress=False)
    assert not (tmp_path / "out.jsonl").exists()
    result = score_file(tiny_bundle, src, tmp_path / "out.jsonl", max_chars=400, skip_bad=True, force=True,
                        progress=False)
    assert (result.rows, result.skipped) == (37, 3)
    assert [r["id"] for r in read_output(result.output)] == [i for i in range(40) if i not in (4, 8, 12)]


def test_undecodable_text_is_a_bad_row_other_bytes_pass_through(tmp_path, tiny_bundle):
    src = tmp_path / "in.csv"
    src.write_bytes(b"id,text\n1,good film\n2,bad \xff film\n\xfe3,great film\n")
    with pytest.raises(DataError, match=r"in.csv:3: not UTF-8 text"):
        score_file(tiny_bundle, src, tmp_path / "out.csv", progress=False)
    result = score_file(tiny_bundle, src, tmp_path / "out.csv", skip_bad=True, force=True, progress=False)
    data = result.output.read_bytes().splitlines()
    assert result.skipped == 1 and data[0] == b"id,text,pred_label,pred_score"
    assert data[2].startswith(b"\xfe3,great film,")  # a byte that is not UTF-8, outside the text, kept


def test_an_interrupted_run_resumes_without_redoing_chunks(tmp_path, tiny_bundle, monkeypatch):
    src = write_texts(tmp_path / "in.csv", _texts(500))
    fresh = score_file(tiny_bundle, src, tmp_path / "fresh.csv", chunk_rows=100, progress=False)

    out = tmp_path / "out.csv"
    with killed_after_two_chunks(monkeypatch):
        score_file(tiny_bundle, src, out, chunk_rows=100, progress=False)
    assert not out.exists() and len(list(run.work_dir(out).glob("part-*.json"))) == 2
    with pytest.raises(ConfigError, match="--resume"):
        score_file(tiny_bundle, src, out, chunk_rows=100, progress=False)
    with pytest.raises(ConfigError, match="chunk_rows changed"):
        score_file(tiny_bundle, src, out, chunk_rows=50, resume=True, progress=False)
    result = score_file(tiny_bundle, src, out, chunk_rows=100, resume=True, progress=False)
    assert (result.resumed_chunks, result.rows) == (2, 500)
    assert out.read_bytes() == fresh.output.read_bytes()


def test_user_errors_are_clear(tmp_path, tiny_bundle):
    src = write_texts(tmp_path / "in.csv", _texts(5))
    (tmp_path / "taken.csv").write_text("x")
    with pytest.raises(ConfigError, match="already exists; pass --force"):
        score_file(tiny_bundle, src, tmp_path / "taken.csv")
    with pytest.raises(ConfigError, match="input's format"):
        score_file(tiny_bundle, src, tmp_path / "out.jsonl")
    with pytest.raises(DataError, match="no column 'body'"):
        score_file(tiny_bundle, src, tmp_path / "out.csv", text_column="body")
    with pytest.raises(ConfigError, match="unknown file type '.txt'"):
        score_file(tiny_bundle, tmp_path / "in.txt", tmp_path / "out.txt")


@pytest.mark.slow
def test_two_workers_give_the_single_process_output(tmp_path, tiny_bundle):
    src = write_texts(tmp_path / "in.jsonl", _texts(2000))
    one = score_file(tiny_bundle, src, tmp_path / "one.jsonl", chunk_rows=128, progress=False)
    two = score_file(tiny_bundle, src, tmp_path / "two.jsonl", chunk_rows=128, workers=2, progress=False)
    assert two.workers == 2 and two.rows == 2000
    assert two.output.read_bytes() == one.output.read_bytes()


def test_a_chunk_of_bad_rows_only_is_skipped_whole(tmp_path, tiny_bundle):
    lines = [json.dumps({"id": i, "text": None if i in (2, 3) else t}) for i, t in enumerate(_texts(6))]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    result = score_file(tiny_bundle, src, tmp_path / "out.jsonl", chunk_rows=2, skip_bad=True, progress=False)
    assert (result.rows, result.skipped, result.chunks) == (4, 2, 3)
    assert [r["id"] for r in read_output(result.output)] == [0, 1, 4, 5]
