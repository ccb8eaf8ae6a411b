"""Multi-task data from several files, one per head:
`sentiment=reviews.csv,topic=news.jsonl,stars=ratings.csv:regression,tags=tags.jsonl:multi-label` (the CLI's
repeated `--head NAME=FILE[:kind]` builds this string; it is what training.json records as
the data, so export and bench read the same files again).

Each file gives one head's labels: its text column (--text-column) and its label column, the column
named like the head, else `label`. The files may hold the same texts or different ones: rows are
merged by text (whitespace-normalised), so a text found in two files is one example with both heads'
labels, and an example without a head's label is left out of that head's loss and metrics (its gold
is NaN there). One text with two different labels for one head is an error naming both lines.
Validation and test are cut from the merged examples (10% each, seeded) as for one file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError

# NAME=FILE[:kind]; a Windows drive's colon is part of FILE since only a known kind ends the spec.
_SPEC = re.compile(r"^\s*([^=,:\s][^=,:]*?)\s*=\s*(.+?)\s*$")


def is_head_files(source: Any) -> bool:
    """Whether a --data value is a head-files spec (NAME=FILE,...) rather than a path or a built-in name."""
    text = str(source)
    return "=" in text and not Path(text).exists()


def parse(source: str) -> list[tuple[str, str, Path]]:
    """'a=x.csv,b=y.csv:regression' -> [(head, kind, path)]; ConfigError naming a malformed entry."""
    from .multitask import HEADS, head_spec

    out = []
    for part in str(source).split(","):
        m = _SPEC.match(part)
        if not m:
            raise ConfigError(f"--head {part.strip()!r}: expected NAME=FILE, NAME=FILE:regression or "
                              "NAME=FILE:multi-label")
        name, file = m.group(1), m.group(2)
        stem, sep, kind = file.rpartition(":")
        if sep and kind in HEADS:
            file = stem
        else:
            kind = "classification"
        head, kind = head_spec(f"{name}:{kind}", "--head")
        if any(h == head for h, _, _ in out):
            raise ConfigError(f"--head {head}: given twice; one file per head")
        out.append((head, kind, Path(file)))
    if len(out) < 2:
        raise ConfigError(f"--head: a multi-task model has at least two heads, got {[h for h, _, _ in out]}")
    return out


def _head_rows(head: str, kind: str, path: Path, text_column: str) -> list[tuple[Any, Any, str]]:
    from .multitask import HEADS

    read = HEADS[kind].read_rows  # as the head's kind reads its column (a label set for a multi-label head)
    if not path.is_file() and not path.is_dir():
        raise DataError(f"--head {head}={path}: the file does not exist")
    try:
        return read(path, text_column, head)
    except DataError as exc:
        if f"no column {head!r}" not in str(exc):
            raise
    try:
        return read(path, text_column, "label")
    except DataError as exc:
        if "no column 'label'" not in str(exc):
            raise
        raise DataError(f"{path}:1: no label column {head!r} (the head's name) or 'label' for head {head!r}") from None


def dataset(source: str, *, text_column: str, validation: Any, test: Any, seed: int, strict: bool) -> Any:
    """The Dataset of a head-files spec (see the module's docstring)."""
    from ..pairs import normal
    from .multitask import HEADS

    if validation is not None or test is not None:
        raise ConfigError("--validation/--test with --head files: validation and test are cut from the head files; "
                          "put those rows in the head files or drop the flags")
    heads = parse(source)
    per_head = [_head_rows(head, kind, path, text_column) for head, kind, path in heads]
    for (head, kind, _), rows in zip(heads, per_head):  # a bad value names its own file's line
        try:
            HEADS[kind].label_names(rows, head)
        except DataError as exc:
            raise DataError(f"head {head!r}: {exc}") from None
    merged: dict[Any, list[Any]] = {}  # normalised text -> [text, [label per head], where, [where per head]]
    for k, ((head, _, _), head_rows) in enumerate(zip(heads, per_head)):
        for text, label, where in head_rows:
            entry = merged.setdefault(normal(text), [text, [None] * len(heads), where, [None] * len(heads)])
            if entry[1][k] is not None and entry[1][k] != label:
                raise DataError(f"{where}: label {label!r} of head {head!r}, but {entry[3][k]} gives the same text "
                                f"the label {entry[1][k]!r}; one text has one label per head")
            entry[1][k], entry[3][k] = label, where
    rows = [(text, tuple(labels), where) for text, labels, where, _ in merged.values()]
    spec = ",".join(f"{h}:{kind}" if kind != "classification" else h for h, kind, _ in heads)
    return from_rows(rows, spec, source, "+".join(h for h, _, _ in heads), seed, strict)


def from_rows(rows: list[tuple[Any, Any, str]], spec: str, source: str, name: str, seed: int, strict: bool) -> Any:
    """A multi-task Dataset from merged rows (label tuples, None = no label for a head), the heads named
    by `spec` ('party,debate', 'a,stars:regression'); validation and test cut as for one file."""
    from ..data import SPLITS, Dataset, Split, _cut, _disjoint
    from .multitask import MultiTask

    labels = MultiTask.label_names(rows, spec)
    parts, sources = _cut(rows, {"validation": None, "test": None}, Path(source), seed)
    parts, dropped = _disjoint(parts, sources, strict)

    def to_split(s: str) -> Split:
        return Split(tuple(t for t, _, _ in parts[s]), MultiTask.gold(parts[s], labels, source), s, sources[s])

    return Dataset(name, tuple(labels), *(to_split(s) for s in SPLITS), dropped=dropped)
