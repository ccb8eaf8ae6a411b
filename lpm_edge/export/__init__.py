"""Compression and ONNX export (heavy: imports torch, onnx and onnxruntime tools when called)."""

from .pipeline import export, preflight
from .recipe import Recipe, builtin_names, load_recipe

__all__ = ["Recipe", "builtin_names", "export", "load_recipe", "preflight"]
