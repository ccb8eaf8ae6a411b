"""Accuracy and latency of bundles against the full model, as Markdown and JSON reports."""

from .._verbs import callable_package
from .report import Report
from .run import bench

__all__ = ["Report", "bench"]

callable_package(__name__, bench)  # lpm_edge.bench(...) stays the function after `import lpm_edge.bench`
