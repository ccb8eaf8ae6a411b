"""Labelled rows from files: CSV, TSV and JSONL with the standard library; Parquet, Arrow and
folders saved with `datasets`' save_to_disk through the `datasets` library (the `data` extra,
imported only when such a file is read).

Every row carries where it came from ('file:line', or 'file:row N' for columnar files), so that a
bad value, or a text found in two splits, names its place.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import DataError, MissingDependencyError

Row = tuple[Any, Any, str]  # (text, or (text, text_pair) for pairs; label name, or a tuple of names for
# several label columns, or a list for multi-label; 'file:line')


def label_columns(label_column: str) -> tuple[str, ...]:
    """'sentiment,topic' -> ('sentiment', 'topic'): a multi-task file names its label columns with commas
    (a head's kind after a colon, 'stars:regression', is not part of the column's name)."""
    return tuple(c.partition(":")[0].strip() for c in label_column.split(",")) if "," in label_column \
        else (label_column,)
DATASETS_SUFFIXES = (".parquet", ".arrow")
DATA_EXTRA = 'pip install "lpm-edge[data]"'


def _row(record: Mapping[str, Any], where: str, text_column: str, label_column: str,
         label_lists: bool = False, text_pair_column: str | None = None) -> Row:
    if "," in label_column:  # several label columns (multi-task): the row's label is a tuple, one per column
        rows = [_row(record, where, text_column, c, False, text_pair_column) for c in label_columns(label_column)]
        return rows[0][0], tuple(r[1] for r in rows), where
    for column in (text_column, label_column, *([text_pair_column] if text_pair_column else [])):
        if column not in record:
            raise DataError(
                f"{where}: no column {column!r}; columns are {sorted(record)}. "
                f"Choose with --text-column / --label-column" + (" / --text-pair-column" if text_pair_column else "")
            )
    text, label = record[text_column], record[label_column]
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: empty or non-string text in column {text_column!r}")
    if text_pair_column:
        second = record[text_pair_column]
        if not isinstance(second, str) or not second.strip():
            raise DataError(f"{where}: missing second text: empty or non-string value in column "
                            f"{text_pair_column!r} (--text-pair-column); every row of a pair task needs both texts")
        text = (text, second)
    if label_lists and (label is None or isinstance(label, (list, tuple, str))):
        return text, label, where  # a list of labels, or none: the task reads them (multi-label)
    if label is None or str(label).strip() == "":
        raise DataError(f"{where}: empty label in column {label_column!r}")
    return text, str(label).strip(), where


def format_suffix(path: Path) -> str:
    """The suffix that names a file's format: `.csv` for both texts.csv and texts.csv.bz2."""
    return path.suffixes[-2] if path.suffix == ".bz2" and len(path.suffixes) > 1 else path.suffix


def _opener(path: Path) -> Any:
    """bz2.open for a path ending in .bz2, else open."""
    return bz2.open if path.suffix == ".bz2" else open


def open_text(path: Path) -> Any:
    """`path` opened for reading text, through bz2 when it ends in .bz2. utf-8-sig: spreadsheets often
    write a byte-order mark, which would stick to the first column name."""
    return _opener(path)(path, "rt", encoding="utf-8-sig", newline="")


def read_rows(path: Path, text_column: str, label_column: str, text_pair_column: str | None = None,
              label_lists: bool = False) -> list[Row]:
    """Read (text, label, 'file:line') rows; raise DataError naming the line on bad data. With
    `text_pair_column`, each text is a (text, text_pair) tuple and an empty second text is an error.

    label_lists: a label cell may hold a list (JSONL, Parquet) or be empty, and stays as it is for
    the task to read (multi-label); otherwise every label is a non-empty string.

    CSV, TSV and JSONL (optionally .bz2) with the standard library; Parquet, Arrow and a folder
    written by `datasets`' save_to_disk through the `datasets` library.
    """
    path = Path(path)
    if path.is_dir() or path.suffix in DATASETS_SUFFIXES:
        return _datasets_rows(path, text_column, label_column, label_lists, text_pair_column)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    suffix = format_suffix(path)
    columns = (text_column, *label_columns(label_column), *([text_pair_column] if text_pair_column else []))
    try:
        with open_text(path) as f:
            if suffix.startswith(".jsonl") or suffix.startswith(".json"):
                records = _jsonl_records(f, path)
            elif suffix.startswith(".csv") or suffix.startswith(".tsv"):
                records = _csv_records(f, path, "\t" if suffix.startswith(".tsv") else ",", columns)
            else:
                raise DataError(
                    f"{path}: unknown file type {suffix!r}; use .csv, .tsv, .jsonl, .parquet, .arrow "
                    "or a folder saved with datasets' save_to_disk"
                )
            rows = [_row(record, f"{path}:{line}", text_column, label_column, label_lists, text_pair_column)
                    for line, record in records]
    except UnicodeDecodeError as exc:
        line = _first_undecodable_line(path)
        raise DataError(
            f"{path}:{line}: not UTF-8 text ({exc.reason}); re-save the file as UTF-8 "
            f"(e.g. iconv -f latin1 -t utf-8 {path.name} > fixed{suffix})"
        ) from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _first_undecodable_line(path: Path) -> int:
    """The 1-based line holding the first byte sequence that is not UTF-8 (text mode reads in
    chunks, so UnicodeDecodeError's offset says nothing about the line); through bz2 as `open_text`."""
    with _opener(path)(path, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return line_no
    return 0


def _jsonl_records(f: io.TextIOBase, path: Path) -> Iterable[tuple[int, dict]]:
    for line_no, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{line_no}: expected a JSON object per line")
        yield line_no, record


def _csv_records(
    f: io.TextIOBase, path: Path, delimiter: str, columns: Sequence[str]
) -> Iterable[tuple[int, dict]]:
    # TSV files (GLUE and most exports) do not quote fields: a '"' in a text is just a character
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.DictReader(f, delimiter=delimiter, quoting=quoting)
    if not reader.fieldnames:
        raise DataError(f"{path}: empty file, expected a header row")
    for column in columns:
        if column not in reader.fieldnames:
            raise DataError(
                f"{path}:1: no column {column!r} in the header; columns are {list(reader.fieldnames)}. "
                "Choose with --text-column / --label-column" + (" / --text-pair-column" if len(columns) > 2 else "")
            )
    for record in reader:
        if None in record:  # more fields than the header
            raise DataError(f"{path}:{reader.line_num}: more fields than the header has")
        if any(value is None for value in record.values()):
            raise DataError(
                f"{path}:{reader.line_num}: fewer fields than the {len(reader.fieldnames)} of the header"
            )
        yield reader.line_num, record


def dataset_dict_splits(
    path: Path, validation: str | Path | None, test: str | Path | None
) -> tuple[Path, str | Path | None, str | Path | None]:
    """For a folder where `datasets` saved a DatasetDict: its train split's folder, and its
    validation and test folders where no file was given. Any other path comes back unchanged."""
    if not (path / "dataset_dict.json").is_file():
        return path, validation, test
    splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
    if "train" not in splits:
        raise DataError(f"{path} holds the splits {splits} but no 'train'; pass one split's folder, e.g. "
                        f"--data {path / splits[0]}" if splits else f"{path}: dataset_dict.json names no splits")

    def pick(given: str | Path | None, names: Sequence[str]) -> str | Path | None:
        return given or next((path / n for n in names if n in splits), None)

    return path / "train", pick(validation, ("validation", "valid", "dev")), pick(test, ("test",))


def _datasets_rows(path: Path, text_column: str, label_column: str, label_lists: bool = False,
                   text_pair_column: str | None = None) -> list[Row]:
    """Rows of a Parquet file, an Arrow file or a save_to_disk folder, read with `datasets`.

    A ClassLabel column gives its label names ("neg", "pos"), not its integer ids.
    """
    pair = [text_pair_column] if text_pair_column else []
    columns, names = _datasets_columns(path, (text_column, label_column, *pair),
                                       "--text-column / --label-column" + (" / --text-pair-column" if pair else ""))
    texts, labels = columns[text_column], columns[label_column]
    seconds = columns[text_pair_column] if text_pair_column else [None] * len(texts)
    rows = []
    for i, (text, label, second) in enumerate(zip(texts, labels, seconds)):
        if label_column in names and isinstance(label, int) and 0 <= label < len(names[label_column]):
            label = names[label_column][label]
        record = {text_column: text, label_column: label, **({text_pair_column: second} if text_pair_column else {})}
        rows.append(_row(record, f"{path}:row {i + 1}", text_column, label_column, label_lists, text_pair_column))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _datasets_columns(path: Path, columns: Sequence[str], flags: str) -> tuple[dict[str, list], dict[str, list]]:
    """({column: values}, {column: label names}) of a Parquet file, an Arrow file or a save_to_disk
    folder, for each of `columns` (one missing is refused, `flags` name the options that choose
    them); label names for each ClassLabel column."""
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError(f"the 'datasets' library (needed to read {path})", DATA_EXTRA) from None
    if not path.exists():
        raise DataError(f"data file {path} does not exist")
    with tempfile.TemporaryDirectory(prefix="lpm-edge-data-") as cache:  # datasets' cache, not ~/.cache
        table = _open_with_datasets(datasets, path, cache)
        for column in columns:
            if column not in table.column_names:
                raise DataError(f"{path}: no column {column!r}; columns are {list(table.column_names)}. "
                                f"Choose with {flags}")
        names = {c: list(table.features[c].names) for c in columns if isinstance(table.features[c], datasets.ClassLabel)}
        return {c: table[c] for c in columns}, names


def _open_with_datasets(datasets: Any, path: Path, cache: str) -> Any:
    if path.is_dir():
        if (path / "dataset_dict.json").is_file():
            splits = json.loads((path / "dataset_dict.json").read_text()).get("splits", [])
            raise DataError(
                f"{path} holds several splits {splits}; name each split's folder, e.g. --data {path / 'train'} "
                f"--validation {path / 'validation'} --test {path / 'test'}"
            )
        if not (path / "state.json").is_file():
            raise DataError(
                f"{path} is a folder but not one written by datasets' save_to_disk (no state.json); "
                "pass a .csv/.tsv/.jsonl/.parquet/.arrow file or such a folder"
            )
        try:
            return datasets.load_from_disk(str(path), keep_in_memory=True)
        except Exception as exc:  # datasets raises many types for a damaged folder
            raise DataError(f"{path}: datasets cannot read this folder ({type(exc).__name__}: {exc})") from None
    builder = "parquet" if path.suffix == ".parquet" else "arrow"
    try:
        return datasets.load_dataset(builder, data_files=str(path), split="train", cache_dir=cache,
                                     keep_in_memory=True)
    except Exception as exc:  # pyarrow and datasets raise many types for a damaged file
        raise DataError(f"{path}: not a readable {builder} file ({type(exc).__name__}: {exc})") from None


def read_texts(path: Path, text_column: str = "text") -> list[str]:
    """Unlabelled texts, stripped: the `text_column` of a CSV, TSV or JSONL file (optionally .bz2), a
    Parquet or Arrow file or a save_to_disk folder; any other file holds one text per line.

    An empty text (a blank line, an empty or null cell) is skipped: it carries nothing to learn
    from, and a table exported from a database often has a few. A cell that holds something other
    than text (a number, a list) means the wrong column: DataError naming the file and line."""
    return [text for text, _ in text_rows(path, text_column)]


def text_rows(path: Path, text_column: str = "text") -> list[tuple[str, str]]:
    """(text, 'file:line') for each text `read_texts` reads."""
    path = Path(path)
    suffix = format_suffix(path)
    if path.is_dir() or suffix in DATASETS_SUFFIXES:
        cells = _datasets_columns(path, (text_column,), "--text-column")[0][text_column]
        rows = [_text_row({text_column: v}, text_column, f"{path}:row {i + 1}") for i, v in enumerate(cells)]
    elif not path.is_file():
        raise DataError(f"text file {path} does not exist")
    else:
        try:
            with open_text(path) as f:
                if suffix in (".jsonl", ".json"):
                    records = _jsonl_records(f, path)
                elif suffix in (".csv", ".tsv"):
                    records = _csv_records(f, path, "\t" if suffix == ".tsv" else ",", (text_column,))
                else:
                    records = ((n, {text_column: line}) for n, line in enumerate(f, start=1))
                rows = [_text_row(r, text_column, f"{path}:{n}") for n, r in records]
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}:{_first_undecodable_line(path)}: not UTF-8 text ({exc.reason}); "
                            "re-save the file as UTF-8") from None
    rows = [(text, where) for text, where in rows if text]
    if not rows:
        raise DataError(f"{path}: no texts (expected one per line, or a CSV/TSV/JSONL/Parquet file with a "
                        f"{text_column!r} column)")
    return rows


def _text_row(record: Mapping[str, Any], column: str, where: str) -> tuple[str, str]:
    """(the text of `record`'s `column`, stripped, `where`); '' for an empty or null cell (skipped)."""
    if column not in record:
        raise DataError(f"{where}: no column {column!r}; columns are {sorted(record)}. Choose with --text-column")
    value = record[column]
    if value is None:
        return "", where
    if not isinstance(value, str):
        raise DataError(f"{where}: column {column!r} holds {type(value).__name__} {value!r:.40}, not text; "
                        "choose the text column with --text-column")
    return value.strip(), where
