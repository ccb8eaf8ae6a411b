"""What a pair model on `rotten-tomatoes-pairs` has to beat, and what it gets to see.

A lexical baseline with no training: a pair's score is the summed inverse document frequency (over
the plots) of the words its plot and snippet share; the threshold that maximises accuracy on the
validation split decides test pairs. Also the share of pairs whose plot the tokenizer cuts at each
max length (`longest_first` truncation shortens the plot, the snippet keeps its tokens), since a
model can only match what it reads. numpy and tokenizers only; seconds on a CPU.

With `--embedding-bundle B` (an lpm-edge embedding bundle, e.g. `lpm-edge export MODEL --task embedding
--recipe cpu-fp32`), a second baseline: the cosine of the plot's and the snippet's vectors, embedded
apart (a bi-encoder, no training), with its cut tuned on validation the same way.

    PYTHONPATH=. .venv/bin/python benchmarks/pairs_baseline.py --out benchmarks/results/pairs-baseline \
        [--embedding-bundle runs/minilm-embedding]
"""

from __future__ import annotations

import argparse
import collections
import math
import re
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import _report  # benchmarks/_report.py, beside this script

WORD = re.compile(r"[a-z']{3,}")


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def idf_scores(rows: Sequence[Any], idf: dict[str, float]) -> np.ndarray:
    """Summed idf of the words each ((plot, snippet), label, where) row's two texts share."""
    return np.array([sum(idf.get(w, 0.0) for w in words(p) & words(q)) for (p, q), _, _ in rows])


def cosine_scores(bundle: Path, parts: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per validation and test pair, the cosine of its plot's and its snippet's vectors (the bundle's
    `embed` returns them L2-normalised), each distinct text embedded once."""
    import lpm_edge

    enc = lpm_edge.load(bundle)
    out = {}
    for s in ("validation", "test"):
        texts = sorted({t for pair, _, _ in parts[s] for t in pair})
        vec = dict(zip(texts, enc.embed(texts)))
        out[s] = np.array([float(vec[p] @ vec[q]) for (p, q), _, _ in parts[s]])
    return out


def best_threshold(scores: np.ndarray, gold: np.ndarray) -> float:
    """The cut (score > cut predicts same-movie) with the highest accuracy on these rows."""
    cuts = np.unique(np.concatenate([[-1.0], scores]))
    acc = [((scores > c) == gold).mean() for c in cuts]
    return float(cuts[int(np.argmax(acc))])


def bootstrap_ci(correct: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    idx = np.random.default_rng(seed).integers(0, len(correct), size=(n_boot, len(correct)))
    lo, hi = np.percentile(correct[idx].mean(axis=1), [2.5, 97.5])
    return float(lo), float(hi)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for baseline.json and baseline.md")
    p.add_argument("--embedding-bundle", type=Path, default=None, help="also the cosine baseline of this bundle")
    a = p.parse_args(argv)
    from tokenizers import Tokenizer

    from lpm_edge.assets import builtin_model_dir
    from lpm_edge.data import SPLIT_SEED
    from lpm_edge.data_pairs import LABELS, rotten_tomatoes_pair_parts

    _, _, parts, sources = rotten_tomatoes_pair_parts(SPLIT_SEED)
    plots = {p for s in parts.values() for (p, _), _, _ in s}
    df = collections.Counter(w for plot in plots for w in words(plot))
    idf = {w: math.log(len(plots) / n) for w, n in df.items()}
    gold = {s: np.array([label == LABELS[1] for _, label, _ in rows]) for s, rows in parts.items()}
    baselines = {"shared-word idf": {s: idf_scores(rows, idf) for s, rows in parts.items() if s != "train"}}
    if a.embedding_bundle:
        baselines[f"cosine of {a.embedding_bundle.name}'s vectors"] = cosine_scores(a.embedding_bundle, parts)
    result: dict[str, Any] = {"command": _report.command(), "source": sources["test"], "baselines": {}}
    for name, scores in baselines.items():
        cut = best_threshold(scores["validation"], gold["validation"])
        result["baselines"][name] = {"threshold": cut, "splits": {}}
        for s in ("validation", "test"):
            correct = (scores[s] > cut) == gold[s]
            result["baselines"][name]["splits"][s] = {"pairs": len(correct), "accuracy": float(correct.mean()),
                                                     "ci95": bootstrap_ci(correct.astype(float))}

    tok = Tokenizer.from_file(str(Path(builtin_model_dir()) / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    lengths = np.array([len(e.ids) for e in tok.encode_batch([(p, q) for (p, q), _, _ in parts["test"]])])
    result["pair_tokens"] = {"median": float(np.median(lengths)),
                             "cut_at": {str(n): float((lengths > n).mean()) for n in (64, 128, 256)}}

    lines = ["# What a pair model has to beat on rotten-tomatoes-pairs", "",
             f"`{result['command']}`", "",
             "Baselines with no training, each with the cut that maximises validation accuracy:", "",
             "| baseline | cut | split | pairs | accuracy | 95% CI |", "|---|---|---|---|---|---|"]
    for name, b in result["baselines"].items():
        for s, r in b["splits"].items():
            lines.append(f"| {name} | {b['threshold']:.3f} | {s} | {r['pairs']:,} | {r['accuracy']:.4f} "
                         f"| [{r['ci95'][0]:.4f}, {r['ci95'][1]:.4f}] |")
    pt = result["pair_tokens"]
    lines += ["", f"Test pairs' tokens (plot + snippet, MiniLM's tokenizer): median {pt['median']:.0f}; cut at max "
              "length " + ", ".join(f"{n}: {v:.1%}" for n, v in pt["cut_at"].items()) + " of the pairs.", ""]
    _report.save(a.out / "baseline", result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
