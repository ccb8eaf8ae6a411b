"""What ONNX Runtime's AVX2 (no VNNI) int8 kernels would do to a bundle, emulated on any CPU.

On x86 CPUs without VNNI, ONNX Runtime's u8s8 MatMul kernel multiplies uint8 activations by int8
weights with `vpmaddubsw`, which adds the products of neighbouring k (k = 2j, 2j+1) into a
saturating int16 before widening to int32; with VNNI (`vpdpbusd`) every product is summed in
int32. This script rewrites each MatMulInteger of a dynamically quantized (unfused) graph into
float ops that compute exactly that: pair sums clipped to [-32768, 32767], then the zero-point
corrections (exact: every value stays below 2^24). With the clip removed the rewrite must equal
ONNX Runtime's own MatMulInteger bit for bit, which the script checks first.

It then compares, text by text at batch 1 (no padding: dynamic int8 scales depend on the batch),
the int8 graph as this CPU runs it and as an AVX2 CPU without VNNI would, with and without
`reduce_range` (7-bit weights, whose pair sums cannot saturate), against the fp32 graph.

    PYTHONPATH=. .venv/bin/python benchmarks/u8s8_saturation.py --checkpoint runs/reduce-range/checkpoint \\
        --texts 300 --report benchmarks/results/u8s8_saturation
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import _report  # benchmarks/_report.py, beside this script


def emulate_avx2(src: Path, dst: Path, clip: bool = True) -> int:
    """Rewrite every MatMulInteger of `src` as the AVX2 u8s8 kernel computes it; return how many."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    new_nodes, count = [], 0
    for node in g.node:
        if node.op_type != "MatMulInteger" or node.input[1] not in inits:
            new_nodes.append(node)
            continue
        count += 1
        p = f"emu{count}_"
        a, b_name = node.input[0], node.input[1]
        b = numpy_helper.to_array(inits[b_name]).astype(np.float32)  # (K, N)
        if b.shape[0] % 2:
            raise SystemExit(f"{node.name}: odd K={b.shape[0]} is not handled by this emulation")
        zb = (numpy_helper.to_array(inits[node.input[3]]).astype(np.float32)
              if len(node.input) > 3 and node.input[3] in inits else np.zeros((), np.float32))
        k = b.shape[0]
        consts = {
            p + "be": b[0::2], p + "bo": b[1::2], p + "colsum": b.sum(0), p + "zb": zb,
            p + "k": np.array(k, np.float32), p + "lo": np.array(-32768, np.float32),
            p + "hi": np.array(32767, np.float32), p + "ax": np.array([-1], np.int64),
            p + "ax2": np.array([-2], np.int64), p + "s0": np.array([0], np.int64), p + "s1": np.array([1], np.int64),
            p + "end": np.array([k], np.int64), p + "step": np.array([2], np.int64),
        }
        g.initializer.extend(numpy_helper.from_array(v, name=n) for n, v in consts.items())
        za = node.input[2] if len(node.input) > 2 and node.input[2] else None
        nodes = [
            helper.make_node("Cast", [a], [p + "af"], to=onnx.TensorProto.FLOAT),
            helper.make_node("Slice", [p + "af", p + "s0", p + "end", p + "ax", p + "step"], [p + "ae"]),
            helper.make_node("Slice", [p + "af", p + "s1", p + "end", p + "ax", p + "step"], [p + "ao"]),
            helper.make_node("Unsqueeze", [p + "ae", p + "ax"], [p + "ae4"]),  # (B, T, K/2, 1)
            helper.make_node("Unsqueeze", [p + "ao", p + "ax"], [p + "ao4"]),
            helper.make_node("Mul", [p + "ae4", p + "be"], [p + "pe"]),  # (B, T, K/2, N)
            helper.make_node("Mul", [p + "ao4", p + "bo"], [p + "po"]),
            helper.make_node("Add", [p + "pe", p + "po"], [p + "pair"]),
        ]
        pair = p + "pair"
        if clip:
            nodes.append(helper.make_node("Clip", [pair, p + "lo", p + "hi"], [p + "sat"]))
            pair = p + "sat"
        nodes += [
            helper.make_node("ReduceSum", [pair, p + "ax2"], [p + "dot"], keepdims=0),  # (B, T, N)
            helper.make_node("ReduceSum", [p + "af", p + "ax"], [p + "rowsum"], keepdims=1),  # (B, T, 1)
            helper.make_node("Mul", [p + "rowsum", p + "zb"], [p + "zbrow"]),
            helper.make_node("Sub", [p + "dot", p + "zbrow"], [p + "d1"]),
        ]
        out = p + "d1"
        if za:
            nodes += [
                helper.make_node("Cast", [za], [p + "za"], to=onnx.TensorProto.FLOAT),
                helper.make_node("Mul", [p + "za", p + "colsum"], [p + "zacol"]),
                helper.make_node("Sub", [out, p + "zacol"], [p + "d2"]),
                helper.make_node("Mul", [p + "za", p + "zb"], [p + "zazb"]),
                helper.make_node("Mul", [p + "zazb", p + "k"], [p + "kzz"]),
                helper.make_node("Add", [p + "d2", p + "kzz"], [p + "d3"]),
            ]
            out = p + "d3"
        nodes.append(helper.make_node("Cast", [out], [node.output[0]], to=onnx.TensorProto.INT32))
        new_nodes += nodes
    del g.node[:]
    g.node.extend(new_nodes)
    onnx.save(model, str(dst))
    return count


def quantize_unfused(src: Path, dst: Path, work: Path, reduce_range: bool) -> None:
    """As the export's dynamic int8 (per-channel int8 weights), on the unfused graph, whose
    symbolic shape inference needs auto_merge."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic

    prepared = work / f"pre-{dst.name}"
    with contextlib.chdir(work):  # symbolic shape inference leaves temporary files in the working directory
        quant_pre_process(str(src), str(prepared), skip_optimization=True, auto_merge=True)
    quantize_dynamic(str(prepared), str(dst), op_types_to_quantize=["MatMul"], per_channel=True,
                     weight_type=QuantType.QInt8, reduce_range=reduce_range)


def session(path: Path) -> Any:
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.log_severity_level = 3
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--tokenizer", type=Path, default=None,
                   help="where the tokenizer is (default: the checkpoint; a kept student (CHECKPOINT.students/KEY) has none)")
    p.add_argument("--data", default="rotten-tomatoes")
    p.add_argument("--texts", type=int, default=300, help="validation texts, one at a time")
    p.add_argument("--report", type=Path, default=None)
    a = p.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge import sysinfo
    from lpm_edge.data import load_dataset
    from lpm_edge.export.onnx_graph import input_names, to_onnx

    started = time.perf_counter()
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(a.tokenizer or a.checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(a.checkpoint, attn_implementation="eager").eval()
    names = input_names(model, tok)
    split = load_dataset(a.data).validation
    texts, labels = list(split.texts[: a.texts]), np.array(split.labels[: a.texts])
    work = Path(tempfile.mkdtemp(prefix="u8s8-"))
    raw = work / "raw.onnx"
    to_onnx(model, names, raw, 17)
    graphs = {"fp32": raw}
    for rr in (False, True):
        tag = "int8 reduce_range" if rr else "int8"
        q = work / f"{tag.replace(' ', '-')}.onnx"
        quantize_unfused(raw, q, work, reduce_range=rr)
        graphs[f"{tag}, this CPU"] = q
        emu = work / f"{tag.replace(' ', '-')}-avx2.onnx"
        n_ops = emulate_avx2(q, emu)
        graphs[f"{tag}, AVX2 emulated"] = emu
        if not rr:  # the rewrite without the clip must be ORT's own MatMulInteger, bit for bit
            exact = work / "int8-noclip.onnx"
            emulate_avx2(q, exact, clip=False)
            graphs["_check"] = exact
    sessions = {n: session(g) for n, g in graphs.items()}
    logits: dict[str, list] = {n: [] for n in graphs}
    for text in texts:
        enc = tok([text], truncation=True, max_length=128, return_tensors="np")
        feed = {n: enc[n].astype(np.int64) for n in names}
        for n, s in sessions.items():
            logits[n].append(s.run(["logits"], feed)[0][0])
    out = {n: np.array(v) for n, v in logits.items()}
    check = float(np.abs(out.pop("_check") - out["int8, this CPU"]).max())
    fp32 = out["fp32"]
    rows = {}
    for n, v in out.items():
        rows[n] = {
            "accuracy": float((v.argmax(1) == labels).mean()),
            "agreement_with_fp32": float((v.argmax(1) == fp32.argmax(1)).mean()),
            "flips_vs_this_cpu_int8": int((v.argmax(1) != out["int8, this CPU"].argmax(1)).sum()),
            "mean_abs_logit_diff_vs_fp32": float(np.abs(v - fp32).mean()),
            "max_abs_logit_diff_vs_fp32": float(np.abs(v - fp32).max()),
        }
    result = {"command": _report.command(), "cpu_class": sysinfo.cpu_class(),
              "texts": len(texts), "matmulinteger_ops": n_ops, "rewrite_without_clip_max_abs_diff": check,
              "seconds": round(time.perf_counter() - started, 1), "graphs": rows}
    lines = [f"# int8 on AVX2 without VNNI (emulated u8s8 saturation) vs this CPU ({result['cpu_class']})", "",
             f"`{result['command']}` ({result['seconds']:.0f} s). {len(texts)} validation texts at batch 1; "
             f"{n_ops} MatMulInteger ops rewritten; the rewrite without its clip differs from ONNX Runtime's "
             f"MatMulInteger by at most {check:.2e} in the logits.", "",
             "| graph | accuracy | agreement with fp32 | argmax flips vs this CPU's int8 | mean / max abs logit diff vs fp32 |",
             "|---|---|---|---|---|"]
    for n, r in rows.items():
        lines.append(f"| {n} | {r['accuracy']:.4f} | {r['agreement_with_fp32'] * 100:.2f}% | "
                     f"{r['flips_vs_this_cpu_int8']} | {r['mean_abs_logit_diff_vs_fp32']:.4f} / "
                     f"{r['max_abs_logit_diff_vs_fp32']:.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.report:
        _report.save(a.report, result, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
