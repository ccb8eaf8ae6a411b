"""Batch scoring throughput and peak memory: 1 and 2 worker processes, Ray, and growing inputs.

    PYTHONPATH=. .venv/bin/python benchmarks/scoring.py runs/bundle \
        [--rows 20000] [--workers 1,2] [--memory-rows 10000,100000] [--chunk-rows 4096] [--no-ray]
        [--out benchmarks/results]

Short texts are synthesised from the built-in Rotten Tomatoes snippets (cycled, each row with an id)
into a CSV file. Each run is a fresh Python process calling `score_file` (or `score_file_ray`).
Peak memory is that process's VmHWM (its own peak; ru_maxrss would report the benchmark's footprint
inherited through the fork) plus N times the largest worker's ru_maxrss (N alike workers); for Ray,
whose actors are not children, only the driver's. The memory-growth runs (1 worker) go first,
smallest input first; a size equal to --rows is not run twice. The report is rewritten after every
run, so a long run that is stopped keeps what it measured. Writes scoring.json and scoring.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _report  # benchmarks/_report.py, beside this script

CHILD = r'''
import json, resource, sys, time
cfg = json.loads(sys.argv[1])
t = time.perf_counter()
if cfg["ray"]:
    import ray
    ray.init(num_cpus=cfg["cores"], include_dashboard=False, log_to_driver=False)
    from lpm_edge.integrations.ray import score_file_ray
    r = score_file_ray(cfg["bundle"], cfg["input"], cfg["output"], concurrency=cfg["workers"], force=True,
                       progress=False, chunk_rows=cfg["chunk_rows"])
else:
    from lpm_edge.scoring import score_file
    r = score_file(cfg["bundle"], cfg["input"], cfg["output"], workers=cfg["workers"], force=True, progress=False,
                   chunk_rows=cfg["chunk_rows"])
wall = time.perf_counter() - t
with open("/proc/self/status") as f:
    own = next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmHWM:"))
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
print(json.dumps({"rows": r.rows, "seconds": wall, "peak_mib_main": own, "peak_mib_child": kids}))
'''


def synthesise(path: Path, rows: int) -> Path:
    from lpm_edge.data import rotten_tomatoes

    ds = rotten_tomatoes()
    texts = list(ds.train.texts + ds.validation.texts + ds.test.texts)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows((i, texts[i % len(texts)]) for i in range(rows))
    return path


def run(bundle: Path, src: Path, out: Path, workers: int, ray: bool, cores: int, chunk_rows: int) -> dict:
    cfg = {"bundle": str(bundle), "input": str(src), "output": str(out), "workers": workers, "ray": ray,
           "cores": cores, "chunk_rows": chunk_rows}
    load_before = os.getloadavg()[0]
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"run failed: {cfg}\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(process_seconds=round(time.perf_counter() - t, 2), workers=workers,
                  path="ray" if ray else "score_file", input_mib=round(src.stat().st_size / 2**20, 1),
                  load_avg_1min=[round(load_before, 2), round(os.getloadavg()[0], 2)])
    result["texts_per_s"] = round(result["rows"] / result["seconds"], 1)
    # ru_maxrss of children is that of the largest one: with N alike workers, main + N x largest
    result["peak_mib"] = result["peak_mib_main"] + (result["peak_mib_child"] * workers if workers > 1 and not ray else 0)
    out.unlink(missing_ok=True)
    print(json.dumps(result), flush=True)
    return result


def report(results: dict, out: Path) -> str:
    rows = [[r["path"], r["workers"], f"{r['rows']:,}", f"{r['input_mib']:,}", f"{r['texts_per_s']:,.0f}",
             r["peak_mib"], f"{r['seconds']:.1f} ({r['process_seconds']:.1f})",
             " → ".join(str(v) for v in r["load_avg_1min"])]
            for r in results["memory"] + results["throughput"]]
    return _report.write(out, "scoring", results, "Batch scoring",
                         ["path", "workers", "rows", "input MiB", "texts/s", "peak MiB", "wall s (process)",
                          "load avg (1 min) before → after"], rows)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle", type=Path)
    p.add_argument("--rows", type=int, default=20_000, help="rows for the workers / Ray comparison")
    p.add_argument("--workers", default="1,2", help="worker counts for the comparison (score_file)")
    p.add_argument("--memory-rows", default="10000,100000", help="input sizes for the memory-growth runs (1 worker)")
    p.add_argument("--chunk-rows", type=int, default=4096, help="rows a chunk (N workers need N chunks or more)")
    p.add_argument("--no-ray", action="store_true")
    p.add_argument("--memory-only", action="store_true", help="only the memory-growth runs")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = p.parse_args()
    from lpm_edge.scoring.run import available_cores
    from lpm_edge.sysinfo import machine

    cores = available_cores()
    results: dict = {"machine": machine(), "bundle": str(a.bundle), "command": " ".join(sys.argv),
                     "throughput": [], "memory": []}
    plan = [] if a.memory_only else [(int(w), False) for w in a.workers.split(",")] + ([] if a.no_ray else [(2, True)])
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(int(v) for v in a.memory_rows.split(",")):
            if n == a.rows and (1, False) in plan:
                continue  # the 1-worker comparison run below measures this size
            src = synthesise(Path(tmp) / f"texts-{n}.csv", n)
            results["memory"].append(run(a.bundle, src, Path(tmp) / "out.csv", 1, False, cores, a.chunk_rows))
            src.unlink()
            report(results, a.out)
        if plan:
            src = synthesise(Path(tmp) / f"texts-{a.rows}.csv", a.rows)
            for workers, ray in plan:
                results["throughput"].append(run(a.bundle, src, Path(tmp) / "out.csv", workers, ray, cores,
                                                 a.chunk_rows))
                report(results, a.out)
    print(report(results, a.out))


if __name__ == "__main__":
    main()
