"""How busy the machine was with *other* work while a benchmark ran.

Interleaving spreads noise evenly, but it cannot make contention fair: when another process holds
a core, torch's OpenMP pool (which waits for its slowest thread at every parallel region) slows
far more than ONNX Runtime. So the report records the share of CPU time other processes used
during the run, from /proc/stat minus this process's own time and its children's.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from typing import Any

BUSY_WARNING = 0.10  # share of all cores used by others above which the report warns


@dataclass(frozen=True)
class CpuSnapshot:
    """Wall time, busy CPU seconds of the whole machine, and CPU seconds of this process tree."""

    wall: float
    machine_busy: float | None  # None where /proc/stat is unavailable
    own: float
    loadavg: tuple[float, float, float] | None


def snapshot() -> CpuSnapshot:
    """The counters now."""
    busy = None
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    own = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return CpuSnapshot(time.monotonic(), busy, own, load)


def others_share(start: CpuSnapshot, end: CpuSnapshot, cpus: int) -> dict[str, Any]:
    """Share of all CPUs' time that other processes used between two snapshots (0..1), and load averages."""
    wall = end.wall - start.wall
    share = None
    if start.machine_busy is not None and end.machine_busy is not None and wall > 0:
        others = (end.machine_busy - start.machine_busy) - (end.own - start.own)
        share = min(1.0, max(0.0, others / (wall * cpus)))
    return {"other_processes_cpu_share": share, "cpus": cpus, "seconds": wall,
            "loadavg_start": list(start.loadavg) if start.loadavg else None,
            "loadavg_end": list(end.loadavg) if end.loadavg else None,
            "busy": share is not None and share > BUSY_WARNING}
