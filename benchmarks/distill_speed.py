"""Distillation speed on this machine: the Trainer-based distiller against the hand-written loop it
replaced, side by side in one process, rounds interleaved so that a noisy machine hits both alike.

The teacher is the built-in MiniLM-L6 with a classification head, the student its copy keeping
layers 1, 3 and 5 (the layer mapping goes to the transfer losses); both distil on the same
rotten-tomatoes training texts with the same recipe settings. Steps/s is optimizer steps over the
whole `distill()` call (setup, the KL on EVAL_TEXTS validation texts before and after, the steps),
the median over rounds. The "before" implementation is read from git (--before, a commit whose
lpm_edge/export/distill.py is the hand loop) and imported beside the current one.

    nice -n 10 env PYTHONPATH=. .venv/bin/python benchmarks/distill_speed.py --steps 50 --rounds 3 \
        --batch-size 16 --max-length 64 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _report  # benchmarks/_report.py, beside this script

BEFORE = "9ee03a7"  # the last commit with the hand-written loop
EVAL_TEXTS = 32


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--hidden-weight", type=float, default=1.0)
    p.add_argument("--relation-weight", type=float, default=1.0)
    p.add_argument("--before", default=BEFORE, help="git commit of the hand-written loop")
    p.add_argument("--out", type=Path, required=True, help="folder for distill_speed.json and .md")
    return p.parse_args(argv)


def load_before(commit: str) -> Any:
    """lpm_edge/export/distill.py of `commit`, imported as lpm_edge.export._distill_before (its relative
    imports resolve to today's batches, losses, early_stop and transfer modules)."""
    import lpm_edge.export

    source = subprocess.run(["git", "show", f"{commit}:lpm_edge/export/distill.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="distill-before-")) / "_distill_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("lpm_edge.export._distill_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    lpm_edge.export._distill_before = module
    return module


def main(argv: list[str] | None = None) -> int:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge.assets import builtin_model_dir
    from lpm_edge.data import load_dataset
    from lpm_edge.export import distill as after
    from lpm_edge.export.recipe import DistillConfig

    a = parse_args(argv)
    before = load_before(a.before)
    model_dir = builtin_model_dir()
    teacher = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    kept = (1, 3, 5)
    base = copy.deepcopy(teacher)
    base.bert.encoder.layer = torch.nn.ModuleList([base.bert.encoder.layer[i] for i in kept])
    base.config.num_hidden_layers = len(kept)
    data = load_dataset("rotten-tomatoes")
    eval_texts = list(data.validation.texts[:EVAL_TEXTS])
    config = DistillConfig(steps=a.steps, batch_size=a.batch_size, hidden_weight=a.hidden_weight,
                           attention_relation_weight=a.relation_weight)
    runs: dict[str, list[float]] = {"hand loop (before)": [], "Trainer (after)": []}
    for r in range(a.rounds):
        for name, module in (("hand loop (before)", before), ("Trainer (after)", after)):
            student = copy.deepcopy(base)
            torch.manual_seed(0)
            start = time.perf_counter()
            module.distill(student, teacher, tok, data.train, config, a.max_length, "cpu", eval_texts, kept_layers=kept)
            seconds = time.perf_counter() - start
            runs[name].append(a.steps / seconds)
            print(f"round {r + 1} {name}: {a.steps / seconds:.3f} steps/s ({seconds:.1f} s)", flush=True)
    load = os.getloadavg()
    result = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(), "load_average_1_5_15": [round(x, 2) for x in load]},
        "settings": {"steps": a.steps, "rounds": a.rounds, "batch_size": a.batch_size, "max_length": a.max_length,
                     "hidden_weight": a.hidden_weight, "attention_relation_weight": a.relation_weight,
                     "teacher": "MiniLM-L6 (6 layers)", "student": f"layers {list(kept)}", "before": a.before},
        "steps_per_second": {k: {"median": round(statistics.median(v), 3), "all": [round(x, 3) for x in v]}
                             for k, v in runs.items()},
    }
    lines = ["| distiller | steps/s (median) | rounds |", "|---|---|---|"]
    lines += [f"| {k} | {v['median']} | {', '.join(map(str, v['all']))} |" for k, v in result["steps_per_second"].items()]
    lines.append(f"\nload average (1, 5, 15 min) at the end: {result['machine']['load_average_1_5_15']}")
    _report.save(a.out / "distill_speed", result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
