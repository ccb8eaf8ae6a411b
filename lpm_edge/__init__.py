"""lpm-edge: fine-tune, compress and ship transformer text classifiers as ONNX bundles.

`import lpm_edge` is light: the runtime loads onnxruntime on first use, and the build side
(train, export, bench) imports torch only when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AccuracyBudgetError,
    BenchError,
    BundleError,
    ConfigError,
    DataError,
    ExportError,
    InferenceError,
    LpmEdgeError,
    MissingDependencyError,
    ParityError,
    ProviderError,
)

__version__ = "0.1.0"

_LAZY = {
    "load": ("lpm_edge.runtime.classifier", "load"),
    "Classifier": ("lpm_edge.runtime.classifier", "Classifier"),
    "Prediction": ("lpm_edge.runtime.classifier", "Prediction"),
    "train": ("lpm_edge.train", "train"),
    "TrainConfig": ("lpm_edge.train", "TrainConfig"),
    "export": ("lpm_edge.export", "export"),
    "Recipe": ("lpm_edge.export.recipe", "Recipe"),
    "bench": ("lpm_edge.bench", "bench"),
    "load_dataset": ("lpm_edge.data", "load_dataset"),
    "score_file": ("lpm_edge.scoring", "score_file"),
}

if TYPE_CHECKING:
    from .bench import bench
    from .data import load_dataset
    from .export import export
    from .export.recipe import Recipe
    from .runtime.classifier import Classifier, Prediction, load
    from .scoring import score_file
    from .train import TrainConfig, train


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'lpm_edge' has no attribute {name!r}")


__all__ = [
    "AccuracyBudgetError", "BenchError", "BundleError", "Classifier", "ConfigError", "DataError", "ExportError", "InferenceError",
    "LpmEdgeError", "MissingDependencyError", "ParityError", "Prediction", "ProviderError", "Recipe",
    "TrainConfig", "bench", "export", "load", "load_dataset", "score_file", "train", "__version__",
]
