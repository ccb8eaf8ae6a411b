"""Tiny fp32 bundles of every task, for the tests of the output paths (predict, file scoring, Ray, serve),
and what those tests share: input files to score, reading outputs back, comparing records, a run
killed part way, a bundle whose graph no longer matches its hash.

Each bundle is trained for a few epochs on the tasks' own synthetic data (tests/tasks) and exported
once per test session; the models are barely trained: the tests compare every path with
`Classifier.records`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

KINDS = ("text-classification", "multi-label", "regression", "multi-task", "embedding", "token-classification")
# Texts every path scores: filler words, sentiment words, a topic word and names the NER data uses.
TEXTS = ["the plot was superb", "a dull and boring film", "the movie and alice smith in paris",
         "the acting was awful", "it was a really lovely story", "bob jones and the plot in rome"]

_BUILT: dict[str, Path] = {}


def task_bundle(kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The tiny bundle of task `kind` (or "pairs": single-label on sentence pairs), built on first use
    in this session."""
    if kind not in _BUILT:
        if kind == "text-classification":
            _BUILT[kind] = request.getfixturevalue("tiny_fp32_bundle")
        else:
            _BUILT[kind] = _build(kind, tmp_path_factory.mktemp(f"task-{kind}"), request)
    return _BUILT[kind]


def _build(kind: str, d: Path, request: pytest.FixtureRequest) -> Path:
    from lpm_edge.export import export
    from lpm_edge.train import train

    from .conftest import make_tiny_model, synthetic_rows, tiny_train_config

    model = request.getfixturevalue("tiny_model")
    if kind == "embedding":
        from .tasks.test_embedding import st_layout

        corpus = d / "texts.txt"
        corpus.write_text("\n".join(t for t, _ in synthetic_rows(120, seed=3)) + "\n")
        embed_model = st_layout(make_tiny_model(d / "tiny-embed"))
        return export(embed_model, d / "bundle", "cpu-fp32", data=str(corpus), task="embedding",
                      max_accuracy_drop=50.0, student_cache=False)
    options: dict[str, Any]
    if kind == "pairs":  # single-label on (premise, hypothesis) pairs
        from .tasks.test_pairs import pair_rows, write_pairs

        options = {"data": str(write_pairs(d / "pairs.csv", pair_rows(200))), "text_column": "premise",
                   "text_pair_column": "hypothesis"}
        kind = "text-classification"
    elif kind == "multi-label":
        from .tasks.test_multi_label import multi_rows, write_jsonl

        options = {"data": str(write_jsonl(d / "ml.jsonl", multi_rows(200))), "label_column": "labels"}
    elif kind == "regression":
        from .tasks.test_regression import regression_rows
        from .tasks.test_regression import write_jsonl as write_scores

        options = {"data": str(write_scores(d / "scores.jsonl", regression_rows(200))), "label_column": "score"}
    elif kind == "multi-task":
        from .tasks.test_multitask import multi_rows as head_rows, write_rows

        options = {"data": str(write_rows(d / "multi.csv", head_rows(200))), "label_column": "sentiment,topic"}
    else:
        from .tasks.test_token_classification import ner_sentences, write_conll

        options = {"data": str(write_conll(d / "train.conll", ner_sentences(300))), "metric": "entity_f1"}
    checkpoint = train(tiny_train_config(d / "ckpt", model, task=kind, epochs=4, **options))
    return export(checkpoint, d / "bundle", "cpu-fp32", max_accuracy_drop=100.0, student_cache=False)


def close(a: Any, b: Any) -> bool:
    """Records (or cells) equal, floats to 1e-5."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) < 1e-5
    return a == b


def write_texts(path: Path, texts: list[str], bad: frozenset[int] | set[int] = frozenset()) -> Path:
    """Rows (id, text) in the format of `path`'s suffix (CSV, TSV unquoted as TSV files are, JSONL,
    Parquet); rows in `bad` have no text (JSON null, Parquet null; left out of CSV and TSV, where an
    empty field is a text)."""
    rows = [(i, None if i in bad else t) for i, t in enumerate(texts)]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows))
    elif path.suffix == ".parquet":
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": [i for i, _ in rows], "text": pa.array([t for _, t in rows], pa.string())}),
                       path)
    elif path.suffix == ".tsv":
        path.write_text("id\ttext\n" + "".join(f"{i}\t{t}\n" for i, t in rows if t is not None))
    else:
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["id", "text"])
            w.writerows((i, t) for i, t in rows if t is not None)
    return path


def read_output(path: Path) -> list[dict]:
    """The rows of a scored file (CSV, TSV, JSONL, Parquet) as dicts."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, newline="") as f:
        if path.suffix == ".tsv":
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        return list(csv.DictReader(f))


@contextlib.contextmanager
def killed_after_two_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Inside: a scoring run raises KeyboardInterrupt once two chunks are written (as if killed);
    the block must raise it. After: runs finish their chunks again."""
    from lpm_edge.scoring import run

    real, calls = run._finish, []

    def dies_after_two(*args: Any, **kwargs: Any) -> None:
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        real(*args, **kwargs)

    monkeypatch.setattr(run, "_finish", dies_after_two)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(run, "_finish", real)


def corrupt_copy(bundle: Path, to: Path) -> Path:
    """A copy of `bundle` with one byte of its graph flipped: the hash no longer matches, so every
    load refuses it."""
    shutil.copytree(bundle, to)
    model = to / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    return to
