"""Cold start and peak memory, each candidate in a fresh Python process.

The child runs the candidate's `ChildSpec` the way a user's program would (default threads and
session options), timing import, load and the first prediction, then predicts a workload of
texts and reports its own peak resident memory (VmHWM: see the harness). Runs are interleaved across
candidates like everything else.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import BenchError
from .stats import median

if TYPE_CHECKING:
    from .candidates import Candidate, ChildSpec
    from .progress import Progress

log = logging.getLogger("lpm_edge.bench")

# The clock starts after the interpreter is up and the job file is read, before the candidate's first
# import; the parent also records the wall time of the whole process (interpreter start and exit included).
_HARNESS = '''\
import json as _json, resource as _resource, sys as _sys, time as _time
with open(_sys.argv[1], encoding="utf-8") as _f:
    _job = _json.load(_f)
_t0 = _time.perf_counter()
{imports}
_t1 = _time.perf_counter()
{load}
_t2 = _time.perf_counter()
def _predict(texts):
{predict}
_predict([_job["first"]])
_t3 = _time.perf_counter()
for _s in range(0, len(_job["workload"]), _job["batch"]):
    _predict(_job["workload"][_s:_s + _job["batch"]])
_t4 = _time.perf_counter()
# Peak RSS of this program. On Linux ru_maxrss survives execve (it keeps the high-water mark of
# the parent image this process was forked from), so read VmHWM, which starts afresh at exec.
_rss, _how = None, "VmHWM"
try:
    with open("/proc/self/status") as _f:
        _rss = next(int(_l.split()[1]) * 1024 for _l in _f if _l.startswith("VmHWM:"))
except (OSError, StopIteration):
    _how = "ru_maxrss"  # KiB on Linux, bytes on macOS
    _rss = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss * (1 if _sys.platform == "darwin" else 1024)
print("LPM_EDGE_CHILD " + _json.dumps({{"import_s": _t1 - _t0, "load_s": _t2 - _t1, "first_prediction_s": _t3 - _t2,
      "workload_s": _t4 - _t3, "peak_rss_bytes": _rss, "rss_source": _how}}))
'''


def child_source(spec: "ChildSpec") -> str:
    """The full program a fresh process runs for `spec`."""
    return _HARNESS.format(imports=spec.imports, load=spec.load, predict=textwrap.indent(spec.predict, "    "))


def run_child(spec: "ChildSpec", job: Path, timeout: float = 600.0) -> dict[str, float]:
    """Run one fresh process; return its stage timings, peak RSS and process wall time."""
    env = dict(os.environ)
    # The child must import the same lpm_edge as this process, installed or not.
    here = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    t0 = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-c", child_source(spec), str(job)], capture_output=True,
                                text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise BenchError(f"a fresh process did not finish in {timeout:.0f} s; check that the candidate loads "
                         "outside the benchmark, or pass --no-subprocess") from None
    wall = time.perf_counter() - t0
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("LPM_EDGE_CHILD ")), None)
    if result.returncode != 0 or line is None:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise BenchError(f"a fresh process failed to load or predict (exit {result.returncode}): "
                         f"{' | '.join(tail)[:500]}; run it alone to see why, or pass --no-subprocess")
    stats = json.loads(line.split(" ", 1)[1])
    stats["process_wall_s"] = wall
    stats["cold_start_s"] = stats["import_s"] + stats["load_s"] + stats["first_prediction_s"]
    return stats


def fresh_processes(
    candidates: Sequence["Candidate"], first: str, workload: Sequence[str], runs: int,
    batch: int = 32, progress: "Progress | None" = None,
) -> list[dict[str, Any] | None]:
    """Median cold start and peak RSS of `runs` fresh processes per candidate (None without a ChildSpec)."""
    results: list[list[dict[str, float]]] = [[] for _ in candidates]
    with tempfile.TemporaryDirectory(prefix="lpm-edge-bench-") as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"first": first, "workload": list(workload), "batch": batch}), encoding="utf-8")
        for _ in range(runs):
            for k, c in enumerate(candidates):
                if c.child is not None:
                    results[k].append(run_child(c.child, job))
                if progress:
                    progress.advance()
    out: list[dict[str, Any] | None] = []
    for rs in results:
        if not rs:
            out.append(None)
            continue
        keys = ("cold_start_s", "import_s", "load_s", "first_prediction_s", "process_wall_s", "workload_s")
        out.append({**{k: median([r[k] for r in rs]) for k in keys},
                    "peak_rss_bytes": int(median([r["peak_rss_bytes"] for r in rs])),
                    "rss_source": rs[0]["rss_source"], "runs": len(rs), "workload_texts": len(workload),
                    "workload_batch": batch})
    return out
