"""Distillation ablation: one fixed pruned student, each transfer technique added in turn.

The student is the checkpoint pruned to `--layers` evenly spaced layers, `--heads` of its heads and
`--ffn` of its FFN width removed (gradient importance, as the cpu-pruned-int8 recipe does), then
distilled by `lpm_edge.export.compress` with, cumulatively:

    logits       KL to the teacher's logits at temperature 2 + cross-entropy (today's recipe)
    early        + early stopping on validation texts (distill.eval_every, distill.patience)
    hidden       + hidden-state MSE per mapped layer (distill.hidden_weight)
    attention    + MiniLM-v2 Q/K/V relations of the last layer (distill.attention_relation_weight)
    unlabelled   + the built-in corpus's plot summaries (category `plot`) of movies outside the
                   validation and test splits, labelled by the teacher only (--unlabelled)
    edit         + one edited copy (span deletion, word swap) of each training text (distill.augment)

A variant may also name its techniques exactly, joined by `+` (logits always included), to measure
a combination outside that order: `--variants early,early+hidden+unlabelled+edit` compares early
stopping alone with the `students-vnni-narrow` recipe's distillation, without the attention term.

Each student is scored in PyTorch fp32 (no ONNX, no int8: this measures distillation alone) on
the whole validation and test splits, against the teacher, with the paired bootstrap 95% CI of the
accuracy lost (lpm_edge.evaluate.compare). Early stopping reads validation texts, so its
validation figures are optimistic; the test split is the one to read.

Each variant is written to OUT/VARIANT.json as it finishes (a re-run skips finished variants), then
the table to OUT/distill_ablation.md and .json.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/distill_ablation.py \\
        --checkpoint runs/demo/checkpoint --out benchmarks/results/distill_ablation
"""

from __future__ import annotations

import argparse
import bz2
import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import _report  # benchmarks/_report.py, beside this script

VARIANTS = ("logits", "early", "hidden", "attention", "unlabelled", "edit")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint trained on rotten-tomatoes")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help=f"comma-separated subset of {', '.join(VARIANTS)}; join names with + for exactly those techniques")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--heads", type=float, default=0.5, help="fraction of heads removed (MiniLM: 12 -> 6)")
    p.add_argument("--ffn", type=float, default=0.5, help="fraction of FFN width removed")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--eval-samples", type=int, default=512)
    p.add_argument("--hidden-weight", type=float, default=1.0)
    p.add_argument("--attention-weight", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    a.variants = a.variants.split(",")
    unknown = {t for v in a.variants for t in v.split("+")} - set(VARIANTS)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}, or join them with +")
    return a


def techniques(variant: str) -> set[str]:
    """What a variant distils with: a name adds its technique to those before it in VARIANTS;
    names joined by + are exactly those (and logits)."""
    if "+" in variant:
        return {"logits", *variant.split("+")}
    return set(VARIANTS[: VARIANTS.index(variant) + 1])


def recipe_of(a: argparse.Namespace, variant: str) -> Any:
    from lpm_edge.export.recipe import DistillConfig, PruneConfig, Recipe

    used = techniques(variant)
    d: dict[str, Any] = dict(steps=a.steps, batch_size=a.batch_size, learning_rate=a.learning_rate)
    if "early" in used:
        d.update(eval_every=a.eval_every, patience=a.patience, eval_samples=a.eval_samples)
    if "hidden" in used:
        d.update(hidden_weight=a.hidden_weight)
    if "attention" in used:
        d.update(attention_relation_weight=a.attention_weight)
    if "edit" in used:
        d.update(augment="edit")
    return Recipe(name=f"ablation-{variant}", prune=PruneConfig(heads=a.heads, ffn=a.ffn, layers=a.layers),
                  distill=DistillConfig(**d))


def plot_summaries() -> list[str]:
    """Plot summaries (category `plot`) of movies in neither the validation nor the test split."""
    from lpm_edge.assets import rotten_tomatoes_file
    from lpm_edge.data import split_by_movie

    with bz2.open(rotten_tomatoes_file(), "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    split_of = split_by_movie([r["movie_name"] for r in rows if r["category"] in ("fresh", "rotten")])
    return [r["text"].strip() for r in rows
            if r["category"] == "plot" and split_of.get(r["movie_name"], "train") == "train" and r["text"].strip()]


def flops_per_token(student: Any) -> int:
    """Multiply-adds × 2 of the encoder's Linear layers per token (attention scores, which grow with
    the text's length, and the embeddings are left out)."""
    import torch

    encoder = student.base_model.encoder
    return int(sum(2 * m.in_features * m.out_features for m in encoder.modules() if isinstance(m, torch.nn.Linear)))


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge.evaluate import compare
    from lpm_edge.export.compress import compress
    from lpm_edge.export.early_stop import logits_of
    from lpm_edge.export.pipeline import checkpoint_dataset
    from lpm_edge.sysinfo import cpu_class
    from lpm_edge.tasks import from_training
    from lpm_edge.train import read_training_info

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    teacher = AutoModelForSequenceClassification.from_pretrained(a.checkpoint, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(a.checkpoint)
    info = read_training_info(a.checkpoint)
    dataset = checkpoint_dataset(None, info)
    task = from_training(info, dataset.labels)
    cached = a.out / "teacher_logits.npz"
    if cached.is_file():
        t_logits = dict(np.load(cached))
    else:
        t_logits = {s: logits_of(teacher, tok, list(dataset.split(s).texts), 128).numpy()
                    for s in ("validation", "test")}
        np.savez(cached, **t_logits)
    plots = plot_summaries()
    for variant in a.variants:
        path = a.out / f"{variant}.json"
        if path.is_file():
            continue
        recipe = recipe_of(a, variant)
        unlabelled = plots if "unlabelled" in techniques(variant) else ()
        torch.manual_seed(0)
        started = time.perf_counter()
        kwargs = {"unlabelled": unlabelled} if unlabelled else {}
        student, info = compress(teacher, tok, dataset, recipe, **kwargs)
        seconds = time.perf_counter() - started
        row: dict[str, Any] = {"variant": variant, "recipe": recipe.to_dict(), "seconds": round(seconds, 1),
                               "unlabelled_texts": len(unlabelled), "compression": info,
                               "flops_per_token": flops_per_token(student),
                               "parameters": info["parameters"]["after"]}
        for s in ("validation", "test"):
            split = dataset.split(s)
            s_logits = logits_of(student, tok, list(split.texts), 128).numpy()
            ref, got = compare(split, [("teacher", t_logits[s]), (variant, s_logits)], task)
            row[s] = {"teacher": ref.accuracy, **got.metrics(), "n": got.n}
        path.write_text(json.dumps(row, indent=1, default=str))
        logging.info("%s: test %.4f (teacher %.4f), validation %.4f, %.0f s", variant, row["test"]["accuracy"],
                     row["test"]["teacher"], row["validation"]["accuracy"], seconds)
    # Every finished variant in OUT: the cumulative ones in their order, then the +-joined ones as asked.
    names = [*VARIANTS, *(v for v in a.variants if v not in VARIANTS)]
    rows = [json.loads((a.out / f"{v}.json").read_text()) for v in names if (a.out / f"{v}.json").is_file()]
    report = {"cpu_class": cpu_class(), "checkpoint": a.checkpoint.name, "args": {k: str(v) for k, v in vars(a).items()},
              "rows": rows}
    _report.save(a.out / "distill_ablation", report, markdown(report))
    print(markdown(report))
    return 0


def markdown(report: dict[str, Any]) -> str:
    def cell(r: dict[str, Any], s: str) -> str:
        m = r[s]
        lo, hi = m["loss_ci95"] or (float("nan"), float("nan"))
        return f"{m['accuracy'] * 100:.2f} | {-m['loss_points']:+.2f} [{-hi:+.2f}, {-lo:+.2f}]"

    lines = [f"CPU: {report['cpu_class']}; student and teacher in PyTorch fp32.", "",
             "| variant | steps run (best) | minutes | validation % | vs teacher [95% CI] | test % | vs teacher [95% CI] |",
             "|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        d = r["compression"].get("distill", {})
        es = d.get("early_stopping")
        steps = f"{d.get('steps')} ({es['best_step']})" if es else str(d.get("steps"))
        lines.append(f"| {r['variant']} | {steps} | {r['seconds'] / 60:.1f} | {cell(r, 'validation')} | "
                     f"{cell(r, 'test')} |")
    if report["rows"]:
        r = report["rows"][0]
        lines += ["", f"Teacher: validation {r['validation']['teacher'] * 100:.2f}%, test {r['test']['teacher'] * 100:.2f}%. "
                  f"Student: {r['parameters'] / 1e6:.2f}M parameters, {r['flops_per_token'] / 1e6:.1f} MFLOPs per token "
                  "in the encoder's Linear layers."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
