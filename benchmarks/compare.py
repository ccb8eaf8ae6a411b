"""lpm-edge against the full PyTorch model and its peers, side by side, in one run.

Candidates, all from the same checkpoint, on the same machine, split and texts:
  1. PyTorch fp32, default attention (the reference)
  2. PyTorch dynamic int8 (torch.ao.quantization.quantize_dynamic on nn.Linear)
  3. Hugging Face Optimum: optimum-onnx export + ORTQuantizer avx2(is_static=False), through
     ORTModelForSequenceClassification
  3b. Hugging Face Optimum O2: the same export fused by ORTOptimizer AutoOptimizationConfig.O2(),
     fp32 (Optimum's fastest path on CPUs without VNNI)
  4. every lpm-edge bundle given

Writes OUT/report.md, OUT/report.json and the PNGs (`lpm-edge bench`'s report), with the
runtime targets of issue 3 appended to report.md. See benchmarks/README.md.

    PYTHONPATH=. python benchmarks/compare.py --checkpoint runs/demo/checkpoint \
        runs/demo/bundle-cpu-int8 --out runs/compare
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("lpm_edge.bench.compare")

# Issue 3's runtime targets for an lpm-edge bundle against the full PyTorch model.
TARGETS = (
    ("batch-1 end-to-end latency on real texts", "end_to_end_b1_speedup", ">=", 2.5, "×"),
    ("throughput, predict(all texts)", "throughput_ratio", ">=", 2.0, "×"),
    ("peak RSS of a process that loads and predicts", "peak_rss_ratio", "<=", 0.25, "×"),
)
COLD_START_TARGET_S = 0.5


def _ints(value: str) -> tuple[int, ...]:
    return tuple(int(v) for v in value.split(",") if v.strip())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", type=Path, nargs="*", help="lpm-edge bundles made from the checkpoint")
    p.add_argument("--checkpoint", type=Path, required=True, help="the fine-tuned checkpoint (Hugging Face dir)")
    p.add_argument("--data", default=None, help="dataset name or file (default: the one in training.json)")
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quick", action="store_true", help="same grid, fewer repetitions")
    p.add_argument("--batch-sizes", type=_ints, default=(1, 8, 32))
    p.add_argument("--seq-lengths", type=_ints, default=(16, 64, 128, 256))
    p.add_argument("--repeats", type=int, default=None, help="timed rounds at batch 1 (default 200, quick 30)")
    p.add_argument("--min-repeats", type=int, default=None, help="timed rounds at least, any batch (default 30)")
    p.add_argument("--seq-repeats", type=int, default=None, help="timed rounds per sequence length (default 50)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds before each cell (default 10)")
    p.add_argument("--throughput-rounds", type=int, default=None, help="whole-split rounds (default 3, quick 1)")
    p.add_argument("--process-runs", type=int, default=None, help="fresh processes per model (default 3, quick 1)")
    p.add_argument("--no-optimum", action="store_true", help="leave out the Optimum peers")
    p.add_argument("--no-optimum-o2", action="store_true", help="leave out Optimum's O2-fused fp32 peer")
    p.add_argument("--no-torch-int8", action="store_true", help="leave out PyTorch dynamic int8")
    p.add_argument("--no-subprocess", action="store_true", help="skip cold start and peak memory")
    p.add_argument("--no-plots", action="store_true")
    return p.parse_args(argv)


def targets_markdown(doc: dict[str, Any]) -> str:
    """Issue 3's runtime targets, met or not, for every lpm-edge candidate."""
    ref = doc["reference"]
    lines = ["## Runtime targets (issue 3)", "",
             f"Each lpm-edge bundle against {ref}, from the tables above.", "",
             "| bundle | figure | target | measured | met |", "| --- | --- | --- | --- | --- |"]
    for c in doc["candidates"]:
        if c["kind"] != "lpm-edge":
            continue
        for label, key, op, goal, unit in TARGETS:
            v = c["vs_reference"].get(key)
            met = None if v is None else (v >= goal if op == ">=" else v <= goal)
            lines.append(f"| {c['name']} | {label} | {op} {goal}{unit} | "
                         f"{'—' if v is None else f'{v:.2f}{unit}'} | {'—' if met is None else 'yes' if met else 'no'} |")
        cold = (c.get("process") or {}).get("cold_start_s")
        met = None if cold is None else cold < COLD_START_TARGET_S
        lines.append(f"| {c['name']} | cold start (import + load + first prediction) | < {COLD_START_TARGET_S} s | "
                     f"{'—' if cold is None else f'{cold:.3f} s'} | {'—' if met is None else 'yes' if met else 'no'} |")
    return "\n".join(lines + [""])


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    # Our INFO lines; other libraries' from WARNING (ONNX Runtime's quantizer logs hundreds of INFO
    # lines on the root logger).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(lambda r: r.name.startswith("lpm_edge") or r.levelno >= logging.WARNING)
    logging.getLogger().handlers[:] = [handler]
    logging.getLogger().setLevel(logging.INFO)

    from lpm_edge import sysinfo
    from lpm_edge.bench import BenchConfig, measure
    from lpm_edge.bench.candidates import bundle_candidate, reference_candidate
    from lpm_edge.bench.peers import (optimum_candidate, optimum_export, optimum_o2_candidate, optimum_o2_export,
                                      torch_int8_candidate)
    from lpm_edge.bench.run import load_split

    grid: dict[str, Any] = {"batch_sizes": a.batch_sizes, "seq_lengths": a.seq_lengths, "plots": not a.no_plots,
                            "subprocess": not a.no_subprocess, **({"repeats": a.repeats} if a.repeats else {}),
                            **({"throughput_rounds": a.throughput_rounds} if a.throughput_rounds else {}),
                            **({"process_runs": a.process_runs} if a.process_runs else {}),
                            **({"min_repeats": a.min_repeats} if a.min_repeats else {}),
                            **({"seq_repeats": a.seq_repeats} if a.seq_repeats else {}),
                            **({"warmup": a.warmup} if a.warmup is not None else {})}
    config = BenchConfig.for_quick(**grid) if a.quick else BenchConfig(**grid)
    start = time.perf_counter()
    dataset, part, info = load_split(a.checkpoint, a.data, a.split)
    cores = sysinfo.cpu_info()["cores"] or 1
    bundles = [bundle_candidate(b, threads=cores) for b in a.bundles]
    max_length = max((b.info["max_length"] for b in bundles), default=128)
    ref_cand, ref = reference_candidate(a.checkpoint, threads=cores, max_length=max_length)
    cands = [ref_cand]
    if not a.no_torch_int8:
        cands.append(torch_int8_candidate(a.checkpoint, threads=cores, max_length=max_length))
    if not a.no_optimum:
        t0 = time.perf_counter()
        model_dir = optimum_export(a.checkpoint, a.out / "optimum")
        log.info("Optimum export + avx2 dynamic quantization: %.1f s", time.perf_counter() - t0)
        cands.append(optimum_candidate(model_dir, threads=cores, max_length=max_length))
        if not a.no_optimum_o2:
            t0 = time.perf_counter()
            o2_dir = optimum_o2_export(a.checkpoint, a.out / "optimum")
            log.info("Optimum O2 fusion (fp32): %.1f s", time.perf_counter() - t0)
            cands.append(optimum_o2_candidate(o2_dir, threads=cores, max_length=max_length))
    cands += bundles
    command = "PYTHONPATH=. python benchmarks/compare.py " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    report = measure(cands, list(part.texts), list(part.labels), dataset.labels, config=config,
                     tokenizer=ref.tokenizer.backend_tokenizer,  # type: ignore[attr-defined]
                     max_positions=int(getattr(ref.model.config, "max_position_embeddings", 512)),  # type: ignore[attr-defined]
                     data=info, command=command)
    report.write(a.out, plots=config.plots)
    md = report.markdown() + "\n" + targets_markdown(report.to_dict())
    (a.out / "report.md").write_text(md, encoding="utf-8")
    print(md)
    log.info("compare finished in %.1f min: %s", (time.perf_counter() - start) / 60, a.out / "report.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
