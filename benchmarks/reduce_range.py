"""int8 with and without `quantize.reduce_range` (7-bit weights): accuracy, agreement with fp32, latency.

ONNX Runtime's u8s8 int8 kernels on x86 CPUs without VNNI (AVX2) add pairs of uint8 x int8
products in 16 bits, which saturates when both products are large; 7-bit weights keep every pair
sum below 2^15. This measures what reduce_range costs on the CPU it runs on. The model is the
built-in all-MiniLM-L6-v2 with a logistic-regression head fitted on its frozen fp32 pooled
features (no fine-tune: minutes, not an hour), exported three ways with lpm-edge (cpu-fp32,
cpu-int8, cpu-int8 + reduce_range); the bundles are measured on the test split and timed at
batch 1, interleaved round-robin in one process.

    PYTHONPATH=. .venv/bin/python benchmarks/reduce_range.py --out runs/reduce-range \\
        --report benchmarks/results/reduce_range
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import _report  # benchmarks/_report.py, beside this script


def head_checkpoint(out: Path, n_train: int, threads: int) -> Path:
    """MiniLM with a classifier fitted on frozen pooled features of `n_train` training texts."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge.assets import builtin_model_dir
    from lpm_edge.data import load_dataset
    from lpm_edge.export.batches import shuffled

    if (out / "config.json").is_file():
        return out
    torch.set_num_threads(threads)
    data = load_dataset("rotten-tomatoes")
    src = builtin_model_dir()
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForSequenceClassification.from_pretrained(
        src, num_labels=len(data.labels), id2label=dict(enumerate(data.labels)),
        label2id={n: i for i, n in enumerate(data.labels)}, attn_implementation="eager").eval()
    rows = shuffled(len(data.train.texts))[:n_train]
    texts, y = [data.train.texts[i] for i in rows], torch.tensor([data.train.labels[i] for i in rows])
    feats = []
    with torch.no_grad():
        for s in range(0, len(texts), 64):
            enc = tok(texts[s : s + 64], truncation=True, max_length=128, padding=True, return_tensors="pt")
            feats.append(model.bert(**enc).pooler_output)  # (B, 384)
    x = torch.cat(feats)
    mean, std = x.mean(0), x.std(0) + 1e-6
    head = torch.nn.Linear(x.shape[1], len(data.labels))
    opt = torch.optim.LBFGS(head.parameters(), max_iter=200)

    def closure() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head((x - mean) / std), y) + 1e-3 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():  # fold the standardization into the classifier: W (x - m) / s + b
        w = head.weight / std
        model.classifier.weight.copy_(w)
        model.classifier.bias.copy_(head.bias - (w * mean).sum(1))
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="work folder (checkpoint and bundles)")
    p.add_argument("--report", type=Path, default=None, help="write REPORT.md and REPORT.json")
    p.add_argument("--n-train", type=int, default=2000, help="training texts for the head")
    p.add_argument("--rounds", type=int, default=300, help="timed batch-1 calls per bundle")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint", type=Path, default=None,
                   help="a fine-tuned checkpoint to use instead of fitting a head on frozen features")
    a = p.parse_args()
    _report.log_to_stderr()

    import lpm_edge
    from lpm_edge import sysinfo
    from lpm_edge.bench.latency import interleaved
    from lpm_edge.data import load_dataset
    from lpm_edge.export import export, load_recipe
    from lpm_edge.metrics import accuracy

    started = time.perf_counter()
    ckpt = a.checkpoint or head_checkpoint(a.out / "checkpoint", a.n_train, a.threads)
    int8 = load_recipe("cpu-int8")
    recipes = {
        "fp32": load_recipe("cpu-fp32"),
        "int8": int8,
        "int8 reduce_range": int8.replace(name="cpu-int8-reduce-range",
                                          quantize=dataclasses.replace(int8.quantize, reduce_range=True)),
    }
    bundles = {}
    for name, recipe in recipes.items():
        path = a.out / name.replace(" ", "-")
        if not (path / "manifest.json").is_file():
            export(ckpt, path, recipe, data="rotten-tomatoes", force=True, student_cache=False)
        bundles[name] = path
    test = load_dataset("rotten-tomatoes").test
    clfs = {n: lpm_edge.load(p, providers="cpu", threads=a.threads, spin=False) for n, p in bundles.items()}
    logits = {n: c.logits(list(test.texts)) for n, c in clfs.items()}
    texts = list(test.texts)
    calls = [(lambda c: (lambda r: c.logits([texts[r % len(texts)]])))(c) for c in clfs.values()]
    times = interleaved(calls, a.rounds, warmup=20)
    rows = {}
    for (name, path), t in zip(bundles.items(), times):
        m = json.loads((path / "manifest.json").read_text())["metrics"]
        rows[name] = {
            "validation_accuracy": m["bundle_accuracy"], "validation_drop_points": m["accuracy_drop_points"],
            "test_accuracy": accuracy(test.labels, logits[name].argmax(1)),
            "test_argmax_agreement_with_fp32": float((logits[name].argmax(1) == logits["fp32"].argmax(1)).mean()),
            "test_max_abs_logit_diff_vs_fp32": float(np.abs(logits[name] - logits["fp32"]).max()),
            "test_mean_abs_logit_diff_vs_fp32": float(np.abs(logits[name] - logits["fp32"]).mean()),
            "batch1_median_ms": float(np.median(t)) * 1000,
            "model_bytes": (path / "model.onnx").stat().st_size,
        }
    result = {
        "command": _report.command(), "cpu_class": sysinfo.cpu_class(),
        "machine": sysinfo.machine(), "reference_validation_accuracy": m["reference_accuracy"],
        "validation_texts": m["n"], "test_texts": len(texts), "threads": a.threads, "rounds": a.rounds,
        "seconds": round(time.perf_counter() - started, 1), "bundles": rows,
    }
    lines = [f"# int8 with and without reduce_range on {result['cpu_class']}", "",
             f"`{result['command']}` ({result['seconds']:.0f} s; {result['machine']['cpu']['model']}, "
             f"{a.threads} thread(s), ONNX Runtime {result['machine']['libraries'].get('onnxruntime')})", "",
             (f"checkpoint {a.checkpoint}; " if a.checkpoint else
              f"all-MiniLM-L6-v2 + a logistic-regression head on frozen pooled features ({a.n_train} training texts); ")
             + f"full model validation accuracy {result['reference_validation_accuracy']:.4f} on "
             f"{result['validation_texts']} texts; test split {len(texts)} texts; batch-1 latency median of "
             f"{a.rounds} calls, interleaved.", "",
             "| bundle | validation acc | drop (points) | test acc | test agreement with fp32 | max / mean abs logit diff vs fp32 | batch 1 ms | model MB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['validation_accuracy']:.4f} | {r['validation_drop_points']:+.2f} | "
                     f"{r['test_accuracy']:.4f} | {r['test_argmax_agreement_with_fp32'] * 100:.2f}% | "
                     f"{r['test_max_abs_logit_diff_vs_fp32']:.4f} / {r['test_mean_abs_logit_diff_vs_fp32']:.4f} | "
                     f"{r['batch1_median_ms']:.2f} | {r['model_bytes'] / 1e6:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.report:
        _report.save(a.report, result, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
