"""Soak: one classifier shared by 16 threads over thousands of mixed calls.

Results must equal a sequential run's exactly, and resident memory must stay flat between the
first and the last thousand calls. The soak runs in a fresh process that holds only what an
application would (no torch, no pytest), so that memory figures are the runtime's own.

The same 16 threads run 4 passes over 4,000 distinct calls, like a server's thread pool. The
first 8,000 calls warm up: glibc gives each thread its own malloc arena, and each arena grows
until its thread has met the largest batches (the rare very long texts), while ONNX Runtime's
arena grows to the peak concurrent demand. Seen here: about +30 MiB over the first 6,000 calls,
then flat within ±3 MiB; with a leak of 2 KiB per call planted, +19 MiB between the windows.
Memory is compared after that warm-up.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

THREADS = 16
CALLS = 4000
PASSES = 4
WARMUP = 8000
WINDOW = 1000
MAX_GROWTH_MIB = 8.0  # a leak of 2 KiB per call would add about 7 MiB between the two windows
WORDS = ["good", "great", "awful", "dull", "the", "movie", "plot", "was", "and", "very", "caf\u00e9", "\u2603"]


def _text(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.08:
        return rng.choice(["", " ", "\n", "\u200b"])
    if kind < 0.13:  # very long: far past max_length, truncated
        return " ".join(rng.choices(WORDS, k=rng.randint(1_000, 4_000)))
    return " ".join(rng.choices(WORDS, k=rng.randint(1, 60)))


def _calls(n: int) -> list:
    """A single string (30%) or a list of 0-12 texts, of mixed lengths."""
    rng = random.Random(1234)
    return [_text(rng) if rng.random() < 0.3 else [_text(rng) for _ in range(rng.randint(0, 12))]
            for _ in range(n)]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _concurrently(clf, calls: list, expected: list, rss: dict[int, int]) -> dict:
    """Run `calls` on THREADS threads; compare with `expected`; sample RSS every 50 calls."""
    import numpy as np

    results: list = [None] * len(calls)
    errors: list[str] = []
    lock = threading.Lock()
    state = {"next": 0, "done": 0}

    def worker() -> None:
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= len(calls):
                return
            try:
                results[i] = clf.predict_proba(calls[i])
            except BaseException as exc:  # reported by the parent
                errors.append(f"call {i}: {type(exc).__name__}: {exc}")
            with lock:
                state["done"] += 1
                if state["done"] % 50 == 0:
                    rss[state["done"]] = _rss_bytes()

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mismatched = [i for i, (r, e) in enumerate(zip(results, expected)) if r is None or not np.array_equal(r, e)]
    return {"seconds": time.perf_counter() - start, "errors": errors[:5], "mismatched": mismatched[:5],
            "n_mismatched": len(mismatched)}


def soak(bundle: str) -> dict:
    import lpm_edge

    clf = lpm_edge.load(bundle, providers="cpu", threads=2, spin=False)
    calls = _calls(CALLS)
    start = time.perf_counter()
    expected = [clf.predict_proba(c) for c in calls]  # the sequential reference
    sequential = time.perf_counter() - start
    rss: dict[int, int] = {}
    concurrent = _concurrently(clf, calls * PASSES, expected * PASSES, rss)
    total = CALLS * PASSES

    def median_mib(lo: int, hi: int) -> float:
        return statistics.median(v for k, v in rss.items() if lo < k <= hi) / 2**20

    return {"calls": len(calls), "texts": sum(1 if isinstance(c, str) else len(c) for c in calls),
            "sequential_s": sequential, "concurrent": concurrent, "rss_start_mib": median_mib(0, WINDOW),
            "rss_first_mib": median_mib(WARMUP, WARMUP + WINDOW), "rss_last_mib": median_mib(total - WINDOW, total),
            "torch_loaded": "torch" in sys.modules}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads resident memory from /proc")
def test_sixteen_threads_share_one_classifier(tiny_bundle):
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.run([sys.executable, __file__, str(tiny_bundle)], capture_output=True, text=True,
                           timeout=900, env={**os.environ, "PYTHONPATH": str(repo)})
    assert child.returncode == 0, child.stderr[-3000:]
    r = json.loads(child.stdout.splitlines()[-1])
    c = r["concurrent"]
    assert not c["errors"], c["errors"]
    assert not c["n_mismatched"], f"{c['n_mismatched']} calls differ from the sequential run, e.g. {c['mismatched']}"
    growth = r["rss_last_mib"] - r["rss_first_mib"]
    print(f"soak: {r['calls']} distinct calls ({r['texts']} texts): sequential {r['sequential_s']:.1f} s; "
          f"{THREADS} threads x {PASSES} passes {c['seconds']:.1f} s; RSS median over calls 1-{WINDOW} "
          f"{r['rss_start_mib']:.1f} MiB, after the {WARMUP}-call warm-up {r['rss_first_mib']:.1f} MiB, "
          f"over the last {WINDOW} {r['rss_last_mib']:.1f} MiB ({growth:+.2f} MiB)")
    assert not r["torch_loaded"]
    assert growth < MAX_GROWTH_MIB, f"resident memory grew {growth:.1f} MiB between the first and last {WINDOW} calls"


if __name__ == "__main__":
    print(json.dumps(soak(sys.argv[1])))
