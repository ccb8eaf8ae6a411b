"""The runtime: numpy, onnxruntime and tokenizers only."""

from .classifier import Classifier, Prediction, load

__all__ = ["Classifier", "Prediction", "load"]
