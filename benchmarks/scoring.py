"""Batch scoring throughput and peak memory: 1 and 2 worker processes, Ray, and growing inputs.

    PYTHONPATH=. .venv/bin/python benchmarks/scoring.py runs/bundle \
        [--rows 20000] [--memory-rows 10000,100000] [--no-ray] [--out benchmarks/results]

Short texts are synthesised from the built-in Rotten Tomatoes snippets (cycled, each row with an id)
into a CSV file. Each run is a fresh Python process calling `score_file` (or `score_file_ray`);
peak memory is the maximum resident set (ru_maxrss) of that process plus N times that of its
largest child (the N workers); for Ray, whose actors are not children, only the driver's.
Writes scoring.json and scoring.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r'''
import json, resource, sys, time
cfg = json.loads(sys.argv[1])
t = time.perf_counter()
if cfg["ray"]:
    import ray
    ray.init(num_cpus=cfg["cores"], include_dashboard=False, log_to_driver=False)
    from lpm_edge.integrations.ray import score_file_ray
    r = score_file_ray(cfg["bundle"], cfg["input"], cfg["output"], concurrency=cfg["workers"], force=True)
else:
    from lpm_edge.scoring import score_file
    r = score_file(cfg["bundle"], cfg["input"], cfg["output"], workers=cfg["workers"], force=True, progress=False)
wall = time.perf_counter() - t
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
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


def run(bundle: Path, src: Path, out: Path, workers: int, ray: bool, cores: int) -> dict:
    cfg = {"bundle": str(bundle), "input": str(src), "output": str(out), "workers": workers, "ray": ray,
           "cores": cores}
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"run failed: {cfg}\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(process_seconds=round(time.perf_counter() - t, 2), workers=workers,
                  path="ray" if ray else "score_file", input_mib=round(src.stat().st_size / 2**20, 1))
    result["texts_per_s"] = round(result["rows"] / result["seconds"], 1)
    # ru_maxrss of children is that of the largest one: with N alike workers, main + N x largest
    result["peak_mib"] = result["peak_mib_main"] + (result["peak_mib_child"] * workers if not ray else 0)
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle", type=Path)
    p.add_argument("--rows", type=int, default=20_000, help="rows for the 1 / 2 workers / Ray comparison")
    p.add_argument("--memory-rows", default="10000,100000", help="input sizes for the memory-growth runs (1 worker)")
    p.add_argument("--no-ray", action="store_true")
    p.add_argument("--memory-only", action="store_true", help="only the memory-growth runs")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = p.parse_args()
    from lpm_edge.scoring.run import available_cores
    from lpm_edge.sysinfo import machine

    cores = available_cores()
    results: dict = {"machine": machine(), "bundle": str(a.bundle), "command": " ".join(sys.argv),
                     "throughput": [], "memory": []}
    with tempfile.TemporaryDirectory() as tmp:
        if not a.memory_only:
            src = synthesise(Path(tmp) / f"texts-{a.rows}.csv", a.rows)
            for workers, ray in [(1, False), (2, False)] + ([] if a.no_ray else [(2, True)]):
                results["throughput"].append(run(a.bundle, src, Path(tmp) / "out.csv", workers, ray, cores))
        for n in (int(v) for v in a.memory_rows.split(",")):
            src = synthesise(Path(tmp) / f"texts-{n}.csv", n)
            results["memory"].append(run(a.bundle, src, Path(tmp) / "out.csv", 1, False, cores))
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "scoring.json").write_text(json.dumps(results, indent=2))
    cpu = results["machine"]["cpu"]
    lines = [f"# Batch scoring ({cpu['model']}, {cpu['cores']} cores, VNNI {'yes' if cpu['vnni'] else 'no'})", "",
             f"`{results['command']}`", "", "| path | workers | rows | texts/s | peak MiB | wall s (process) |",
             "|---|---|---|---|---|---|"]
    for r in results["throughput"] + results["memory"]:
        lines.append(f"| {r['path']} | {r['workers']} | {r['rows']:,} | {r['texts_per_s']:,.0f} | {r['peak_mib']} | "
                     f"{r['seconds']:.1f} ({r['process_seconds']:.1f}) |")
    (a.out / "scoring.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
