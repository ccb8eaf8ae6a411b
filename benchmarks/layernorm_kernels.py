"""ONNX Runtime's CPU kernels for the residual + layer norm of an encoder layer, timed side by side.

ONNX Runtime's transformer optimizer fuses each residual `Add` (with the dense layer's bias) and the
`LayerNormalization` after it into one `SkipLayerNormalization`. On CUDA the fused kernel is the fast
one; on the CPU (onnxruntime 1.32) it measured 2.7-6.3× slower than the three operators it replaces,
so lpm-edge's CPU recipes leave them apart (`lpm_edge/export/onnx_graph.py`, `fuse`). This checks
that choice on the machine at hand and on other onnxruntime versions: a graph of 8 such norms per
form, at the widths of MiniLM (384) and BERT-base (768), for a few sequence lengths and thread
counts, timed in alternating rounds after a warm-up; medians per norm, printed as Markdown.

With `--bundles`, it times whole CPU bundles instead: each loaded by `lpm_edge.load` as shipped (the
runtime leaves SkipLayerNormFusion out of ONNX Runtime's load-time optimizer) and again with that
fusion let back in, batch 1 end to end on the checkpoint's test texts, alternating rounds.

Writes OUT.md and OUT.json (`--out benchmarks/results/layernorm_kernels` writes those two).

    PYTHONPATH=. .venv/bin/python benchmarks/layernorm_kernels.py --out benchmarks/results/layernorm_kernels
    PYTHONPATH=. .venv/bin/python benchmarks/layernorm_kernels.py --checkpoint runs/demo/checkpoint \\
        --bundles runs/demo/bundle-cpu-int8,runs/l4-narrow --out benchmarks/results/layernorm_bundles
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import _report  # benchmarks/_report.py, beside this script

NORMS = 8  # per graph: one per residual of a 4-layer encoder


def graph(fused: bool, hidden: int) -> bytes:
    """NORMS residual norms in a chain, fused into SkipLayerNormalization or as Add, Add, LayerNormalization."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.random(hidden, dtype=np.float32), name) for name in ("gamma", "beta", "bias")]
    nodes, current = [], "x"
    for i in range(NORMS):
        if fused:
            nodes.append(helper.make_node("SkipLayerNormalization", [current, "skip", "gamma", "beta", "bias"],
                                          [f"y{i}"], domain="com.microsoft", epsilon=1e-12))
        else:
            nodes += [helper.make_node("Add", [current, "skip"], [f"sum{i}"]),
                      helper.make_node("Add", [f"sum{i}", "bias"], [f"biased{i}"]),
                      helper.make_node("LayerNormalization", [f"biased{i}", "gamma", "beta"], [f"y{i}"],
                                       axis=-1, epsilon=1e-12)]
        current = f"y{i}"
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", "sequence", hidden]) for n in ("x", "skip")]
    out = [helper.make_tensor_value_info(current, TensorProto.FLOAT, ["batch", "sequence", hidden])]
    model = helper.make_model(helper.make_graph(nodes, "norms", io, out, weights),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 8
    return model.SerializeToString()


def bundles(paths: list[Path], checkpoint: Path, texts: int, threads: list[int], rounds: int) -> tuple[dict, list[str]]:
    """Each bundle's batch-1 median with and without SkipLayerNormFusion at load: results, Markdown lines."""
    import lpm_edge
    from lpm_edge.data import load_dataset
    from lpm_edge.runtime import providers
    from lpm_edge.sysinfo import cpu_class
    from lpm_edge.train import read_training_info

    sample = list(load_dataset(read_training_info(checkpoint)["data"]["source"]).test.texts[:texts])
    shipped = providers.disabled_optimizers
    rows = []
    for n in threads:
        engines = {}
        for path in paths:
            for fused in (False, True):
                providers.disabled_optimizers = (lambda asked: []) if fused else shipped
                try:
                    engines[(path.name, fused)] = lpm_edge.load(path, providers="cpu", threads=n, spin=False)
                finally:
                    providers.disabled_optimizers = shipped
        times: dict[tuple, list[float]] = {key: [] for key in engines}
        for clf in engines.values():  # warm-up
            clf.predict(sample[:30])
            for t in sample[:30]:
                clf.predict([t])
        for r in range(rounds):
            for key in list(engines) if r % 2 == 0 else list(engines)[::-1]:  # each engine first in turn
                for t in sample:
                    start = time.perf_counter()
                    engines[key].predict([t])
                    times[key].append(time.perf_counter() - start)
        for path in paths:
            apart, fused = (statistics.median(times[(path.name, f)]) * 1e3 for f in (False, True))
            rows.append({"bundle": path.name, "threads": n, "apart_ms": apart, "fused_ms": fused})
    table = [f"| {r['bundle']} | {r['threads']} | {r['apart_ms']:.2f} | {r['fused_ms']:.2f} | "
             f"{r['fused_ms'] / r['apart_ms']:.2f}× |" for r in rows]
    return {"cpu": cpu_class(), "texts": len(sample), "rounds": rounds, "rows": rows}, [
        "# Whole bundles: residual Adds kept apart from LayerNormalization at load, or fused by ONNX Runtime",
        "",
        f"CPU class: {cpu_class()}; batch 1 end to end (`predict([text])`), {len(sample)} test texts of the "
        f"checkpoint's data, spinning off, medians over {rounds} alternating rounds, in milliseconds.",
        "",
        "| bundle | threads | as shipped (apart) | SkipLayerNormFusion at load | fused / apart |",
        "| --- | --- | --- | --- | --- |",
        *table,
        "",
        f"Command: `{_report.command()}`",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="also write OUT.md and OUT.json")
    p.add_argument("--hidden", default="384,768", help="widths, comma-separated")
    p.add_argument("--lengths", default="16,64,128", help="tokens per text, comma-separated (batch 1)")
    p.add_argument("--threads", default="1,2", help="intra-op thread counts, comma-separated")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=200, help="timed runs per form in a round")
    p.add_argument("--bundles", help="CPU bundle directories, comma-separated: time these instead")
    p.add_argument("--checkpoint", type=Path, help="with --bundles: the checkpoint whose test texts to use")
    p.add_argument("--texts", type=int, default=200, help="with --bundles: test texts per round")
    a = p.parse_args(argv)
    if a.bundles:
        if not a.checkpoint:
            p.error("--bundles needs --checkpoint (the test texts come from its data)")
        write(a.out, *bundles([Path(b) for b in a.bundles.split(",")], a.checkpoint, a.texts,
                              [int(x) for x in a.threads.split(",")], a.rounds))
        return 0

    import onnxruntime as ort

    from lpm_edge.sysinfo import cpu_class

    def ints(text: str) -> list[int]:
        return [int(x) for x in text.split(",")]

    rows = []
    for hidden in ints(a.hidden):
        for threads in ints(a.threads):
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            sessions = {fused: ort.InferenceSession(graph(fused, hidden), options, providers=["CPUExecutionProvider"])
                        for fused in (True, False)}
            for length in ints(a.lengths):
                rng = np.random.default_rng(length)
                feed = {n: rng.standard_normal((1, length, hidden), dtype=np.float32) for n in ("x", "skip")}
                outs = {fused: s.run(None, feed)[0] for fused, s in sessions.items()}
                diff = float(np.abs(outs[True] - outs[False]).max())
                medians: dict[bool, list[float]] = {True: [], False: []}
                for r in range(a.rounds):
                    for fused in (True, False) if r % 2 == 0 else (False, True):  # each form first in turn
                        session = sessions[fused]
                        for _ in range(20):
                            session.run(None, feed)
                        times = []
                        for _ in range(a.runs):
                            start = time.perf_counter()
                            session.run(None, feed)
                            times.append(time.perf_counter() - start)
                        medians[fused].append(statistics.median(times) / NORMS * 1e6)
                rows.append({"width": hidden, "tokens": length, "threads": threads, "max_abs_diff": diff,
                             "fused_us": statistics.median(medians[True]), "apart_us": statistics.median(medians[False])})
    lines = [
        "# Residual + layer norm: ONNX Runtime's fused CPU kernel against the operators it replaces",
        "",
        f"CPU class: {cpu_class()}; onnxruntime {ort.__version__}; batch 1; {NORMS} norms per graph; medians of "
        f"{a.rounds} alternating rounds of {a.runs} runs, in microseconds per norm.",
        "",
        "| width | tokens | threads | SkipLayerNormalization | Add + Add + LayerNormalization | fused / apart | max abs diff |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(f"| {r['width']} | {r['tokens']} | {r['threads']} | {r['fused_us']:.1f} | {r['apart_us']:.1f} | "
          f"{r['fused_us'] / r['apart_us']:.2f}× | {r['max_abs_diff']:.1e} |" for r in rows),
        "",
        f"Command: `{_report.command()}`",
    ]
    write(a.out, {"cpu": cpu_class(), "onnxruntime": ort.__version__, "rounds": a.rounds, "runs": a.runs,
                  "rows": rows}, lines)
    return 0


def write(out: Path | None, results: dict, lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        _report.save(out.with_suffix(""), results, text)


if __name__ == "__main__":
    raise SystemExit(main())
