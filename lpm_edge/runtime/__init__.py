"""The runtime: numpy, onnxruntime and tokenizers only."""

from .caveats import int8_pays
from .classifier import Classifier, Prediction, load

__all__ = ["Classifier", "Prediction", "int8_pays", "load"]
