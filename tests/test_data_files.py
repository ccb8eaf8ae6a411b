"""read_texts: the one reader of unlabelled texts (pretrain --text, export/search --unlabelled, an
embedding task's --data)."""

from __future__ import annotations

import bz2
import importlib.util

import pytest

from lpm_edge.data_files import read_texts, text_rows
from lpm_edge.errors import DataError


def test_lines_csv_tsv_and_jsonl_give_stripped_texts(tmp_path):
    (tmp_path / "a.txt").write_text("first text\n\n  second text  \n", encoding="utf-8")
    assert read_texts(tmp_path / "a.txt") == ["first text", "second text"]
    (tmp_path / "notes.log").write_text("any suffix\nis lines\n", encoding="utf-8")
    assert read_texts(tmp_path / "notes.log") == ["any suffix", "is lines"]
    with bz2.open(tmp_path / "plain.bz2", "wt", encoding="utf-8") as f:
        f.write("one\ntwo\n")
    assert read_texts(tmp_path / "plain.bz2") == ["one", "two"]
    (tmp_path / "b.csv").write_text('id,body\n1,"one, with a comma"\n2, two \n', encoding="utf-8")
    assert read_texts(tmp_path / "b.csv", "body") == ["one, with a comma", "two"]
    (tmp_path / "b.tsv").write_text('id\tbody\n1\t"quoted" as is\n', encoding="utf-8")
    assert read_texts(tmp_path / "b.tsv", "body") == ['"quoted" as is']
    (tmp_path / "c.jsonl").write_text('{"text": "x y"}\n\n{"text": "z"}\n', encoding="utf-8")
    assert read_texts(tmp_path / "c.jsonl") == ["x y", "z"]


def test_empty_cells_are_skipped_in_every_format(tmp_path):
    (tmp_path / "a.csv").write_text("id,text\n1,kept\n2,\n3,  \n4,also kept\n", encoding="utf-8")
    assert read_texts(tmp_path / "a.csv") == ["kept", "also kept"]
    (tmp_path / "a.jsonl").write_text('{"text": "kept"}\n{"text": ""}\n{"text": null}\n{"text": "also"}\n',
                                      encoding="utf-8")
    assert read_texts(tmp_path / "a.jsonl") == ["kept", "also"]
    # the texts kept still name their own lines
    assert text_rows(tmp_path / "a.csv") == [("kept", f"{tmp_path / 'a.csv'}:2"), ("also kept", f"{tmp_path / 'a.csv'}:5")]


def test_bad_files_name_the_file_and_line(tmp_path):
    (tmp_path / "b.csv").write_text("id,body\n1,x\n", encoding="utf-8")
    with pytest.raises(DataError, match="b.csv:1: no column 'text'.*--text-column"):
        read_texts(tmp_path / "b.csv")
    (tmp_path / "a.jsonl").write_text('{"body": "x y"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"a.jsonl:1: no column 'text'; columns are \['body'\]"):
        read_texts(tmp_path / "a.jsonl")
    (tmp_path / "n.jsonl").write_text('{"text": "fine"}\n{"text": 3}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"n.jsonl:2: column 'text' holds int 3, not text.*--text-column"):
        read_texts(tmp_path / "n.jsonl")
    (tmp_path / "latin.txt").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.txt:2: not UTF-8 text"):
        read_texts(tmp_path / "latin.txt")
    with pytest.raises(DataError, match="missing.txt does not exist"):
        read_texts(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt: no texts"):
        read_texts(tmp_path / "empty.txt")
    (tmp_path / "blank.csv").write_text("text\n\"\"\n", encoding="utf-8")
    with pytest.raises(DataError, match="blank.csv: no texts"):
        read_texts(tmp_path / "blank.csv")


@pytest.mark.skipif(importlib.util.find_spec("datasets") is None,
                    reason='needs the data extra: pip install "lpm-edge[data]"')
def test_parquet_and_saved_folders(tmp_path):
    import datasets

    table = datasets.Dataset.from_dict({"body": ["one", None, "", " two "], "n": [1, 2, 3, 4]})
    table.to_parquet(str(tmp_path / "t.parquet"))
    table.save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "t.parquet", tmp_path / "saved"):
        assert read_texts(path, "body") == ["one", "two"], path
    with pytest.raises(DataError, match=r"t.parquet: no column 'text'; columns are \['body', 'n'\]"):
        read_texts(tmp_path / "t.parquet")
    with pytest.raises(DataError, match=r"t.parquet:row 1: column 'n' holds int 1, not text"):
        read_texts(tmp_path / "t.parquet", "n")
