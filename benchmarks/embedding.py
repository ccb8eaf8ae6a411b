"""Sentence embeddings of the built-in all-MiniLM-L6-v2: int8 and pruned int8 bundles against the
PyTorch reference, fidelity and speed in one run.

- Bundles: `lpm-edge export MODEL --task embedding` with cpu-int8, and with cpu-pruned-int8 whose
  distillation is cut to --steps (default 400 of the recipe's 1600, to stay bounded on a shared
  CPU); both distil/evaluate on Rotten Tomatoes (train texts for distillation, validation for the
  export check).
- Reference: sentence-transformers' SentenceTransformer on PyTorch when it imports (the model's own
  modules: Transformer, mean Pooling, Normalize), else transformers' AutoModel + mean pooling + L2
  written here (the report says which).
- Peer: sentence-transformers' ONNX backend, `SentenceTransformer(folder, backend="onnx")`, as its
  documentation shows: a local folder without an ONNX file is exported by Optimum
  (ORTModelForFeatureExtraction, fp32, no graph optimisation or quantisation) when loaded, and run
  by ONNX Runtime on the CPU provider with --threads intra-op threads; pooling and normalisation stay
  in sentence-transformers (PyTorch). It runs on a copy of the model folder in --work, so nothing is
  written into the installed model package. Left out with --no-onnx-peer or when sentence-transformers
  or optimum does not import.
- Fidelity on a held-out corpus: Rotten Tomatoes' validation and test texts (2,615, none used for
  distillation): mean cosine of each text's bundle vector to the reference's (the export budget's
  metric, loss in points with a paired bootstrap 95% CI) and recall@10 agreement (of each text's
  10 nearest neighbours in the corpus under the reference, the share the bundle also returns).
- Speed: batch 1 (median latency of --latency-texts texts one at a time) and batch 32 (texts/s
  over the corpus), each engine with --threads threads.
- Pooling inside the graph vs in numpy: two fused int8 MiniLM graphs built as export builds them,
  one returning the pooled, normalised vectors, the other the token states (B, T, 384) pooled by
  numpy; median time per call on the same batches.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/embedding.py --out benchmarks/results

sentence-transformers (and, for its import, scikit-learn) is not an lpm-edge dependency; install it
beside lpm-edge to get the PyTorch reference and the ONNX peer: pip install "sentence-transformers==5.1.2".
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import _report  # benchmarks/_report.py, beside this script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for embedding.json and embedding.md")
    p.add_argument("--work", type=Path, default=Path("runs/bench-embedding"), help="bundles go here (reused)")
    p.add_argument("--steps", type=int, default=400, help="distillation steps of the pruned bundle")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--latency-texts", type=int, default=200)
    p.add_argument("--corpus", type=int, default=None, help="at most this many held-out texts (default all)")
    p.add_argument("--bundles", default="int8,pruned-int8", help="which bundles to export and measure")
    p.add_argument("--skip-pooling", action="store_true", help="leave out the in-graph vs numpy pooling timing")
    p.add_argument("--no-onnx-peer", action="store_true", help="leave out sentence-transformers' ONNX backend")
    p.add_argument("--pooling-runs", type=int, default=0,
                   help="only time pooling in the graph against numpy, this many times, and print each run")
    return p.parse_args(argv)


def model_dir() -> Path:
    from lpm_edge.assets import builtin_model_dir

    return builtin_model_dir()


def bundle(work: Path, name: str, steps: int) -> Path:
    """The bundle `name` (int8 or pruned-int8) in `work`, exported unless it is there."""
    from lpm_edge.export import export
    from lpm_edge.export.recipe import load_recipe

    recipe = load_recipe("cpu-int8" if name == "int8" else "cpu-pruned-int8")
    if name != "int8":
        recipe = recipe.replace(distill=recipe.distill.__class__(**{**recipe.distill.__dict__, "steps": steps}))
    path = work / f"minilm-embed-{name}"
    if not (path / "manifest.json").is_file():
        export(model_dir(), path, recipe, task="embedding", max_accuracy_drop=100.0, student_cache=work / "students")
    return path


def reference(threads: int, max_length: int) -> tuple[str, Callable[[list[str], int], np.ndarray]]:
    import torch

    torch.set_num_threads(threads)
    try:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(model_dir()), device="cpu")
        st.max_seq_length = max_length
        import sentence_transformers

        return (f"sentence-transformers {sentence_transformers.__version__} (PyTorch {torch.__version__})",
                lambda texts, bs: st.encode(texts, batch_size=bs, convert_to_numpy=True, normalize_embeddings=True))
    except ImportError:
        from transformers import AutoModel, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(model_dir())
        model = AutoModel.from_pretrained(model_dir()).eval()

        def encode(texts: list[str], bs: int) -> np.ndarray:
            out = []
            with torch.inference_mode():
                for i in range(0, len(texts), bs):
                    enc = tok(texts[i : i + bs], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
                    h = model(**enc).last_hidden_state
                    m = enc["attention_mask"].unsqueeze(-1).float()
                    out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=1).numpy())
            return np.concatenate(out)

        return f"transformers AutoModel + mean pooling + L2 (PyTorch {torch.__version__})", encode


def onnx_peer(threads: int, max_length: int, work: Path) -> tuple[str, Callable[[list[str], int], np.ndarray]] | None:
    """sentence-transformers' ONNX backend on a copy of the model folder (exported by Optimum on
    load), or None when sentence-transformers or optimum's ONNX Runtime support does not import."""
    import shutil

    try:
        import onnxruntime as ort
        import sentence_transformers
        from optimum.onnxruntime import ORTModelForFeatureExtraction  # noqa: F401 (what the backend loads)
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        logging.getLogger("benchmarks").warning("no sentence-transformers ONNX peer: %s", exc)
        return None
    folder = work / "st-onnx-model"
    if not folder.is_dir():
        shutil.copytree(model_dir(), folder)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    st = SentenceTransformer(str(folder), device="cpu", backend="onnx", local_files_only=True,
                             model_kwargs={"provider": "CPUExecutionProvider", "session_options": options})
    st.max_seq_length = max_length
    return (f"sentence-transformers {sentence_transformers.__version__} ONNX backend (Optimum export, fp32, "
            f"ONNX Runtime {ort.__version__})",
            lambda texts, bs: st.encode(texts, batch_size=bs, convert_to_numpy=True, normalize_embeddings=True))


def speed(encode: Callable[[list[str], int], np.ndarray], texts: list[str], n_latency: int) -> dict[str, float]:
    encode(texts[:32], 32)  # warm-up
    lat = []
    for t in texts[:n_latency]:
        t0 = time.perf_counter()
        encode([t], 1)
        lat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    encode(texts, 32)
    seconds = time.perf_counter() - t0
    return {"batch1_median_ms": statistics.median(lat) * 1e3, "batch32_texts_per_s": len(texts) / seconds}


def fidelity(texts: list[str], gold: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    from lpm_edge.data import Split
    from lpm_edge.evaluate import compare
    from lpm_edge.tasks.embedding import Embedding

    task = Embedding((), {"dim": gold.shape[1]})
    split = Split(tuple(texts), tuple(gold), "held-out", "rotten-tomatoes validation + test")
    _, s = compare(split, [("reference", gold), ("bundle", got)], task)
    return {"cosine": s.all_metrics["cosine"], "recall_at_10": s.all_metrics["recall_at_10"],
            "cosine_loss_points": s.loss_points, "cosine_loss_ci95": list(s.loss_ci95 or ()),
            "nearest_neighbour_agreement": s.agreement}


def pooling_speed(texts: list[str], threads: int, work: Path, max_length: int) -> dict[str, Any]:
    """Two int8 graphs of the full model, built as export builds them (TorchScript ONNX, ORT fusion,
    dynamic int8 per channel): one returns the pooled, normalised vectors, the other the token
    states (B, T, 384), pooled (mean + L2) in numpy. Median time per call on the same batches."""
    from types import SimpleNamespace

    import torch
    from transformers import AutoModel, AutoTokenizer

    from lpm_edge.export.onnx_graph import (attention_shape, cpu_session, fuse, input_names, quantize_dynamic_int8,
                                            to_onnx)
    from lpm_edge.families import adapter_for
    from lpm_edge.tasks.embedding import Embedding

    tok = AutoTokenizer.from_pretrained(model_dir())
    base = AutoModel.from_pretrained(model_dir(), attn_implementation="eager").eval()
    task = Embedding((), {"pooling": ["mean"], "normalize": True, "dim": 384})
    hidden_task = SimpleNamespace(graph_output=lambda out, feeds: out.last_hidden_state,
                                  output_name="hidden", output_axes={0: "batch", 1: "sequence"})
    names = input_names(base, tok)
    sessions = {}
    for name, model, t in (("in_graph", task.prepare_model(base), task), ("numpy", base, hidden_task)):
        raw, fused, q = (work / f"{name}-{s}.onnx" for s in ("raw", "fused", "int8"))
        to_onnx(model, names, raw, 17, t)
        heads, hidden = attention_shape(base)
        fuse(raw, fused, heads, hidden, adapter_for(base.config).fusion, skip_layer_norm=False)  # as CPU recipes
        quantize_dynamic_int8(fused, q, work, per_channel=True)
        sessions[name] = cpu_session(q, threads)  # as a bundle loads

    def in_graph(feed: dict) -> np.ndarray:
        return sessions["in_graph"].run(None, feed)[0]

    def in_numpy(feed: dict) -> np.ndarray:
        h = sessions["numpy"].run(None, feed)[0]  # (B, T, H)
        m = feed["attention_mask"][..., None].astype(np.float32)
        v = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def feed(batch: list[str]) -> dict:
        enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="np")
        return {n: enc[n].astype(np.int64) for n in names}

    out: dict[str, Any] = {}
    for bs in (1, 32):
        feeds = [feed(texts[i : i + bs]) for i in range(0, min(len(texts), 100 if bs == 1 else 640), bs)]
        diff = max(float(np.abs(in_numpy(f) - in_graph(f)).max()) for f in feeds[:5])
        ways = {"in_graph": in_graph, "numpy": in_numpy}
        for fn in ways.values():
            for f in feeds[:3]:
                fn(f)
        ts: dict[str, list[float]] = {name: [] for name in ways}
        for round_ in range(4):  # alternating rounds, each way first in turn: no order effect
            for name in (list(ways) if round_ % 2 == 0 else list(ways)[::-1]):
                for f in feeds:
                    t0 = time.perf_counter()
                    ways[name](f)
                    ts[name].append(time.perf_counter() - t0)
        timings = {f"{name}_median_ms": statistics.median(t) * 1e3 for name, t in ts.items()}
        out[f"batch{bs}"] = {**timings, "calls": len(feeds), "max_abs_diff": diff}
    return out


def main(argv: list[str] | None = None) -> int:
    """Reference first, then each bundle as it is ready; the report is rewritten after each step."""
    import lpm_edge
    from lpm_edge import sysinfo
    from lpm_edge.data import load_dataset

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("root").setLevel(logging.WARNING)
    a = parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    a.work.mkdir(parents=True, exist_ok=True)
    ds = load_dataset("rotten-tomatoes")
    texts = list(ds.validation.texts) + list(ds.test.texts)
    texts = texts[: a.corpus] if a.corpus else texts
    if a.pooling_runs:
        runs = []
        for _ in range(a.pooling_runs):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(pooling_speed(texts, a.threads, Path(tmp), 128))  # the recipes' max_length
        table = pooling_markdown(runs, sysinfo.cpu_class(), a.threads)
        _report.save(a.out / "pooling", {"cpu": sysinfo.cpu_class(), "threads": a.threads, "runs": runs}, table)
        print(table)
        return 0
    result: dict[str, Any] = {"cpu": sysinfo.cpu_class(), "machine": sysinfo.machine(), "threads": a.threads,
                              "corpus": len(texts), "distill_steps": a.steps, "rows": {}, "export_seconds": {}}

    def save() -> None:
        _report.save(a.out / "embedding", result, markdown(result))

    started = time.perf_counter()
    path = bundle(a.work, "int8", a.steps)
    result["export_seconds"]["int8"] = round(time.perf_counter() - started, 1)
    max_length = lpm_edge.load(path, threads=a.threads).max_length
    ref_name, ref = reference(a.threads, max_length)
    gold = ref(texts, 32)
    result["rows"]["reference"] = {"engine": ref_name, **speed(ref, texts, a.latency_texts)}
    peer = None if a.no_onnx_peer else onnx_peer(a.threads, max_length, a.work)
    if peer is not None:
        peer_name, peer_encode = peer
        result["rows"]["st-onnx"] = {"engine": peer_name, **speed(peer_encode, texts, a.latency_texts),
                                     **fidelity(texts, gold, peer_encode(texts, 32)), "bytes": None}
        save()
    for name in a.bundles.split(","):
        if name != "int8":
            started = time.perf_counter()
            path = bundle(a.work, name, a.steps)
            result["export_seconds"][name] = round(time.perf_counter() - started, 1)
        enc = lpm_edge.load(path, threads=a.threads)

        def encode(ts: list[str], bs: int, enc: Any = enc) -> np.ndarray:
            enc.batch_size = bs
            return enc.embed(ts)

        got = encode(texts, 32)
        m = enc.manifest
        result["rows"][name] = {
            "engine": f"lpm-edge {m.recipe['name']} bundle", **speed(encode, texts, a.latency_texts),
            **fidelity(texts, gold, got),
            "export_check": {k: m.metrics.get(k) for k in ("n", "split", "bundle_accuracy", "accuracy_drop_points",
                                                           "accuracy_drop_ci95", "bundle_metrics")},
            "bytes": sum(e["bytes"] for e in m.files.values()),
            "compression": {k: m.source["compression"].get(k) for k in ("layers", "heads", "ffn", "vocab", "distill")
                            if k in m.source["compression"]},
        }
        save()
        if name == "int8" and not a.skip_pooling:
            with tempfile.TemporaryDirectory() as tmp:
                result["pooling"] = pooling_speed(texts, a.threads, Path(tmp), max_length)
            save()
    print(markdown(result))
    return 0


def pooling_markdown(runs: list[dict[str, Any]], cpu: str, threads: int) -> str:
    lines = [f"Pooling inside the int8 graph vs token states out + numpy mean pooling and L2, CPU class {cpu}, "
             f"{threads} threads; median ms per call, the two ways in alternating rounds; one row per run.", "",
             "| run | batch 1: in graph | batch 1: numpy | batch 32: in graph | batch 32: numpy |", "|---|---|---|---|---|"]
    for i, r in enumerate(runs, 1):
        b1, b32 = r["batch1"], r["batch32"]
        lines.append(f"| {i} | {b1['in_graph_median_ms']:.2f} | {b1['numpy_median_ms']:.2f} | "
                     f"{b32['in_graph_median_ms']:.1f} | {b32['numpy_median_ms']:.1f} |")
    return "\n".join(lines) + "\n"


def markdown(r: dict[str, Any]) -> str:
    ref = r["rows"]["reference"]
    lines = [f"Sentence embeddings, all-MiniLM-L6-v2, {r['corpus']:,} held-out Rotten Tomatoes texts, "
             f"{r['threads']} threads, CPU class {r['cpu']}. Reference: {ref['engine']}.", "",
             "| engine | batch 1 median ms | batch 32 texts/s | mean cosine (loss, points, 95% CI) | recall@10 | "
             "nearest-neighbour agreement | MB |", "|---|---|---|---|---|---|---|"]
    for name, row in r["rows"].items():
        if name == "reference":
            lines.append(f"| {row['engine']} | {row['batch1_median_ms']:.2f} | {row['batch32_texts_per_s']:.0f} | "
                         "1 | 1 | 1 | |")
            continue
        ci = row["cosine_loss_ci95"]
        mb = "" if row.get("bytes") is None else f"{row['bytes'] / 1e6:.1f}"
        lines.append(
            f"| {row['engine']} | {row['batch1_median_ms']:.2f} ({ref['batch1_median_ms'] / row['batch1_median_ms']:.2f}x) | "
            f"{row['batch32_texts_per_s']:.0f} ({row['batch32_texts_per_s'] / ref['batch32_texts_per_s']:.2f}x) | "
            f"{row['cosine']:.4f} ({row['cosine_loss_points']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]) | "
            f"{row['recall_at_10']:.3f} | {row['nearest_neighbour_agreement']:.3f} | {mb} |")
    p = r.get("pooling")
    lines += [] if not p else ["", "Pooling inside the int8 graph vs token states out + numpy mean pooling and L2 (median ms per call): "
              + "; ".join(f"batch {b}: in graph {p[f'batch{b}']['in_graph_median_ms']:.2f}, numpy "
                          f"{p[f'batch{b}']['numpy_median_ms']:.2f}" for b in (1, 32)), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
