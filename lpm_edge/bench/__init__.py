"""Accuracy, latency, throughput, cold start, memory and size of bundles against the full model.

`bench(...)` is the verb; `measure(...)` takes ready `Candidate`s (the peers in `peers.py`, or
your own) for side-by-side comparisons; `Report` is what both return.
"""

from .._verbs import callable_package
from .candidates import Candidate, ChildSpec
from .report import Report
from .run import BenchConfig, bench, measure

__all__ = ["BenchConfig", "Candidate", "ChildSpec", "Report", "bench", "measure"]

callable_package(__name__, bench)  # lpm_edge.bench(...) stays the function after `import lpm_edge.bench`
