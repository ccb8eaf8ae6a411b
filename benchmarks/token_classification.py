"""Token classification: entity F1 of the full model and of each bundle on one split, with the paired
bootstrap 95% CI of each bundle's loss, and batch-1 latency of `entities(text)` side by side.

The full model is the checkpoint in PyTorch (fp32, the head training.json records), run through the
same windows and word alignment as the bundles; latency is end to end (tokenize, run, group into
entities, aggregation "first"), one text at a time, the models interleaved round-robin, median and
p90 over the split's first texts.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/token_classification.py CHECKPOINT BUNDLE... \\
        [--split validation] [--latency-texts 50] [--threads 1] [--out results/token_classification]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import _report  # benchmarks/_report.py, beside this script


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("bundles", type=Path, nargs="+")
    p.add_argument("--split", default="validation", choices=["validation", "test"])
    p.add_argument("--latency-texts", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)

    import torch

    import lpm_edge
    from lpm_edge import sysinfo
    from lpm_edge.evaluate import evaluate
    from lpm_edge.export.pipeline import checkpoint_dataset
    from lpm_edge.reference import TorchClassifier
    from lpm_edge.train import read_training_info

    torch.set_num_threads(a.threads)
    info = read_training_info(a.checkpoint)
    split = checkpoint_dataset(None, info).split(a.split)
    models = [(b.name, lpm_edge.load(b, providers="cpu", threads=a.threads, spin=False)) for b in a.bundles]
    task = models[0][1].task
    ref = TorchClassifier(a.checkpoint, threads=a.threads, max_length=models[0][1].max_length)
    scores = evaluate(split, [("pytorch fp32", ref.logits), *((name, m.logits) for name, m in models)], task)

    runners: list[tuple[str, Callable[[str], Any]]] = [("pytorch fp32", lambda t: task.entities(ref, t))]
    runners += [(name, m.entities) for name, m in models]
    texts = list(split.texts[: a.latency_texts])
    times: dict[str, list[float]] = {name: [] for name, _ in runners}
    for name, run in runners:  # warm-up
        run(texts[0])
    for text in texts:
        for name, run in runners:
            t0 = time.perf_counter()
            run(text)
            times[name].append((time.perf_counter() - t0) * 1000)
    rows = []
    for s in scores:
        ms = np.asarray(times[s.name])
        rows.append({**s.metrics(), "name": s.name, "n": s.n,
                     "latency_b1_ms": {"median": float(np.median(ms)), "p90": float(np.percentile(ms, 90))}})
    base = rows[0]["latency_b1_ms"]["median"]
    doc = {"checkpoint": str(a.checkpoint), "split": split.describe(), "cpu_class": sysinfo.cpu_class(),
           "machine": sysinfo.machine(),
           "threads": a.threads, "latency_texts": len(texts), "models": rows}
    lines = [f"Entity F1 on {split.describe()}; batch-1 `entities()` latency over {len(texts)} texts, "
             f"{a.threads} thread(s), CPU class {doc['cpu_class']}", "",
             "| model | entity F1 | loss, points [95% CI] | agreement | batch-1 median ms | speed-up |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        ci = r["loss_ci95"]
        loss = "-" if r["loss_points"] is None else f"{r['loss_points']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"
        agree = "-" if r["agreement"] is None else f"{r['agreement']:.3f}"
        med = r["latency_b1_ms"]["median"]
        lines.append(f"| {r['name']} | {r['entity_f1']:.4f} | {loss} | {agree} | {med:.2f} | {base / med:.2f}x |")
    print("\n".join(lines))
    if a.out:
        _report.save(a.out, doc, "\n".join(lines))
    return doc


if __name__ == "__main__":
    main(sys.argv[1:])
