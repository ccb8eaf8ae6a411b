"""Compression and ONNX export (heavy: imports torch, onnx and onnxruntime tools when called)."""

from .._verbs import callable_package
from .pipeline import export, preflight
from .recipe import Recipe, builtin_names, load_recipe

__all__ = ["Recipe", "builtin_names", "export", "load_recipe", "preflight"]

callable_package(__name__, export)  # lpm_edge.export(...) stays the function after `import lpm_edge.export`
