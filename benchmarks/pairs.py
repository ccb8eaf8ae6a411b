"""Sentence pairs on the built-in `rotten-tomatoes-pairs`: does this critic snippet review the movie of
this plot? The full model's accuracy, the int8 (and, with --pruned, pruned-int8) bundles' loss with a
95% CI, batch-1 end-to-end speed-up against PyTorch, and re-ranking quality with `rank`.

A short, bounded run (sized for a loaded 2-core CPU): MiniLM-L6 (the built-in model) fine-tuned for
`--epochs` on the first `--limit-train` training pairs, max length `--max-length` (plots are long:
`longest_first` truncation cuts the plot, the snippet keeps its tokens), validated and tested on the
first `--limit-eval` pairs of the validation and test splits (written as JSONL files, so every
command below reads the same rows). Then:
- `lpm-edge export` cpu-int8 (and cpu-pruned-int8 with --pruned);
- `lpm_edge.bench` on the test split (every pair of it; quick latency grid at batch 1);
- re-ranking: for each test plot, `rank(plot, every test snippet)` with the int8 bundle, and the same
  ordering from the full PyTorch model: precision@10 and mean average precision (chance: the share
  of a plot's own snippets among all test snippets).

    nice -n 10 .venv/bin/python benchmarks/pairs.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import _report  # benchmarks/_report.py, beside this script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for pairs.json and pairs.md")
    p.add_argument("--work", type=Path, default=Path("runs/pairs"), help="checkpoint and bundles (reused if there)")
    p.add_argument("--limit-train", type=int, default=3000)
    p.add_argument("--limit-eval", type=int, default=None, help="validation and test pairs (default: all)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--pruned", action="store_true", help="also export and measure cpu-pruned-int8 (distillation: slow)")
    return p.parse_args(argv)


def average_precision(relevant: np.ndarray) -> float:
    """AP of a ranked list of 0/1 relevance."""
    hits = np.cumsum(relevant)
    return float((hits / np.arange(1, len(relevant) + 1))[relevant == 1].mean()) if relevant.any() else 0.0


def ranking(test: Any, order_of: Any) -> dict[str, float]:
    """For each plot of `test`, its snippets ranked among every test snippet: P@10 and MAP."""
    plots = sorted({a for (a, _), y in zip(test.texts, test.labels) if y == 1})
    own = {p: {b for (a, b), y in zip(test.texts, test.labels) if y == 1 and a == p} for p in plots}
    snippets = sorted({b for _, b in test.texts})
    p10, aps = [], []
    for plot in plots:
        order = order_of(plot, snippets)  # snippet indices, most relevant first
        rel = np.array([snippets[i] in own[plot] for i in order], dtype=np.int64)
        p10.append(rel[:10].mean())
        aps.append(average_precision(rel))
    return {"plots": len(plots), "snippets": len(snippets), "p_at_10": float(np.mean(p10)), "map": float(np.mean(aps)),
            "chance": float(np.mean([len(own[p]) / len(snippets) for p in plots]))}


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    _report.log_to_stderr()
    import lpm_edge
    from lpm_edge.bench import BenchConfig, bench
    from lpm_edge.data import load_dataset
    from lpm_edge.export import export
    from lpm_edge.reference import TorchClassifier
    from lpm_edge.sysinfo import cpu_class
    from lpm_edge.train import TrainConfig, train

    a.work.mkdir(parents=True, exist_ok=True)
    a.out.mkdir(parents=True, exist_ok=True)
    ckpt = a.work / "checkpoint"
    builtin = load_dataset("rotten-tomatoes-pairs")
    files = {}
    for name, n in (("train", a.limit_train), ("validation", a.limit_eval), ("test", a.limit_eval)):
        split = builtin.split(name).head(n) if n else builtin.split(name)
        files[name] = a.work / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps({"text": t, "text_pair": p, "label": builtin.labels[y]}) + "\n"
                                       for (t, p), y in zip(split.texts, split.labels)))
    t0 = time.perf_counter()
    if not (ckpt / "training.json").is_file():
        train(TrainConfig(out=ckpt, data=str(files["train"]), validation=files["validation"], test=files["test"],
                          text_pair_column="text_pair", epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr,
                          max_length=a.max_length, patience=None, threads=a.threads, force=True))
    train_s = time.perf_counter() - t0
    info = json.loads((ckpt / "training.json").read_text())
    recipes = ["cpu-int8", *(["cpu-pruned-int8"] if a.pruned else [])]
    bundles, export_s = [], {}
    for recipe in recipes:
        path = a.work / recipe
        t0 = time.perf_counter()
        if not (path / "manifest.json").is_file():
            from lpm_edge.export.recipe import load_recipe

            export(ckpt, path, load_recipe(recipe).replace(max_length=a.max_length), force=True)
        export_s[recipe] = round(time.perf_counter() - t0, 1)
        bundles.append(path)
    config = BenchConfig.for_quick(batch_sizes=(1,), seq_lengths=(a.max_length,), plots=False, subprocess=False)
    report = bench(bundles, ckpt, a.out / "pairs-bench", config=config,
                   command="benchmarks/pairs.py (lpm_edge.bench, quick, batch 1)").to_dict()

    test = load_dataset(files["train"], text_pair_column="text_pair", validation=files["validation"],
                        test=files["test"]).test
    clf = lpm_edge.load(bundles[0], providers="cpu")
    full = TorchClassifier(ckpt, max_length=a.max_length)

    def bundle_order(plot: str, snippets: list[str]) -> list[int]:
        return [r.index for r in clf.rank(plot, snippets)]

    def full_order(plot: str, snippets: list[str]) -> list[int]:
        logits = full.logits([(plot, s) for s in snippets])
        p = np.exp(logits - logits.max(1, keepdims=True))
        return list(np.argsort(-(p[:, 1] / p.sum(1)), kind="stable"))

    t0 = time.perf_counter()
    rank_bundle = ranking(test, bundle_order)
    rank_bundle["seconds"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    rank_full = ranking(test, full_order)
    rank_full["seconds"] = round(time.perf_counter() - t0, 1)

    rows = []
    for c in report["candidates"]:
        vs = c.get("vs_reference") or {}
        rows.append({"name": c["name"], "accuracy": c["accuracy"], "loss_points": c.get("loss_points"),
                     "loss_ci95": c.get("loss_ci95"), "agreement": c.get("agreement"),
                     "b1_end_to_end_ms": c["latency"]["batch"]["1"]["end_to_end"]["median_ms"],
                     "b1_speedup": vs.get("end_to_end_b1_speedup"), "model_bytes": c["size"]["model_bytes"]})
    result = {"cpu_class": cpu_class(), "data": report["data"], "train": {
        "limit_train": a.limit_train, "limit_eval": a.limit_eval, "batch_size": a.batch_size, "lr": a.lr, "epochs": a.epochs, "max_length": a.max_length, "seconds": round(train_s, 1),
        "test": info["test"]}, "export_seconds": export_s, "candidates": rows,
        "ranking": {"pytorch": rank_full, "cpu-int8 bundle (rank)": rank_bundle}}
    md = [f"# rotten-tomatoes-pairs ({cpu_class()})", "",
          f"{report['data']['n']:,} test pairs; MiniLM-L6 fine-tuned {a.epochs:g} epoch(s) on {a.limit_train:,} "
          f"training pairs, max length {a.max_length}; train {train_s:.0f} s, export {export_s} s.", "",
          "| model | accuracy | loss (points) [95% CI] | agreement | batch-1 end-to-end ms | speed-up |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        ci = f" [{r['loss_ci95'][0]:+.2f}, {r['loss_ci95'][1]:+.2f}]" if r["loss_ci95"] else ""
        loss = f"{r['loss_points']:+.2f}{ci}" if r["loss_points"] is not None else "-"
        agree = f"{r['agreement']:.3f}" if r["agreement"] is not None else "-"
        speed = f"{r['b1_speedup']:.2f}x" if r["b1_speedup"] else "1x"
        md.append(f"| {r['name']} | {r['accuracy']:.4f} | {loss} | {agree} | {r['b1_end_to_end_ms']:.1f} | {speed} |")
    md += ["", "| re-ranking (each test plot, all test snippets) | P@10 | MAP | chance | seconds |", "|---|---|---|---|---|"]
    for name, r in result["ranking"].items():
        md.append(f"| {name} | {r['p_at_10']:.3f} | {r['map']:.3f} | {r['chance']:.3f} | {r['seconds']} |")
    _report.save(a.out / "pairs", result, "\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
