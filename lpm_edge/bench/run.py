"""`bench`: bundles against the full PyTorch model on the same texts, and the report it writes.

Accuracy, latency and throughput run in this process: ONNX Runtime's spinning threads are turned
off and torch keeps threads = cores, so neither runtime's idle threads steal the cores the other
is timed on, and the candidates are interleaved round-robin so a noisy machine slows them alike.
Cold start and peak memory each run in a fresh subprocess, with the candidate's default settings.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .. import sysinfo, tasks
from ..data import Split
from ..errors import ConfigError, require
from ..pairs import is_pairs, strings
from .accuracy import score, throughput
from .candidates import Candidate, bundle_candidate, reference_candidate, unique_names
from .load import CpuSnapshot, others_share, snapshot
from .latency import MODES, FixedLength, fixed_length_inputs, measure_cell, text_batches
from .process import fresh_processes
from .progress import Progress
from .report import Report

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger("lpm_edge.bench")

ISOLATION = ("accuracy, latency and throughput in one process, candidates interleaved round-robin, "
             "ONNX Runtime intra-op spinning off, torch threads = cores; cold start and peak memory "
             "in a fresh subprocess per run, each candidate with its default settings")
REFERENCE_SERVING = ("transformers fast tokenizer + AutoModelForSequenceClassification with its default "
                     "attention implementation, eval mode, torch.inference_mode, torch threads = cores")


@dataclass(frozen=True)
class BenchConfig:
    """What to measure and how often. `quick()` keeps the grid and cuts the repetitions."""

    batch_sizes: tuple[int, ...] = (1, 8, 32)
    seq_lengths: tuple[int, ...] = (16, 64, 128, 256)
    repeats: int = 200  # timed rounds at batch 1; batch b gets repeats // b, at least min_repeats
    min_repeats: int = 30
    seq_repeats: int = 50  # timed rounds per sequence length
    warmup: int = 10  # untimed rounds before each cell
    pool: int = 512  # real texts the latency batches are drawn from
    throughput_rounds: int = 3
    process_runs: int = 3  # fresh processes per candidate (cold start, memory)
    process_workload: int = 256  # texts a fresh process predicts before reporting its peak RSS
    bootstrap: int = 2000
    seed: int = 0
    plots: bool = True
    subprocess: bool = True
    quick: bool = False

    def __post_init__(self) -> None:
        for name in ("repeats", "min_repeats", "seq_repeats", "pool", "throughput_rounds", "process_runs",
                     "process_workload", "bootstrap"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"bench {name} must be a positive integer, got {getattr(self, name)!r}")
        if self.warmup < 0:
            raise ConfigError(f"bench warmup must be 0 or more, got {self.warmup!r}")
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ConfigError(f"batch sizes must be positive integers, got {self.batch_sizes!r}; e.g. --batch-sizes 1,8,32")
        if any(n < 3 for n in self.seq_lengths):
            raise ConfigError(f"sequence lengths must be at least 3 tokens, got {self.seq_lengths!r}")

    @classmethod
    def for_quick(cls, **overrides: Any) -> "BenchConfig":
        """A short run (a minute or two on MiniLM): same grid, fewer repetitions."""
        base = dict(repeats=30, min_repeats=8, seq_repeats=10, warmup=3, pool=128, throughput_rounds=1,
                    process_runs=1, process_workload=64, bootstrap=1000, quick=True)
        return cls(**{**base, **overrides})

    def rounds(self, batch: int) -> int:
        """Timed rounds for a batch size."""
        return max(self.min_repeats, self.repeats // batch)


def measure(
    candidates: Sequence[Candidate], texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str],
    *, config: BenchConfig, tokenizer: "Tokenizer", max_positions: int, data: dict[str, Any],
    command: str | None = None, progress: Progress | None = None, task: "Task | None" = None,
) -> Report:
    """Measure every candidate (candidates[0] is the reference) and return the report (not written)."""
    if len(candidates) < 2:
        raise ConfigError("give at least one candidate besides the reference")
    candidates = [replace(c) for c in candidates]  # copies: names may change, the caller's stay
    unique_names(candidates)
    n = len(candidates)
    lengths = tuple(L for L in config.seq_lengths if L <= max_positions)
    skipped = [L for L in config.seq_lengths if L > max_positions]
    if skipped:
        log.warning("bench: skipping sequence lengths %s: the model has %d positions", skipped, max_positions)
    pool_idx = np.random.default_rng(config.seed).permutation(len(texts))[: config.pool]
    pool = [texts[i] for i in pool_idx]
    total = n * (1 + config.throughput_rounds + (config.process_runs if config.subprocess else 0)) + n * len(MODES) * (
        sum(config.warmup + config.rounds(b) for b in config.batch_sizes) + len(lengths) * (config.warmup + config.seq_repeats))
    progress = progress or Progress(total)
    marks: list[tuple[str, CpuSnapshot]] = []

    def stage(label: str) -> None:
        marks.append((label, snapshot()))
        progress.stage(label)

    stage(f"accuracy on {len(texts)} texts")
    split = Split(tuple(texts), tuple(labels), str(data.get("split", "")), str(data.get("source", "")))
    task = task or tasks.from_section(tasks.DEFAULT, label_names)
    rows = score(candidates, split, task, n_boot=config.bootstrap, seed=config.seed, progress=progress)
    stage("throughput: predict(all texts)")
    tps = throughput(candidates, texts, config.throughput_rounds, progress)

    batch_cells: dict[str, dict[str, list[dict[str, float]]]] = {}
    for b in config.batch_sizes:
        stage(f"latency, batch {b}")
        batches = text_batches(pool, b, config.rounds(b))
        batch_cells[str(b)] = measure_cell(candidates, batches, config.rounds(b), config.warmup, progress=progress)
    seq_cells: dict[str, dict[str, Any]] = {}
    fixed = _fixed_inputs(candidates, tokenizer, pool, lengths)  # fixed[k][i]: candidate k, lengths[i]
    for i, length in enumerate(lengths):
        stage(f"latency, {length} tokens")
        feeds = [[[c.from_ids(fixed[k][i].ids)]] for k, c in enumerate(candidates)]
        texts_k = [[[fixed[k][i].text]] for k in range(n)]
        cell = measure_cell(candidates, texts_k, config.seq_repeats, config.warmup, feeds, progress, per_candidate=True)
        seq_cells[str(length)] = {**cell, "text_tokens": [fixed[k][i].text_tokens for k in range(n)]}

    procs: list[dict[str, Any] | None] = [None] * n
    if config.subprocess:
        stage("cold start and memory, fresh processes")
        workload = [pool[i % len(pool)] for i in range(config.process_workload)]
        procs = fresh_processes(candidates, pool[0], workload, config.process_runs, progress=progress)
    marks.append(("end", snapshot()))
    progress.close()
    cpus = os.cpu_count() or 1
    load = {**others_share(marks[0][1], marks[-1][1], cpus),
            "by_stage": {label: others_share(a, b, cpus)["other_processes_cpu_share"]
                         for (label, a), (_, b) in zip(marks, marks[1:])}}
    if load["busy"]:
        log.warning("bench: other processes used %.0f%% of the CPUs during this run; figures are disturbed, "
                    "torch's most (re-run on a quiet machine)", load["other_processes_cpu_share"] * 100)

    out = []
    for k, c in enumerate(candidates):
        latency = {
            "batch": {b: {m: cell[m][k] for m in MODES} for b, cell in batch_cells.items()},
            "seq_len": {L: {**{m: cell[m][k] for m in MODES}, "text_tokens": cell["text_tokens"][k]}
                        for L, cell in seq_cells.items()},
        }
        out.append({"name": c.name, "kind": c.kind, "path": c.path, "info": c.info, **rows[k], "size": c.size,
                    "latency": latency, "throughput": tps[k], "process": procs[k]})
    for c in out:
        c["vs_reference"] = ratios(c, out[0], "1" if 1 in config.batch_sizes else str(config.batch_sizes[0]))
    method = {
        "isolation": ISOLATION, "reference_serving": REFERENCE_SERVING,
        "interleaving": "round-robin: every round runs each candidate once on the same input, in candidate order",
        "clock": "time.perf_counter", "cores": sysinfo.cpu_info()["cores"],
        "warmup_rounds": config.warmup, "batch_sizes": list(config.batch_sizes),
        "rounds_by_batch": [config.rounds(b) for b in config.batch_sizes], "seq_lengths": list(lengths),
        "seq_lengths_skipped": skipped, "seq_len_rounds": config.seq_repeats,
        "latency_pool": len(pool), "latency_pool_seed": config.seed, "throughput_rounds": config.throughput_rounds,
        "predict_batch": 32, "process_runs": config.process_runs if config.subprocess else 0,
        "process_workload_texts": config.process_workload if config.subprocess else 0,
        "bootstrap_resamples": config.bootstrap, "bootstrap_seed": config.seed, "confidence": 0.95,
        "machine_load": load, "quick": config.quick,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
    }
    return Report(data={**data, "n": len(texts), "labels": list(label_names)}, candidates=out,
                  machine=sysinfo.machine(), method=method, reference=out[0]["name"], command=command,
                  created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))


def _fixed_inputs(
    candidates: Sequence[Candidate], default: "Tokenizer", pool: Sequence[str], lengths: Sequence[int]
) -> list[list[FixedLength]]:
    """Exactly-L-token inputs per candidate, cut from the same texts with the candidate's own tokenizer."""
    if not lengths:
        return [[] for _ in candidates]
    cache: dict[str, list[FixedLength]] = {}
    out = []
    for c in candidates:
        tok = c.tokenizer or default
        key = tok.to_str()
        if key not in cache:
            cache[key] = fixed_length_inputs(tok, list(strings(pool)), lengths)
            if is_pairs(pool):  # the end-to-end input of a bundle on pairs is a pair: the text cut in two
                cache[key] = [_as_pair(f, tok) for f in cache[key]]
        out.append(cache[key])
    return out


def _as_pair(fixed: FixedLength, tok: "Tokenizer") -> FixedLength:
    """`fixed` with its text split at the space nearest its middle into (text, text_pair); the model-only
    ids stay the L tokens of one segment, and text_tokens counts the pair's tokens (one separator more)."""
    text = fixed.text
    cut = text.rfind(" ", 0, len(text) // 2 + 1)
    cut = cut if cut > 0 else max(1, len(text) // 2)
    pair = (text[:cut].strip() or text[:cut], text[cut:].strip() or text[cut:])
    from tokenizers import Tokenizer

    plain = Tokenizer.from_str(tok.to_str())
    plain.no_truncation()
    plain.no_padding()
    return replace(fixed, text=pair, text_tokens=len(plain.encode(*pair).ids))  # type: ignore[arg-type]


def ratios(c: dict[str, Any], ref: dict[str, Any], batch: str) -> dict[str, float | None]:
    """The candidate against the reference: speed-ups (> 1 faster) and size/memory ratios (< 1 smaller)."""
    def div(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or b == 0 else a / b

    def lat(x: dict[str, Any], mode: str) -> float | None:
        return x["latency"]["batch"].get(batch, {}).get(mode, {}).get("median_ms")

    proc, rproc = c.get("process") or {}, ref.get("process") or {}
    return {
        "end_to_end_b1_speedup": div(lat(ref, "end_to_end"), lat(c, "end_to_end")),
        "model_only_b1_speedup": div(lat(ref, "model_only"), lat(c, "model_only")),
        "throughput_ratio": div(c["throughput"]["texts_per_s"], ref["throughput"]["texts_per_s"]),
        "peak_rss_ratio": div(proc.get("peak_rss_bytes"), rproc.get("peak_rss_bytes")),
        "cold_start_ratio": div(proc.get("cold_start_s"), rproc.get("cold_start_s")),
        "model_size_ratio": div(c["size"]["model_bytes"], ref["size"]["model_bytes"]),
        "loss_points": c.get("loss_points"),
    }


def load_split(
    reference: Path, data: str | None, split: str, *, validation: str | Path | None = None,
    test: str | Path | None = None, text_column: str | None = None, label_column: str | None = None,
    strict: bool = False, text_pair_column: str | None = None, info: dict[str, Any] | None = None,
) -> tuple[Any, Any, dict[str, Any]]:
    """The dataset the reference was trained on (training.json, or `info` in its place), or `data`, with
    the validation and test files given in place of its own; returns (dataset, the split, what the
    report says of it)."""
    from ..export.pipeline import checkpoint_dataset
    from ..train import read_training_info

    info = read_training_info(reference) if info is None else info
    dataset = checkpoint_dataset(data, info, validation=validation, test=test, text_column=text_column,
                                 label_column=label_column, strict=strict, text_pair_column=text_pair_column)
    part = dataset.split(split)
    return dataset, part, {"name": dataset.name, "source": part.source, "split": split,
                           "dropped_overlap": int(dataset.dropped.get(split, 0))}


def task_info(reference: Path, bundle: str | Path) -> dict[str, Any]:
    """The reference's training.json with the task it records, else the task the bundle's manifest
    declares (a model directory lpm-edge did not train, e.g. an embedding model exported with --task)."""
    from .. import bundle as _bundle
    from ..train import read_training_info

    info = read_training_info(reference)
    if info.get("task"):
        return info
    with _bundle.opened(bundle) as (_, manifest):
        return {**info, "task": tasks.record(tasks.from_manifest(manifest))}


def bench(
    bundles: Sequence[str | Path],
    reference: str | Path,
    out: str | Path,
    *,
    data: str | None = None,
    split: str = "test",
    config: BenchConfig | None = None,
    quick: bool = False,
    command: str | None = None,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    strict: bool = False,
    text_pair_column: str | None = None,
) -> Report:
    """Benchmark bundles against their reference checkpoint; write report.md, report.json and PNGs to `out`.

    Accuracy is measured on every text of `split`: with `test=FILE` (and split "test") that is
    every row of FILE, less any text the training or validation split also holds (dropped with
    a warning, or refused with strict=True); text_column/label_column name FILE's columns.
    """
    require("torch", "export")
    config = config or (BenchConfig.for_quick() if quick else BenchConfig())
    if quick and not config.quick:
        config = replace(config, quick=True)
    if config.plots:
        require("matplotlib", "bench")
    if not bundles:
        raise ConfigError("give at least one bundle to benchmark")
    reference = Path(reference)
    recorded = task_info(reference, bundles[0])
    dataset, part, info = load_split(reference, data, split, validation=validation, test=test,
                                     text_column=text_column, label_column=label_column, strict=strict,
                                     text_pair_column=text_pair_column, info=recorded)
    log.info("bench: accuracy on %s", part.describe())
    task = tasks.from_training(recorded, dataset.labels)
    cores = sysinfo.cpu_info()["cores"] or 1

    cands = [bundle_candidate(b, threads=cores) for b in bundles]
    int8 = [c.name for c in cands if c.info.get("quantize") in ("dynamic", "static")]
    if int8 and not sysinfo.cpu_info()["vnni"]:
        log.warning("bench: %s run int8 on a CPU without VNNI (%s), where dynamic int8 was measured at 1.35x "
                    "and 2.4x throughput on two such CPUs against 3.6-4.2x with VNNI; the report's ratios hold for "
                    "this CPU class only",
                    ", ".join(int8), sysinfo.cpu_class())
    max_length = max(c.info["max_length"] for c in cands)  # truncate the reference as the bundles do
    ref_cand, ref = reference_candidate(reference, threads=cores, max_length=max_length, task=task)
    cands.insert(0, ref_cand)
    report = measure(
        cands, list(part.texts), list(part.labels), dataset.labels, config=config,
        tokenizer=ref.tokenizer.backend_tokenizer,  # type: ignore[attr-defined]
        max_positions=int(getattr(ref.model.config, "max_position_embeddings", 512)),  # type: ignore[attr-defined]
        data=info, command=command, task=task,
    )
    report.write(Path(out), plots=config.plots)
    return report
