"""ONNX Runtime's CPU kernels for the residual + layer norm of an encoder layer, timed side by side.

ONNX Runtime's transformer optimizer fuses each residual `Add` (with the dense layer's bias) and the
`LayerNormalization` after it into one `SkipLayerNormalization`. On CUDA the fused kernel is the fast
one; on the CPU (onnxruntime 1.32) it measured about 5× slower than the three operators it replaces,
so lpm-edge's CPU recipes leave them apart (`lpm_edge/export/onnx_graph.py`, `fuse`). This checks
that choice on the machine at hand and on other onnxruntime versions: a graph of 8 such norms per
form, at the widths of MiniLM (384) and BERT-base (768), for a few sequence lengths and thread
counts, timed in alternating rounds after a warm-up; medians per norm, printed as Markdown.

    PYTHONPATH=. .venv/bin/python benchmarks/layernorm_kernels.py --out benchmarks/results/layernorm_kernels.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="also write the Markdown here")
    p.add_argument("--hidden", default="384,768", help="widths, comma-separated")
    p.add_argument("--lengths", default="16,64,128", help="tokens per text, comma-separated (batch 1)")
    p.add_argument("--threads", default="1,2", help="intra-op thread counts, comma-separated")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=200, help="timed runs per form in a round")
    a = p.parse_args()

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
                for _ in range(a.rounds):
                    for fused, session in sessions.items():
                        for _ in range(20):
                            session.run(None, feed)
                        times = []
                        for _ in range(a.runs):
                            start = time.perf_counter()
                            session.run(None, feed)
                            times.append(time.perf_counter() - start)
                        medians[fused].append(statistics.median(times) / NORMS * 1e6)
                fused_us, apart_us = statistics.median(medians[True]), statistics.median(medians[False])
                rows.append(f"| {hidden} | {length} | {threads} | {fused_us:.1f} | {apart_us:.1f} | "
                            f"{fused_us / apart_us:.2f}× | {diff:.1e} |")
    lines = [
        "# Residual + layer norm: ONNX Runtime's fused CPU kernel against the operators it replaces",
        "",
        f"CPU class: {cpu_class()}; onnxruntime {ort.__version__}; batch 1; {NORMS} norms per graph; medians of "
        f"{a.rounds} alternating rounds of {a.runs} runs, in microseconds per norm.",
        "",
        "| width | tokens | threads | SkipLayerNormalization | Add + Add + LayerNormalization | fused / apart | max abs diff |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "Command: `PYTHONPATH=. python benchmarks/layernorm_kernels.py`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(a.out)


if __name__ == "__main__":
    main()
