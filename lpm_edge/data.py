"""Labelled text datasets: the built-in `rotten-tomatoes` and CSV/TSV/JSONL files.

Standard library only. Labels are kept as names; `Dataset.labels` fixes their id order, and that
order travels with the checkpoint and the bundle.
"""

from __future__ import annotations

import bz2
import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import DataError

BUILTIN = ("rotten-tomatoes",)
SPLIT_SEED = 20240611


@dataclass(frozen=True)
class Split:
    texts: tuple[str, ...]
    labels: tuple[int, ...]  # ids into Dataset.labels

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int) -> "Split":
        return Split(self.texts[:n], self.labels[:n])


@dataclass(frozen=True)
class Dataset:
    name: str
    labels: tuple[str, ...]
    train: Split
    validation: Split
    test: Split

    def split(self, name: str) -> Split:
        if name not in ("train", "validation", "test"):
            raise DataError(f"unknown split {name!r}; use train, validation or test")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def load_dataset(
    source: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    validation: str | Path | None = None,
    test: str | Path | None = None,
    seed: int = SPLIT_SEED,
) -> Dataset:
    """Load a built-in dataset by name, or a CSV/TSV/JSONL file.

    A file without a separate validation (and test) file is split 80/10/10 with a fixed seed.
    """
    if str(source) == "rotten-tomatoes":
        return rotten_tomatoes(seed=seed)
    path = Path(source)
    if not path.is_file():
        raise DataError(
            f"dataset {str(source)!r} is neither a built-in name ({', '.join(BUILTIN)}) nor a file"
        )
    rows = read_rows(path, text_column, label_column)
    val_rows = read_rows(Path(validation), text_column, label_column) if validation else None
    test_rows = read_rows(Path(test), text_column, label_column) if test else None
    labels = _label_order(label for _, label, _ in rows)
    if len(labels) < 2:
        last_line = rows[-1][2].rsplit(":", 1)[1]
        raise DataError(
            f"{rows[0][2]}-{last_line}: every training row has the label {labels[0]!r}; a classifier "
            f"needs at least two labels. Check --label-column (now {label_column!r}) and the file"
        )
    for extra in (val_rows, test_rows):
        for _, label, where in extra or ():
            if label not in labels:
                raise DataError(
                    f"{where}: label {label!r} never occurs in the training file {path}; "
                    "every label must have training examples"
                )
    if val_rows is None:
        shuffled = list(rows)
        random.Random(seed).shuffle(shuffled)
        n_hold = max(1, len(shuffled) // 10)
        test_rows = test_rows if test_rows is not None else shuffled[:n_hold]
        val_rows = shuffled[n_hold : 2 * n_hold]
        rows = shuffled[2 * n_hold :] if test is None else shuffled[n_hold:]
    elif test_rows is None:
        test_rows = val_rows
    index = {name: i for i, name in enumerate(labels)}

    def to_split(items: Sequence[tuple[str, str, str]]) -> Split:
        return Split(tuple(t for t, _, _ in items), tuple(index[lab] for _, lab, _ in items))

    return Dataset(path.stem, labels, to_split(rows), to_split(val_rows), to_split(test_rows))


def _label_order(labels: Iterable[str]) -> tuple[str, ...]:
    unique = set(labels)
    try:  # numeric labels sort numerically ("2" after "10" would surprise people)
        return tuple(sorted(unique, key=lambda s: float(s)))
    except ValueError:
        return tuple(sorted(unique))


def read_rows(path: Path, text_column: str, label_column: str) -> list[tuple[str, str, str]]:
    """Read (text, label, 'file:line') rows; raise DataError naming the line on bad data."""
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".bz2" else path.suffix
    opener = bz2.open if path.suffix == ".bz2" else open
    columns = (text_column, label_column)
    try:
        # utf-8-sig: spreadsheets often write a byte-order mark, which would stick to the first column name
        with opener(path, "rt", encoding="utf-8-sig", newline="") as f:  # type: ignore[operator]
            if suffix.startswith(".jsonl") or suffix.startswith(".json"):
                records = _jsonl_records(f, path)
            elif suffix.startswith(".csv") or suffix.startswith(".tsv"):
                records = _csv_records(f, path, "\t" if suffix.startswith(".tsv") else ",", columns)
            else:
                raise DataError(f"{path}: unknown file type {suffix!r}; use .csv, .tsv or .jsonl")
            rows = []
            for line, record in records:
                where = f"{path}:{line}"
                for column in (text_column, label_column):
                    if column not in record:
                        raise DataError(
                            f"{where}: no column {column!r}; columns are {sorted(record)}. "
                            f"Choose with --text-column / --label-column"
                        )
                text, label = record[text_column], record[label_column]
                if not isinstance(text, str) or not text.strip():
                    raise DataError(f"{where}: empty or non-string text in column {text_column!r}")
                if label is None or str(label).strip() == "":
                    raise DataError(f"{where}: empty label in column {label_column!r}")
                rows.append((text, str(label).strip(), where))
    except UnicodeDecodeError as exc:
        line = _first_undecodable_line(path, opener)
        raise DataError(
            f"{path}:{line}: not UTF-8 text ({exc.reason}); re-save the file as UTF-8 "
            f"(e.g. iconv -f latin1 -t utf-8 {path.name} > fixed{suffix})"
        ) from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _first_undecodable_line(path: Path, opener: Any) -> int:
    """The 1-based line holding the first byte sequence that is not UTF-8 (text mode reads in
    chunks, so UnicodeDecodeError's offset says nothing about the line)."""
    with opener(path, "rb") as f:
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
                "Choose with --text-column / --label-column"
            )
    for record in reader:
        if None in record:  # more fields than the header
            raise DataError(f"{path}:{reader.line_num}: more fields than the header has")
        if any(value is None for value in record.values()):
            raise DataError(
                f"{path}:{reader.line_num}: fewer fields than the {len(reader.fieldnames)} of the header"
            )
        yield reader.line_num, record


def rotten_tomatoes(seed: int = SPLIT_SEED) -> Dataset:
    """Rotten Tomatoes critic snippets, fresh vs rotten, split 80/10/10 by movie (seeded).

    Splitting by movie keeps snippets of one film out of more than one split.
    """
    from .assets import rotten_tomatoes_file

    path = rotten_tomatoes_file()
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] in ("fresh", "rotten")]
    split_of = split_by_movie([r["movie_name"] for r in rows], seed)
    labels = ("rotten", "fresh")
    parts: dict[str, tuple[list[str], list[int]]] = {s: ([], []) for s in ("train", "validation", "test")}
    for r in rows:
        texts, ids = parts[split_of[r["movie_name"]]]
        texts.append(r["text"].strip())
        ids.append(labels.index(r["category"]))
    return Dataset(
        "rotten-tomatoes",
        labels,
        *(Split(tuple(parts[s][0]), tuple(parts[s][1])) for s in ("train", "validation", "test")),
    )


def split_by_movie(movie_names: Iterable[str], seed: int = SPLIT_SEED) -> dict[str, str]:
    """Assign each movie to train (80%), validation or test (10% each) of its movies, seeded."""
    movies = sorted(set(movie_names))
    random.Random(seed).shuffle(movies)
    n = len(movies)
    split_of = {m: "train" for m in movies[: int(n * 0.8)]}
    split_of.update({m: "validation" for m in movies[int(n * 0.8) : int(n * 0.9)]})
    split_of.update({m: "test" for m in movies[int(n * 0.9) :]})
    return split_of
