"""Accuracy and latency of bundles against the full model, as Markdown and JSON reports."""

from .report import Report
from .run import bench

__all__ = ["Report", "bench"]
