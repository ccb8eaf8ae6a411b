"""`bench`: bundles against the full PyTorch model on the same texts, in one process.

Both runtimes share the cores here, so ONNX Runtime's spinning threads are turned off and torch
keeps threads = cores; the candidates are timed round-robin, text by text, so a noisy machine
slows them alike.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import sysinfo
from ..data import load_dataset
from ..errors import ConfigError, require
from ..metrics import classification_metrics
from .report import Report
from .stats import bootstrap_diff_ci, summarize_ms

log = logging.getLogger("lpm_edge.bench")


def _size(path: Path, patterns: Sequence[str]) -> int:
    return sum(p.stat().st_size for pat in patterns for p in path.glob(pat))


def bench(
    bundles: Sequence[str | Path],
    reference: str | Path,
    out: str | Path,
    *,
    data: str | None = None,
    split: str = "test",
    latency_texts: int = 200,
    repeats: int = 3,
    warmup: int = 20,
    quick: bool = False,
) -> Report:
    """Measure accuracy, batch-1 latency and size of each bundle and of the reference checkpoint."""
    require("torch", "export")
    import torch

    from ..reference import TorchClassifier
    from ..runtime import load
    from ..train import read_training_info

    if not bundles:
        raise ConfigError("give at least one bundle to benchmark")
    reference = Path(reference)
    info = read_training_info(reference)
    recorded = info.get("data", {})
    source = data or recorded.get("source")
    if not source:
        raise ConfigError(f"{reference} has no training.json naming its dataset; pass --data NAME|PATH")
    same = source == recorded.get("source")
    dataset = load_dataset(
        source,
        text_column=recorded.get("text_column", "text") if same else "text",
        label_column=recorded.get("label_column", "label") if same else "label",
        validation=recorded.get("validation") if same else None,
    )
    part = dataset.split(split)
    if quick:
        latency_texts, repeats, warmup = min(latency_texts, 50), 1, 5
    texts, y = list(part.texts), np.asarray(part.labels)
    cores = sysinfo.cpu_info()["cores"] or 1
    torch.set_num_threads(cores)

    ref = TorchClassifier(reference, threads=cores)
    runners: list[tuple[str, Callable[[Sequence[str]], np.ndarray], int, str]] = [
        ("pytorch-fp32 (reference)", ref.logits, _size(reference, ["*.safetensors", "*.bin"]), str(reference))
    ]
    for b in bundles:
        clf = load(b, providers="cpu", spin=False, threads=cores)
        size = Path(b).stat().st_size if Path(b).is_file() else (Path(b) / clf.manifest.model_file).stat().st_size
        name = clf.manifest.recipe.get("name", Path(b).name)
        runners.append((f"lpm-edge {name}", clf.logits, size, str(b)))

    candidates: list[dict[str, Any]] = []
    preds = []
    for name, run, size, path in runners:
        t0 = time.perf_counter()
        p = run(texts).argmax(1)
        seconds = time.perf_counter() - t0
        preds.append(p)
        candidates.append({"name": name, "path": path, "size_bytes": size,
                           **classification_metrics(y, p, len(dataset.labels)),
                           "throughput_texts_per_s": len(texts) / seconds})
    ref_correct = preds[0] == y
    for c, p in zip(candidates[1:], preds[1:]):
        c["accuracy_loss_points"] = (candidates[0]["accuracy"] - c["accuracy"]) * 100
        c["accuracy_loss_ci95"] = list(bootstrap_diff_ci(ref_correct, p == y))
        c["agreement"] = float((p == preds[0]).mean())

    sample = texts[:: max(1, len(texts) // latency_texts)][:latency_texts]
    timings = _interleaved([r[1] for r in runners], sample, repeats, warmup)
    for c, t in zip(candidates, timings):
        c["latency"] = {"batch1": summarize_ms(t)}
    report = Report(
        data={"name": dataset.name, "split": split, "n": len(texts), "labels": list(dataset.labels)},
        candidates=candidates,
        machine=sysinfo.machine(),
        method={"latency_texts": len(sample), "repeats": repeats, "warmup": warmup, "batch_size": 1,
                "isolation": "one process; ONNX Runtime spinning off, torch threads = cores",
                "torch_threads": cores, "reference": "transformers fast tokenizer + model (default attention), "
                "eval, torch.inference_mode"},
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    report.write(Path(out))
    return report


def _interleaved(
    runs: Sequence[Callable[[Sequence[str]], np.ndarray]], texts: Sequence[str], repeats: int, warmup: int
) -> list[list[float]]:
    """Time each runner on each text at batch 1, round-robin, so noise hits all alike."""
    for text in texts[:warmup]:
        for run in runs:
            run([text])
    timings: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for text in texts:
            for k, run in enumerate(runs):
                t0 = time.perf_counter()
                run([text])
                timings[k].append(time.perf_counter() - t0)
    return timings
