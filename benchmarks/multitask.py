"""What a multi-task bundle saves against one bundle per head: size on disk and batch-1 latency per
text for every head's prediction, measured side by side in one process.

The bundles are MiniLM-L6 (the built-in model) exported with the cpu-int8 recipe: one multi-task
bundle with two heads, and two single-label bundles, one per head. Size and latency do not depend on
what the heads learned, so the heads are not trained (their accuracy here means nothing and is not
reported); the texts are Rotten Tomatoes snippets (the built-in dataset's test split), whose real
lengths set the latency.

    nice -n 10 .venv/bin/python benchmarks/multitask.py --out runs/multitask
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
from pathlib import Path
from typing import Any

import _report  # benchmarks/_report.py, beside this script


def checkpoint(out: Path, task: Any, data: Path, label_column: str) -> Path:
    """The built-in encoder with the task's head (untrained), saved as lpm-edge's train would save it."""
    import transformers
    from transformers import AutoTokenizer

    from lpm_edge import tasks
    from lpm_edge.assets import builtin_model_dir

    model = getattr(transformers, task.model_class).from_pretrained(builtin_model_dir(), **task.model_kwargs())
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(builtin_model_dir()).save_pretrained(out)
    info = {"labels": list(task.labels), "task": tasks.record(task), "base_model": "all-MiniLM-L6-v2",
            "data": {"source": str(data), "text_column": "text", "label_column": label_column}}
    (out / "training.json").write_text(json.dumps(info, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--texts", type=int, default=300, help="texts timed at batch 1 (each run every round)")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    _report.log_to_stderr()

    from lpm_edge import export, load, sysinfo, tasks
    from lpm_edge.bench.latency import interleaved
    from lpm_edge.data import rotten_tomatoes

    a.out.mkdir(parents=True, exist_ok=True)
    test = rotten_tomatoes().test
    texts = list(test.texts)
    data = a.out / "two-heads.csv"
    with open(data, "w", newline="", encoding="utf-8") as f:  # a second head: is the snippet long?
        w = csv.writer(f)
        w.writerow(["text", "sentiment", "length"])
        median = statistics.median(len(t) for t in texts)
        w.writerows((t, ("rotten", "fresh")[y], "long" if len(t) > median else "short")
                    for t, y in zip(texts, test.labels))
    heads = {"sentiment": ("fresh", "rotten"), "length": ("long", "short")}  # sorted, as the data orders them
    multi = tasks.from_section("multi-task", [f"{h}:{label}" for h, v in heads.items() for label in v])
    bundles = {"multi-task": export(checkpoint(a.out / "ckpt-multi", multi, data, "sentiment,length"),
                                    a.out / "bundle-multi", "cpu-int8", force=True, max_accuracy_drop=100.0)}
    for h, labels in heads.items():
        single = tasks.from_section("text-classification", labels)
        bundles[h] = export(checkpoint(a.out / f"ckpt-{h}", single, data, h), a.out / f"bundle-{h}", "cpu-int8",
                            force=True, max_accuracy_drop=100.0)
    clfs = {k: load(b, providers="cpu", spin=False) for k, b in bundles.items()}
    sample = texts[: a.texts]
    one, separate = clfs["multi-task"], [clfs[h] for h in heads]
    calls = [lambda r: one.predict([sample[r % len(sample)]]),
             lambda r: [c.predict([sample[r % len(sample)]]) for c in separate]]
    timings = interleaved(calls, len(sample) * a.rounds, 20)
    ms = [statistics.median(t) * 1000 for t in timings]
    size = {k: (b / "model.onnx").stat().st_size for k, b in bundles.items()}
    total = {k: sum(f.stat().st_size for f in b.iterdir()) for k, b in bundles.items()}
    result = {
        "cpu_class": sysinfo.cpu_class(), "texts": len(sample), "rounds": a.rounds, "heads": list(heads),
        "latency_ms_per_text_all_heads": {"multi-task bundle": ms[0], "one bundle per head": ms[1]},
        "model_bytes": {"multi-task bundle": size["multi-task"], "one bundle per head": sum(size[h] for h in heads)},
        "bundle_bytes": {"multi-task bundle": total["multi-task"], "one bundle per head": sum(total[h] for h in heads)},
    }
    lines = [f"Two heads ({', '.join(heads)}), MiniLM-L6 cpu-int8, batch 1, median of {len(sample)} Rotten Tomatoes "
             f"snippets x {a.rounds} rounds, CPU class {result['cpu_class']}", "",
             "| | ms per text, all heads | model.onnx MB | bundle MB |", "|---|---|---|---|"]
    for k in ("multi-task bundle", "one bundle per head"):
        lines.append(f"| {k} | {result['latency_ms_per_text_all_heads'][k]:.2f} | "
                     f"{result['model_bytes'][k] / 1e6:.1f} | {result['bundle_bytes'][k] / 1e6:.1f} |")
    _report.save(a.out / "multitask", result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
