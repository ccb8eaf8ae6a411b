"""Does masked-LM pretraining on in-domain text give a better fine-tuned model (a better teacher)?

The built-in MiniLM-L6 is fine-tuned on rotten-tomatoes twice with the same settings and seed:
once as it is, once after `lpm-edge pretrain` on unlabelled text (default: the built-in plot
summaries, without the validation and test movies'). Both are scored on the validation and test
splits, the difference with a paired bootstrap 95% interval (one seed: read it as one draw).

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/pretrain_gain.py --out runs/pretrain-gain \\
        --report benchmarks/results/pretrain_gain
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import _report  # benchmarks/_report.py, beside this script


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="work folder (the adapted model and both checkpoints)")
    p.add_argument("--report", type=Path, default=None, help="write REPORT.md and REPORT.json")
    p.add_argument("--text", default="rotten-tomatoes-plots")
    p.add_argument("--pretrain-epochs", type=float, default=3.0)
    p.add_argument("--train-epochs", type=float, default=1.0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    _report.log_to_stderr()

    from lpm_edge import sysinfo
    from lpm_edge.data import load_dataset
    from lpm_edge.evaluate import evaluate
    from lpm_edge.reference import TorchClassifier
    from lpm_edge.tasks import from_section
    from lpm_edge.train import TrainConfig, train
    from lpm_edge.train.pretrain import PRETRAINING_JSON, PretrainConfig, pretrain

    started = time.perf_counter()
    adapted = a.out / "adapted"
    if not (adapted / PRETRAINING_JSON).is_file():
        pretrain(PretrainConfig(out=adapted, text=a.text, epochs=a.pretrain_epochs, threads=a.threads, force=True))
    config = TrainConfig(data="rotten-tomatoes", epochs=a.train_epochs, threads=a.threads, force=True)
    checkpoints = {"fine-tuned": a.out / "ckpt-base", "pretrained, then fine-tuned": a.out / "ckpt-adapted"}
    for (name, ckpt), model in zip(checkpoints.items(), (None, adapted)):
        if not (ckpt / "training.json").is_file():
            train(config.replace(out=ckpt, model=model))
    data = load_dataset("rotten-tomatoes")
    task = from_section("text-classification", data.labels)
    rows = {}
    for split in (data.validation, data.test):
        scores = evaluate(split, [(n, TorchClassifier(c, threads=a.threads).logits) for n, c in checkpoints.items()],
                          task)
        rows[split.name] = [s.metrics() | {"name": s.name, "n": s.n} for s in scores]
    pre = json.loads((adapted / PRETRAINING_JSON).read_text())
    train_s = {n: json.loads((c / "training.json").read_text())["train_seconds"] for n, c in checkpoints.items()}
    result = {"command": _report.command(), "cpu_class": sysinfo.cpu_class(),
              "machine": sysinfo.machine(), "seconds": round(time.perf_counter() - started, 1),
              "pretraining": {k: pre[k] for k in ("texts", "sizes", "held_out_mlm_loss", "steps", "train_seconds",
                                                  "new_mlm_head")},
              "train_seconds": train_s, "train_epochs": a.train_epochs, "scores": rows}
    loss = pre["held_out_mlm_loss"]
    lines = ["# Masked-LM pretraining before fine-tuning (rotten-tomatoes)", "",
             f"`{result['command']}` ({result['seconds'] / 60:.0f} min; {result['cpu_class']}, {a.threads} threads, "
             "a machine shared with other jobs)", "",
             f"Pretraining: {pre['texts']}; {pre['sizes']['train']} texts, {a.pretrain_epochs:g} epochs "
             f"({pre['steps']} steps, {pre['train_seconds']:.0f} s); held-out masked-LM loss {loss['before']:.3f} -> "
             f"{loss['after']:.3f} on {pre['sizes']['held_out']} texts"
             + (" (new masked-LM head)" if pre["new_mlm_head"] else "") + ". "
             f"Fine-tuning: {a.train_epochs:g} epoch(s), the `lpm-edge train` defaults otherwise, seed 42, both "
             f"runs ({', '.join(f'{n}: {s:.0f} s' for n, s in train_s.items())}).", "",
             "| split | fine-tuned | pretrained, then fine-tuned | gain (points) | 95% CI (paired bootstrap) |",
             "|---|---|---|---|---|"]
    for split, (base, other) in rows.items():
        lo, hi = other["loss_ci95"]
        lines.append(f"| {split} ({base['n']:,} texts) | {base['accuracy']:.4f} | {other['accuracy']:.4f} | "
                     f"{-other['loss_points']:+.2f} | [{-hi:+.2f}, {-lo:+.2f}] |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.report:
        _report.save(a.report, result, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
