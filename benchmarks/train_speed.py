"""CPU fine-tuning speed: steps/s with and without length bucketing and frozen embeddings.

Every variant runs `lpm_edge.train` for the same number of optimizer steps on the same texts, in
one process, interleaved round by round so that a noisy machine hits them all alike. Steps/s is
timed between step ends after a few warm-up steps (data collation, forward, backward, optimizer),
not counting model loading, tokenization or evaluation. The padding share says why bucketing helps:
batches of similar lengths carry fewer pad tokens.

    # the figures for the issue (MiniLM-L6 on rotten-tomatoes, about 1-7 s a step on 2 cores)
    PYTHONPATH=. .venv/bin/python benchmarks/train_speed.py --out runs/train-speed --threads 1,2
    # a smoke run on any small model directory
    PYTHONPATH=. .venv/bin/python benchmarks/train_speed.py --model tiny-bert --steps 6 --out /tmp/ts
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = {  # name: (group_by_length, freeze_embeddings)
    "baseline": (False, False),
    "bucketing": (True, False),
    "frozen-embeddings": (False, True),
    "bucketing+frozen": (True, True),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=None, help="model directory (default: built-in MiniLM-L6)")
    p.add_argument("--data", default="rotten-tomatoes", help="dataset name or CSV/TSV/JSONL file")
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per variant and round")
    p.add_argument("--warmup", type=int, default=3, help="steps left out of the timing")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--threads", default="default",
                   help="comma-separated torch thread counts to compare, or 'default' (torch's own)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}")
    p.add_argument("--rounds", type=int, default=1, help="repeat the whole grid; the median is reported")
    p.add_argument("--out", type=Path, required=True, help="folder for train_speed.json and train_speed.md")
    a = p.parse_args(argv)
    unknown = set(a.variants.split(",")) - set(VARIANTS)
    if unknown:
        p.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    if a.steps <= a.warmup:
        p.error("--steps must be larger than --warmup")
    return a


def step_timer(warmup: int) -> Any:
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Seconds between consecutive optimizer-step ends, after `warmup` steps."""

        def __init__(self) -> None:
            self.last: float | None = None
            self.seconds: list[float] = []

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            now = time.perf_counter()
            if self.last is not None and state.global_step > warmup:
                self.seconds.append(now - self.last)
            self.last = now

    return StepTimer()


def padding_share(lengths: list[int], batch_size: int, bucketing: bool, seed: int = 42) -> float:
    """Share of pad tokens in the training batches (dynamic padding to each batch's longest text)."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    g = torch.Generator().manual_seed(seed)
    order = (list(LengthGroupedSampler(batch_size, lengths=lengths, generator=g)) if bucketing
             else torch.randperm(len(lengths), generator=g).tolist())
    real = padded = 0
    for i in range(0, len(order), batch_size):
        batch = [lengths[j] for j in order[i : i + batch_size]]
        real += sum(batch)
        padded += max(batch) * len(batch)
    return 1 - real / padded


def write_split(path: Path, texts: tuple[str, ...], labels: tuple[int, ...], names: tuple[str, ...]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows((t, names[y]) for t, y in zip(texts, labels))
    return path


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from transformers import AutoTokenizer

    from lpm_edge.data import load_dataset
    from lpm_edge.sysinfo import machine
    from lpm_edge.train import TrainConfig, resolve_model_dir, train

    model_dir = resolve_model_dir(a.model)
    ds = load_dataset(a.data)
    work = Path(tempfile.mkdtemp(prefix="train-speed-"))
    # the whole training split (bucketing sorts within megabatches of 50 batches drawn from all of it)
    # and a small validation file, so that the evaluation Trainer runs at the end costs little
    train_file = write_split(work / "train.csv", ds.train.texts, ds.train.labels, ds.labels)
    val = ds.validation.head(64)
    val_file = write_split(work / "val.csv", val.texts, val.labels, ds.labels)
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    lengths = [len(ids) for ids in tokenizer(list(ds.train.texts), truncation=True, max_length=a.max_length)["input_ids"]]

    threads = [None] if a.threads == "default" else [int(t) for t in a.threads.split(",")]
    variants = a.variants.split(",")
    runs: dict[tuple[str, int | None], list[float]] = {(v, t): [] for t in threads for v in variants}
    for r in range(a.rounds):
        for t in threads:
            for v in variants:
                bucketing, frozen = VARIANTS[v]
                timer = step_timer(a.warmup)
                config = TrainConfig(
                    out=work / "ckpt", model=model_dir, data=str(train_file), validation=val_file,
                    max_steps=a.steps, batch_size=a.batch_size, max_length=a.max_length, patience=None,
                    group_by_length=bucketing, freeze_embeddings=frozen, threads=t, force=True,
                )
                train(config, callbacks=[timer])
                sps = len(timer.seconds) / sum(timer.seconds)
                runs[(v, t)].append(sps)
                print(f"round {r + 1}/{a.rounds} threads {t or 'default'} {v}: {sps:.3f} steps/s", file=sys.stderr)

    results = []
    for (v, t), values in runs.items():
        sps = statistics.median(values)
        base = statistics.median(runs[("baseline", t)]) if ("baseline", t) in runs else None
        bucketing, frozen = VARIANTS[v]
        results.append({
            "variant": v, "threads": t, "group_by_length": bucketing, "freeze_embeddings": frozen,
            "steps_per_second": round(sps, 4), "seconds_per_step": round(1 / sps, 3),
            "texts_per_second": round(sps * a.batch_size, 2), "rounds": [round(x, 4) for x in values],
            "padding_share": round(padding_share(lengths, a.batch_size, bucketing), 4),
            "speedup_vs_baseline": round(sps / base, 3) if base else None,
        })
    report = {
        "benchmark": "train_speed", "machine": machine(),
        "settings": {"model": str(model_dir), "data": a.data, "train_texts": len(ds.train), "steps": a.steps,
                     "warmup": a.warmup, "batch_size": a.batch_size, "max_length": a.max_length,
                     "rounds": a.rounds, "mean_tokens": round(statistics.mean(lengths), 1)},
        "results": results,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "train_speed.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md = markdown(report)
    (a.out / "train_speed.md").write_text(md, encoding="utf-8")
    print(md)
    return 0


def markdown(report: dict[str, Any]) -> str:
    s, cpu = report["settings"], report["machine"]["cpu"]
    lines = [
        "# CPU fine-tuning speed", "",
        f"{s['model']} on {s['data']} ({s['train_texts']} training texts, {s['mean_tokens']} tokens on average), "
        f"batch {s['batch_size']}, max length {s['max_length']}, {s['steps']} steps per run "
        f"({s['warmup']} warm-up), median of {s['rounds']} round(s). Machine: {cpu['model']}, {cpu['cores']} cores.",
        "", "| variant | threads | steps/s | s/step | texts/s | padding | vs baseline |", "|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        speedup = f"{r['speedup_vs_baseline']:.2f}x" if r["speedup_vs_baseline"] else "-"
        lines.append(f"| {r['variant']} | {r['threads'] or 'default'} | {r['steps_per_second']:.3f} | "
                     f"{r['seconds_per_step']:.2f} | {r['texts_per_second']:.1f} | {r['padding_share']:.0%} | {speedup} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
