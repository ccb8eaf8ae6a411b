"""The transfer set: texts the teacher labels for distillation besides the labelled training texts.

- Unlabelled in-domain text the user provides (`--unlabelled FILE`): one text per line (.txt or
  any other suffix), or a CSV/TSV/JSONL file (optionally .bz2) with a text column.
- Augmented copies of the training texts (`distill.augment = "edit"`): a random span of words
  deleted, then two words swapped. The issue also suggests the teacher's masked-LM replacements;
  a classification checkpoint has no masked-LM head (the demo model ships none either), so they
  are not offered.

These texts carry no gold label: they enter the soft (teacher) loss only (label NO_LABEL, which
cross-entropy ignores).
"""

from __future__ import annotations

import hashlib
import logging
import random
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..data_files import _csv_records, _jsonl_records, format_suffix, open_text
from ..errors import DataError

if TYPE_CHECKING:
    from .recipe import DistillConfig

log = logging.getLogger("lpm_edge.export")
NO_LABEL = -100  # torch.nn.functional.cross_entropy's default ignore_index
SEED = 0
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")


def read_texts(path: str | Path, text_column: str = "text") -> list[str]:
    """Non-empty texts of `path`: a column of a CSV/TSV/JSONL file, else one text per line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"unlabelled text file {path} does not exist")
    suffix = format_suffix(path)
    try:
        with open_text(path) as f:
            if suffix in (".jsonl", ".json"):
                texts = [_text(r, text_column, f"{path}:{line}") for line, r in _jsonl_records(f, path)]
            elif suffix in (".csv", ".tsv"):
                records = _csv_records(f, path, "\t" if suffix == ".tsv" else ",", (text_column,))
                texts = [_text(r, text_column, f"{path}:{line}") for line, r in records]
            else:
                texts = [line.strip() for line in f]
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason}); re-save the file as UTF-8") from None
    texts = [t for t in texts if t]
    if not texts:
        raise DataError(f"{path}: no texts (expected one per line, or a CSV/TSV/JSONL file with a "
                        f"{text_column!r} column)")
    return texts


def _text(record: dict, column: str, where: str) -> str:
    if column not in record:
        raise DataError(f"{where}: no column {column!r}; columns are {sorted(record)}. Choose with --text-column")
    value = record[column]
    return value.strip() if isinstance(value, str) else ""


def edit(text: str, rng: random.Random) -> str:
    """Delete a random span of up to a fifth of the words (at least one), then swap two words;
    texts of fewer than three words come back unchanged."""
    words = text.split()
    if len(words) < 3:
        return text
    span = rng.randint(1, max(1, len(words) // 5))
    start = rng.randrange(0, len(words) - span + 1)
    words = words[:start] + words[start + span :]
    if len(words) >= 2:
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def augmented(texts: Sequence[str], config: "DistillConfig", seed: int = SEED) -> list[str]:
    """`config.augment_copies` edited copies of each text (augment = "edit"), the same on every run;
    copies equal to their text (too short to edit) are left out."""
    if config.augment == "none":
        return []
    rng = random.Random(seed)
    out = []
    for _ in range(config.augment_copies):
        out += [e for t in texts if (e := edit(t, rng)) != t]
    return out


def texts_hash(texts: Sequence[str]) -> str:
    """sha256 of the texts in order; "" for none."""
    if not texts:
        return ""
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()
