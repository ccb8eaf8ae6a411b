"""What the Ray path (`lpm-edge predict --ray`, `score_file_ray`) pays beyond scoring, on this machine.

    PYTHONPATH=. .venv/bin/python benchmarks/ray_overhead.py runs/bundle [--actors 2] [--chunk-rows 4096]
        [--rounds 5] [--out benchmarks/results]

In one process, timed one after the other: starting a local Ray instance; starting the actors
(a worker process each, importing lpm_edge, loading the bundle: until each answers its first call);
the round trip of one chunk of short texts to an actor that only counts them (serialising the texts
into the object store, scheduling, sending back a result of the chunk's size), median of --rounds;
scoring --score-rows of those texts, half on each of two actors, and in this process (the round trip
is then given in texts' worth of scoring CPU); the CPU seconds Ray's processes (actors, and Ray's
own: GCS, raylet, agents) spent while scoring and while idle. Beside it, the fixed cost of the local path's
worker processes (spawned, each loading the bundle). Writes ray_overhead.json and ray_overhead.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

import _report  # benchmarks/_report.py, beside this script


class Echo:
    """An actor that only counts the texts it gets: what is left of a call is Ray's own cost."""

    def count(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), 2), np.float32)  # the size of a scored chunk's answer


def ray_cpu_s() -> dict[str, float]:
    """CPU seconds so far of the Ray processes this one started (a local instance: GCS, raylet,
    agents, workers), as actors (process title ray::<class>) and the rest."""
    import psutil

    spent = {"actors": 0.0, "ray's own processes": 0.0}
    for proc in psutil.Process().children(recursive=True):
        try:
            name = " ".join(proc.cmdline()[:1])
            t = proc.cpu_times()
        except psutil.Error:  # gone meanwhile
            continue
        kind = "actors" if name.startswith(("ray::_ChunkScorer", "ray::Echo")) else "ray's own processes"
        spent[kind] += t.user + t.system
    return spent


def cpu_during(fn: Any) -> tuple[float, dict[str, float]]:
    """(wall seconds of fn(), CPU seconds meanwhile of this process and of the Ray processes, by kind)."""
    before, t, mine = ray_cpu_s(), time.perf_counter(), time.process_time()
    fn()
    wall, after = time.perf_counter() - t, ray_cpu_s()
    return wall, {"this process": round(time.process_time() - mine, 3),
                  **{k: round(after[k] - before[k], 3) for k in after}}


def median_s(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle", type=Path)
    p.add_argument("--actors", type=int, default=2)
    p.add_argument("--chunk-rows", type=int, default=4096)
    p.add_argument("--score-rows", type=int, default=512, help="texts scored to time scoring (a share of a chunk)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = p.parse_args()
    import ray

    from lpm_edge import load
    from lpm_edge.data import rotten_tomatoes
    from lpm_edge.integrations.ray import _ChunkScorer
    from lpm_edge.scoring.run import _scorer, available_cores
    from lpm_edge.sysinfo import machine

    ds = rotten_tomatoes()
    pool = list(ds.train.texts)
    chunk = [pool[i % len(pool)] for i in range(a.chunk_rows)]
    some = chunk[: a.score_rows]
    cores = available_cores()
    bundle = str(a.bundle.resolve())
    rows: list[list[Any]] = []
    results: dict = {"machine": machine(), "bundle": bundle, "command": " ".join(sys.argv),
                     "chunk_rows": a.chunk_rows, "actors": a.actors, "load_avg_1min": [os.getloadavg()[0]]}

    t = time.perf_counter()
    ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False)
    results["ray_init_s"] = time.perf_counter() - t
    try:
        t = time.perf_counter()
        threads = max(1, cores // a.actors)
        actor = ray.remote(num_cpus=min(float(threads), cores / a.actors))(_ChunkScorer)
        actors = [actor.remote(bundle, "cpu", threads) for _ in range(a.actors)]
        ray.get([x.score.remote(["warm"]) for x in actors])
        results["actors_ready_s"] = time.perf_counter() - t
        echo = ray.remote(num_cpus=0)(Echo).remote()
        ray.get(echo.count.remote(["warm"]))
        results["echo_round_trip_s"] = median_s(lambda: ray.get(echo.count.remote(chunk)), a.rounds)
        _, results["echo_cpu_s"] = cpu_during(lambda: [ray.get(echo.count.remote(chunk)) for _ in range(a.rounds)])
        results["put_s"] = median_s(lambda: ray.put(chunk), a.rounds)
        results["idle_s"], results["idle_cpu_s"] = cpu_during(lambda: time.sleep(10))
        half = len(some) // 2
        results["actor_scores_s"], results["scoring_cpu_s"] = cpu_during(
            lambda: ray.get([actors[0].score.remote(some[:half]), actors[-1].score.remote(some[half:])]))
        for x in [*actors, echo]:
            ray.kill(x)
    finally:
        ray.shutdown()
    clf = load(bundle, providers="cpu", threads=cores)  # the local path with one process
    clf.records(["warm"])
    results["in_process_scores_s"], results["in_process_cpu_s"] = cpu_during(lambda: clf.records(some))
    t = time.perf_counter()
    score, close = _scorer(bundle, a.actors, "cpu")
    score(["warm"]).result()
    close()
    results["process_pool_ready_s"] = time.perf_counter() - t

    results["load_avg_1min"].append(os.getloadavg()[0])  # a shared machine: what else ran
    # in CPU seconds, which a loaded machine does not inflate as it does wall time
    per_text = max(1e-9, results["in_process_cpu_s"]["this process"] / len(some))
    echo_cpu = sum(results["echo_cpu_s"].values()) / a.rounds
    rows = [
        ["start a local Ray instance (`ray.init`)", f"{results['ray_init_s']:.2f} s", "once a job"],
        [f"start {a.actors} actors (worker process, import, load the bundle)", f"{results['actors_ready_s']:.2f} s",
         "once a job"],
        [f"start {a.actors} local worker processes (`--workers {a.actors}`, spawn, load the bundle)",
         f"{results['process_pool_ready_s']:.2f} s", "once a job (the local path)"],
        [f"round trip of {a.chunk_rows:,} texts to an actor that only counts them",
         f"{results['echo_round_trip_s'] * 1000:.1f} ms", f"a chunk: {echo_cpu * 1000:.0f} ms of CPU in all, the CPU "
         f"of scoring {echo_cpu / per_text:.1f} texts (CPU s for {a.rounds}: {results['echo_cpu_s']})"],
        [f"`ray.put` of the {a.chunk_rows:,} texts", f"{results['put_s'] * 1000:.1f} ms", "a chunk"],
        [f"score {len(some):,} of them on the {a.actors} actors ({threads} thread{'s' * (threads > 1)} each)",
         f"{results['actor_scores_s']:.2f} s", f"CPU s meanwhile: {results['scoring_cpu_s']}"],
        ["10 s idle (actors started, no work)", f"{results['idle_s']:.1f} s", f"CPU s meanwhile: {results['idle_cpu_s']}"],
        [f"score them in this process ({cores} threads)",
         f"{results['in_process_scores_s']:.2f} s", f"CPU s meanwhile: {results['in_process_cpu_s']}"],
    ]
    print(_report.write(a.out, "ray_overhead", results, "Ray's costs beside scoring", ["what", "time", "paid"], rows))


if __name__ == "__main__":
    main()
