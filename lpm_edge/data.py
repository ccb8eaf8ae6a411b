"""Labelled text datasets: the built-in `rotten-tomatoes` (and the pair sets `rotten-tomatoes-pairs`
and `rotten-tomatoes-plot-sentences`, see data_pairs.py) and files (see data_files.py).

Labels are kept as names; `Dataset.labels` fixes their id order, and that order travels with the
checkpoint and the bundle. Every split knows its name and where its rows came from, and no text
is in two splits: load_dataset checks it (identical texts are dropped from validation and test
with a warning, or refused with strict=True).
"""

from __future__ import annotations

import bz2
import csv
import logging
import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Mapping

from .data_files import Row, dataset_dict_splits, read_rows
from .data_pairs import PAIR_SETS
from .errors import ConfigError, DataError

__all__ = ["BUILTIN", "BUILTIN_TEXTS", "Dataset", "Split", "load_dataset", "read_rows", "rotten_tomatoes",
           "split_by_movie", "unlabelled_texts"]

log = logging.getLogger("lpm_edge.data")

BUILTIN = ("rotten-tomatoes", *PAIR_SETS)
SPLIT_SEED = 20240611
SPLITS = ("train", "validation", "test")
HOLD_OUT = 0.1  # share of a file cut for each split it lacks (len // 10 rows)


@dataclass(frozen=True)
class Split:
    texts: tuple[Any, ...]  # str, or (text, text_pair) tuples for a task on pairs
    labels: tuple[Any, ...]  # gold values as the task reads them; single-label: ids into Dataset.labels
    name: str = ""  # train, validation or test
    source: str = ""  # where the rows came from: a file, or how they were cut from one

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int) -> "Split":
        return replace(self, texts=self.texts[:n], labels=self.labels[:n])

    def source_name(self) -> str:
        """`source` with file names only, no directories: what a bundle shipped elsewhere may say."""
        return re.sub(r"\S*/([^/\s]+)", r"\1", self.source)

    def describe(self) -> str:
        """'1,334 validation texts of FILE', the words every report uses for this split."""
        return f"{len(self):,} {self.name} texts of {self.source}"


@dataclass(frozen=True)
class Dataset:
    name: str
    labels: tuple[str, ...]
    train: Split
    validation: Split
    test: Split
    # texts dropped from a split because an identical text is in an earlier one, by split name
    dropped: Mapping[str, int] = field(default_factory=dict, compare=False)
    inputs: tuple[str, ...] = ("text",)  # ("text", "text_pair") when each text is a pair

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise DataError(f"unknown split {name!r}; use train, validation or test")
        return getattr(self, name)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def splits_info(self) -> dict[str, dict[str, Any]]:
        """{split: {"source", "n", "dropped_overlap"}}: what training.json and reports record."""
        return {s: {"source": self.split(s).source, "n": len(self.split(s)),
                    "dropped_overlap": int(self.dropped.get(s, 0))} for s in SPLITS}


def load_dataset(
    source: str | Path,
    *,
    text_column: str = "text",
    label_column: str = "label",
    validation: str | Path | None = None,
    test: str | Path | None = None,
    seed: int = SPLIT_SEED,
    strict: bool = False,
    eval_columns: tuple[str, str] | None = None,
    task: str = "text-classification",
    text_pair_column: str | None = None,
) -> Dataset:
    """Load a built-in dataset by name, or a file (CSV/TSV/JSONL, Parquet, Arrow, save_to_disk folder;
    a saved DatasetDict gives its train split, and its validation and test splits unless files are given).

    Each split the files do not provide is cut from the training file, 10% each with a fixed seed,
    so no row is in two splits. A text also found in an earlier
    split (train, then validation) is dropped from the later one with a warning; with strict=True
    it is an error instead. eval_columns: (text, label) columns of the validation and test files
    when they differ from the training file's. task: the kind of lpm_edge.tasks whose labels the
    label column holds; the task reads the label names and each row's gold value from the rows.
    text_pair_column: the second text of each row (every file's): texts are (text, text_pair)
    tuples and `inputs` is ("text", "text_pair").
    """
    from .tasks import task_class

    kind = task_class(task, "--task")
    own = kind.dataset(source, text_column=text_column, validation=validation, test=test, seed=seed, strict=strict)
    if own is not None:  # a task that reads its data its own way (embeddings: texts without labels)
        if text_pair_column and tuple(own.inputs) != ("text", "text_pair"):
            raise ConfigError(f"--text-pair-column {text_pair_column}: the {task} data {str(source)!r} is read as "
                              "single texts (head files, built-in sets); put both text columns in one file with "
                              "its label columns (--data FILE --label-column a,b)")
        return own
    if str(source) not in BUILTIN:  # a saved DatasetDict brings its own validation and test splits
        source, validation, test = dataset_dict_splits(Path(source), validation, test)
    eval_text, eval_label = eval_columns or (text_column, label_column)
    given = {
        "validation": kind.read_rows(Path(validation), eval_text, eval_label, text_pair_column) if validation else None,
        "test": kind.read_rows(Path(test), eval_text, eval_label, text_pair_column) if test else None,
    }
    if str(source) in BUILTIN:
        if str(source) in PAIR_SETS:
            name, labels, parts, sources = PAIR_SETS[str(source)](seed)
            text_pair_column = "text_pair"
        else:
            name, labels, parts, sources = _rotten_tomatoes_parts(seed)
        for s, rows in given.items():
            if rows is not None:
                parts[s], sources[s] = rows, str(validation if s == "validation" else test)
    else:
        path = kind.data_file(str(source))  # a task's built-in data set, else the path
        if not path.exists():
            raise DataError(
                f"dataset {str(source)!r} is neither a built-in name ({', '.join(BUILTIN)}) nor a file"
            )
        rows = kind.read_rows(path, text_column, label_column, text_pair_column)
        labels = kind.label_names(rows, label_column)
        name = path.stem if path == Path(source) else str(source)  # a built-in set keeps its name
        parts, sources = _cut(rows, given, path, seed)
        for s in ("validation", "test"):
            if given[s] is not None:
                sources[s] = str(validation if s == "validation" else test)
    for s in ("validation", "test"):
        kind.gold(given[s] or [], labels, f"the training file {source}")  # DataError naming the first bad row
    parts, dropped = _disjoint(parts, sources, strict)

    def to_split(s: str) -> Split:
        rows = parts[s]
        return Split(tuple(t for t, _, _ in rows), kind.gold(rows, labels, str(source)), s, sources[s])

    return Dataset(name, tuple(labels), *(to_split(s) for s in SPLITS), dropped=dropped,
                   inputs=("text", "text_pair") if text_pair_column else ("text",))


def _cut(
    rows: list[Row], given: Mapping[str, list[Row] | None], path: Path, seed: int
) -> tuple[dict[str, list[Row]], dict[str, str]]:
    """Train, validation and test rows: the given files, and cuts of `rows` for the splits missing.

    The seeded shuffle has two fixed slots of 10%: the first is the test cut, the second the
    validation cut. A slot whose split comes from a file stays in training, so a split that is
    cut is the same rows whichever other files are given (a checkpoint's validation split is the
    same when a later command adds a test file).
    """
    parts: dict[str, list[Row]] = {s: list(given[s] or ()) for s in ("validation", "test")}
    sources = {s: str(path) for s in SPLITS}
    missing = [s for s in ("test", "validation") if given[s] is None]
    train = list(rows)
    if missing:
        random.Random(seed).shuffle(train)
        n_hold = max(1, len(train) // 10)
        slots = {"test": train[:n_hold], "validation": train[n_hold : 2 * n_hold]}
        for s in missing:
            parts[s] = slots[s]
            sources[s] = f"{path} (a {HOLD_OUT:.0%} cut, seed {seed})"
        train = [*(slots["test"] if "test" not in missing else []),
                 *(slots["validation"] if "validation" not in missing else []), *train[2 * n_hold :]]
        sources["train"] = f"{path} (the rest after the {' and '.join(missing)} cut)"
    if not train:
        raise DataError(
            f"{path}: {len(rows)} rows are too few to cut {' and '.join(missing)} splits from; "
            "add rows or pass --validation and --test files"
        )
    parts["train"] = train
    return parts, sources


def _normal(text: Any) -> Any:
    from .pairs import normal

    return normal(text)


def _disjoint(
    parts: Mapping[str, list[Row]], sources: Mapping[str, str], strict: bool
) -> tuple[dict[str, list[Row]], dict[str, int]]:
    """Drop from validation and test each text (whitespace-normalised) already in an earlier split."""
    owner: dict[str, str] = {}
    out: dict[str, list[Row]] = {}
    dropped: dict[str, int] = {}
    for s in SPLITS:
        kept, clashes = [], []
        for row in parts[s]:
            first = owner.setdefault(_normal(row[0]), s)
            if first == s:
                kept.append(row)
            else:
                clashes.append((row, first))
        if clashes:
            (text, _, where), first = clashes[0]
            earlier = sorted({f for _, f in clashes}, key=SPLITS.index)
            shown = text[:60] if isinstance(text, str) else tuple(t[:40] for t in text)
            what = (f"{len(clashes)} of {len(parts[s])} {s} texts of {sources[s]} also occur in the "
                    f"{' and '.join(earlier)} split (first: {where}: {shown!r})")
            if strict:
                raise DataError(f"{what}; a text in two splits inflates the figures. Remove them from the {s} "
                                "file, or drop --strict to have them dropped from it")
            if not kept:
                raise DataError(f"{what}: none is left; pass a {s} file of other texts")
            log.warning("%s; dropped from the %s split (--strict refuses instead)", what, s)
            dropped[s] = len(clashes)
        out[s] = kept
    return out, dropped


def rotten_tomatoes(seed: int = SPLIT_SEED, strict: bool = False) -> Dataset:
    """Rotten Tomatoes critic snippets, fresh vs rotten, split 80/10/10 by movie (seeded).

    Splitting by movie keeps snippets of one film out of more than one split; the same snippet
    quoted for two films is dropped from the later split like any text in two splits.
    """
    return load_dataset("rotten-tomatoes", seed=seed, strict=strict)


def _rotten_tomatoes_parts(
    seed: int,
) -> tuple[str, tuple[str, ...], dict[str, list[Row]], dict[str, str]]:
    from .assets import rotten_tomatoes_file

    path = rotten_tomatoes_file()
    rows: list[tuple[dict[str, str], int]] = []
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for r in reader:
            if r["category"] in ("fresh", "rotten"):
                rows.append((r, reader.line_num))
    split_of = split_by_movie([r["movie_name"] for r, _ in rows], seed)
    parts: dict[str, list[Row]] = {s: [] for s in SPLITS}
    for r, line in rows:
        parts[split_of[r["movie_name"]]].append((r["text"].strip(), r["category"], f"rotten-tomatoes:{line}"))
    sources = {s: f"rotten-tomatoes (split by movie, seed {seed})" for s in SPLITS}
    return "rotten-tomatoes", ("rotten", "fresh"), parts, sources


def split_by_movie(movie_names: Iterable[str], seed: int = SPLIT_SEED) -> dict[str, str]:
    """Assign each movie to train (80%), validation or test (10% each) of its movies, seeded."""
    movies = sorted(set(movie_names))
    random.Random(seed).shuffle(movies)
    n = len(movies)
    split_of = {m: "train" for m in movies[: int(n * 0.8)]}
    split_of.update({m: "validation" for m in movies[int(n * 0.8) : int(n * 0.9)]})
    split_of.update({m: "test" for m in movies[int(n * 0.9) :]})
    return split_of


BUILTIN_TEXTS = ("rotten-tomatoes-plots", "rotten-tomatoes")


def unlabelled_texts(source: str | Path, text_column: str = "text", seed: int = SPLIT_SEED) -> tuple[list[str], str]:
    """(texts, where they came from) for self-supervised training: a file (see data_files.read_texts), or
    `rotten-tomatoes-plots`, the plot summaries of the built-in file (rows with category `plot`) except
    those of the movies in its validation and test splits, or `rotten-tomatoes`, its training split's
    texts (labels unused). Built-in texts never include a validation or test movie's, so a model
    pretrained on them is measured on texts it has not seen."""
    from .data_files import read_texts

    if str(source) == "rotten-tomatoes":
        return list(load_dataset("rotten-tomatoes", seed=seed).train.texts), \
            f"rotten-tomatoes training split (split by movie, seed {seed}), labels unused"
    if str(source) != "rotten-tomatoes-plots":
        path = Path(source)
        if not path.exists():
            raise DataError(f"text source {str(source)!r} is neither a built-in name ({', '.join(BUILTIN_TEXTS)}) "
                            "nor a file")
        return read_texts(path, text_column), str(path)
    from .assets import rotten_tomatoes_file

    with bz2.open(rotten_tomatoes_file(), "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    split_of = split_by_movie([r["movie_name"] for r in rows if r["category"] in ("fresh", "rotten")], seed)
    plots = [r for r in rows if r["category"] == "plot" and r["text"].strip()]
    texts = [r["text"].strip() for r in plots if split_of.get(r["movie_name"], "train") == "train"]
    return texts, (f"rotten-tomatoes plot summaries ({len(texts):,} of {len(plots):,}: those of validation and "
                   f"test movies left out, split by movie, seed {seed})")
