"""Where a bundle's peak memory goes: one fresh process per runtime setting, VmHWM after each stage.

    PYTHONPATH=. .venv/bin/python benchmarks/memory.py runs/final/bundle-cpu-int8 \
        --checkpoint runs/final/checkpoint [--texts 256]

Each process imports numpy, onnxruntime and tokenizers, loads the bundle's tokenizer, opens an
ONNX Runtime session on its graph with one setting changed, then predicts the same test texts
sorted by length into batches. It prints the process's peak resident memory (VmHWM, MiB) after
import, tokenizer, session and prediction, and the prediction's wall time. This is how the
runtime's token cap per model call (`max_batch_tokens`) was chosen; `lpm_edge.load` is not used
so that one setting at a time can change. Linux only (reads /proc/self/status).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r'''
import json, sys, time
cfg = json.loads(sys.argv[1])
def hwm():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmHWM"))
marks = {}
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
marks["import"] = hwm()
with open(cfg["texts"], encoding="utf-8") as f:
    texts = json.load(f)
tok = Tokenizer.from_file(cfg["bundle"] + "/tokenizer.json")
tok.no_padding()
tok.enable_truncation(cfg["max_length"])
marks["tokenizer"] = hwm()
o = ort.SessionOptions()
o.graph_optimization_level = getattr(ort.GraphOptimizationLevel, cfg.get("opt", "ORT_ENABLE_ALL"))
o.intra_op_num_threads, o.inter_op_num_threads = 0, 1
o.enable_cpu_mem_arena = cfg.get("arena", True)
o.enable_mem_pattern = cfg.get("pattern", True)
for k, v in cfg.get("entries", {}).items():
    o.add_session_config_entry(k, v)
s = ort.InferenceSession(cfg["bundle"] + "/model.onnx", o, providers=["CPUExecutionProvider"])
marks["session"] = hwm()
names = [i.name for i in s.get_inputs()]
enc = tok.encode_batch(texts)
batches, cur = [], []
for i in sorted(range(len(enc)), key=lambda i: len(enc[i].ids)):
    width = len(enc[i].ids)
    if cur and (len(cur) >= cfg["batch"] or (cfg.get("tokens") and width * (len(cur) + 1) > cfg["tokens"])):
        batches.append(cur)
        cur = []
    cur.append(i)
batches.append(cur)
t = time.perf_counter()
for rows in batches:
    width = max(len(enc[i].ids) for i in rows)
    ids = np.zeros((len(rows), width), np.int64)
    mask = np.zeros_like(ids)
    for r, i in enumerate(rows):
        ids[r, :len(enc[i].ids)] = enc[i].ids
        mask[r, :len(enc[i].ids)] = 1
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    s.run(None, {k: feed[k] for k in names})
marks["predict_s"] = round(time.perf_counter() - t, 3)
marks["peak"] = hwm()
marks["calls"] = len(batches)
print("MEM " + json.dumps(marks))
'''

VARIANTS = {
    "32 texts a call": {"batch": 32},
    "16 texts a call": {"batch": 16},
    "8 texts a call": {"batch": 8},
    "32 texts, 512 tokens a call": {"batch": 32, "tokens": 512},
    "32 texts, 256 tokens a call (the runtime's default)": {"batch": 32, "tokens": 256},
    "256 tokens, no weight prepacking": {"batch": 32, "tokens": 256, "entries": {"session.disable_prepacking": "1"}},
    "256 tokens, basic graph optimizations": {"batch": 32, "tokens": 256, "opt": "ORT_ENABLE_BASIC"},
    "256 tokens, no memory pattern": {"batch": 32, "tokens": 256, "pattern": False},
    "256 tokens, no CPU arena": {"batch": 32, "tokens": 256, "arena": False},
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", type=Path)
    p.add_argument("--checkpoint", type=Path, required=True, help="the checkpoint the bundle came from (its data)")
    p.add_argument("--data", default=None, help="dataset name or file (default: the checkpoint's)")
    p.add_argument("--texts", type=int, default=256, help="test texts each process predicts")
    a = p.parse_args(argv)

    from lpm_edge.bench.run import load_split
    from lpm_edge.bundle import read_manifest

    _, split, _ = load_split(a.checkpoint, a.data, "test")
    texts = list(split.texts)[: a.texts]
    max_length = read_manifest(a.bundle).max_length
    print(f"{a.bundle}: {len(texts)} test texts; peak resident memory (VmHWM) after each stage, MiB\n")
    print("| setting | after import | after tokenizer | after session | after prediction | prediction s | model calls |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "texts.json"
        path.write_text(json.dumps(texts), encoding="utf-8")
        for name, cfg in VARIANTS.items():
            cfg = {**cfg, "bundle": str(a.bundle), "texts": str(path), "max_length": max_length}
            out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True)
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("MEM ")), None)
            if line is None:
                print(f"| {name} | failed: {out.stderr.strip().splitlines()[-1:]} |||||")
                continue
            m = json.loads(line[4:])
            print(f"| {name} | {m['import']} | {m['tokenizer']} | {m['session']} | {m['peak']} | "
                  f"{m['predict_s']} | {m['calls']} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
