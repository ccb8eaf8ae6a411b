"""Encoder families side by side: fusions found, parity, bundle sizes, int8 vs PyTorch at batch 1.

One small random-initialised classifier per family, all of the same shape (hidden 256, 4 layers,
4 heads, FFN 1024, 8,000 embedding rows; no trained checkpoints are reachable offline, and
random weights time the same). Each is exported as the export pipeline does it, with its family
adapter's attention implementation and fusion settings: fp32 (fused), dynamic int8 per-channel,
and pruned int8 (a third of the heads where the family can lose them, half the FFN, 4 -> 3
layers, by weight magnitude, no distillation). Latency: the int8 graph in ONNX
Runtime against the same model in PyTorch (the family's default attention), batch 1, one
thread each, interleaved in one process, median of --repeats runs.

    PYTHONPATH=. .venv/bin/python benchmarks/families.py            # about 3 minutes on 2 cores
    PYTHONPATH=. .venv/bin/python benchmarks/families.py --families bert,mpnet --repeats 50
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _report  # benchmarks/_report.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ("bert", "roberta", "xlm-roberta", "electra", "distilbert", "mpnet", "deberta-v2", "modernbert")
SHAPE = dict(layers=4, hidden=256, heads=4, ffn=1024, vocab_size=8000)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join(FAMILIES))
    p.add_argument("--tokens", type=int, default=32, help="sequence length of the timed input (real texts: ~26)")
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    return p.parse_args(argv)


def _tiny_family_model() -> Any:
    # The tests' model builder: one definition of each family's small config.
    spec = importlib.util.spec_from_file_location("lpm_edge_test_conftest", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.make_tiny_family_model


def _session(path: Path) -> Any:
    from lpm_edge.export.onnx_graph import cpu_session

    return cpu_session(path, threads=1)  # as a bundle loads on the CPU


def _graphs(model: Any, tokenizer: Any, work: Path, tag: str) -> dict[str, Any]:
    """fp32 fused and int8 graphs of `model`, as the export builds them."""
    from lpm_edge.export.onnx_graph import attention_shape, fuse, input_names, quantize_dynamic_int8, to_onnx
    from lpm_edge.families import adapter_for

    names = input_names(model, tokenizer)
    raw, fused, int8 = work / f"{tag}-raw.onnx", work / f"{tag}-fused.onnx", work / f"{tag}-int8.onnx"
    to_onnx(model, names, raw, 17)
    heads, hidden = attention_shape(model)
    fusion = fuse(raw, fused, heads, hidden, adapter_for(model.config).fusion, skip_layer_norm=False)  # as CPU recipes
    quantize_dynamic_int8(fused, int8, work, per_channel=True)
    return {"names": names, "fused": fused, "int8": int8, "fusion": fusion}


def _interleaved_ms(fns: dict[str, Any], repeats: int, block: int = 10) -> dict[str, float]:
    """Median milliseconds per call of each callable. They take turns in blocks of `block` calls, in a
    rotating order, so that machine load hits all alike and none always runs right after PyTorch
    (the first ONNX Runtime calls after a PyTorch call were measured up to 3x slower)."""
    names = list(fns)
    times: dict[str, list[float]] = {k: [] for k in names}
    for round_ in range(-1, -(-repeats // block)):  # round -1 warms up
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            for _ in range(block):
                start = time.perf_counter()
                fns[name]()
                if round_ >= 0:
                    times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def measure(family: str, make: Any, work: Path, tokens: int, repeats: int) -> dict[str, Any]:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge.export import prune as P
    from lpm_edge.export.compress import _keep_layers
    from lpm_edge.export.recipe import PruneConfig
    from lpm_edge.families import adapter_for

    fam = adapter_for(family)
    path = make(work / family, family, **SHAPE)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, attn_implementation=fam.attn_implementation).eval()
    baseline = AutoModelForSequenceClassification.from_pretrained(path).eval()  # the family's default attention
    g = _graphs(model, tokenizer, work, family)

    pruned = copy.deepcopy(model)
    heads, ffn = P.magnitude_importance(pruned)
    keep = _keep_layers(pruned, PruneConfig(layers=3, layer_selection="even"), [], SHAPE["layers"],
                        fam.layer_period(pruned.config))  # as the export chooses them
    P.apply(pruned, P.plan(heads, ffn, 0.0 if fam.no_heads else 0.334, 0.5, keep))
    gp = _graphs(pruned, tokenizer, work, family + "-pruned")

    rng = np.random.default_rng(0)
    ids = rng.integers(5, tokenizer.vocab_size, size=(1, tokens))  # (1, T): ids the tokenizer can make
    ids[0, 0], ids[0, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    feeds = {n: feeds[n] for n in g["names"]}
    inputs = {n: torch.from_numpy(v) for n, v in feeds.items()}
    with torch.inference_mode():
        expected = model(**inputs).logits.numpy()
    fp32, int8, pint8 = _session(g["fused"]), _session(g["int8"]), _session(gp["int8"])
    diff = {k: float(np.abs(s.run(["logits"], feeds)[0] - expected).max()) for k, s in (("fp32", fp32), ("int8", int8))}

    torch.set_num_threads(1)
    with torch.inference_mode():
        ms = _interleaved_ms({"torch": lambda: baseline(**inputs), "int8": lambda: int8.run(["logits"], feeds),
                              "pruned_int8": lambda: pint8.run(["logits"], feeds)}, repeats)
    mb = lambda p: p.stat().st_size / 1e6  # noqa: E731
    return {
        "family": family, "adapter": fam.name, "attn_implementation": fam.attn_implementation,
        "fused_ops": g["fusion"]["operators"], "not_fused": g["fusion"]["not_fused"],
        "no_fusion_for": [k for k in ("attention", "embed_layernorm") if k not in fam.fusion.expects],
        "parity_fp32": diff["fp32"], "parity_int8": diff["int8"],
        "mb_fp32": mb(g["fused"]), "mb_int8": mb(g["int8"]), "mb_pruned_int8": mb(gp["int8"]),
        "pruned_shape": P.shape(pruned),
        "torch_ms": ms["torch"], "int8_ms": ms["int8"], "pruned_int8_ms": ms["pruned_int8"],
    }


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, machine: dict[str, Any], seconds: float) -> str:
    import os

    cpu = machine.get("cpu", {})
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "# Encoder families: fusion, parity, size, batch-1 latency",
        "",
        f"Machine: {cpu.get('model', '?')}, {cpu.get('cores', '?')} cores, VNNI: {cpu.get('vnni', '?')}; load average "
        f"{load} at the end (a shared machine stretches long calls most: PyTorch's); {seconds:.0f} s in all. "
        f"Random-initialised classifiers, hidden {SHAPE['hidden']}, {SHAPE['layers']} layers, {SHAPE['heads']} heads, "
        f"FFN {SHAPE['ffn']}, {SHAPE['vocab_size']:,} embedding rows. Latency: batch 1, {args.tokens} tokens, one "
        f"thread each, median of {args.repeats}, taking turns in blocks of 10 calls in one process. Parity: max "
        "|Δlogit| against PyTorch on that input.",
        "",
        f"Command: `PYTHONPATH=. python benchmarks/families.py --tokens {args.tokens} --repeats {args.repeats}`",
        "",
        "| family | fused operators | no ORT fusion for | parity fp32 / int8 | MB fp32 / int8 / pruned-int8 | pruned to "
        "(layers, heads, FFN) | PyTorch ms | int8 ms | pruned-int8 ms | int8 speed-up |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        ops = ", ".join(f"{k} {v}" for k, v in sorted(r["fused_ops"].items()))
        s = r["pruned_shape"]
        unfused = ", ".join(r["no_fusion_for"] + r["not_fused"]) or "—"
        lines.append(
            f"| {r['family']} | {ops} | {unfused} | {r['parity_fp32']:.1e} / "
            f"{r['parity_int8']:.3f} | {r['mb_fp32']:.1f} / {r['mb_int8']:.1f} / {r['mb_pruned_int8']:.1f} | "
            f"{s['layers']}, {s['heads']}, {s['ffn']} | {r['torch_ms']:.2f} | {r['int8_ms']:.2f} | "
            f"{r['pruned_int8_ms']:.2f} | {r['torch_ms'] / r['int8_ms']:.1f}× |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import logging

    import torch

    from lpm_edge import sysinfo

    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    make = _tiny_family_model()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            rows.append(measure(family, make, Path(tmp), args.tokens, args.repeats))
            r = rows[-1]
            print(f"{family}: torch {r['torch_ms']:.2f} ms, int8 {r['int8_ms']:.2f} ms, "
                  f"pruned int8 {r['pruned_int8_ms']:.2f} ms, fused {r['fused_ops']}", file=sys.stderr, flush=True)
    machine = sysinfo.machine()
    text = markdown(rows, args, machine, time.perf_counter() - started)
    _report.save(args.out / "families", {"machine": machine, "shape": SHAPE, "tokens": args.tokens,
                                         "repeats": args.repeats, "rows": rows}, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
