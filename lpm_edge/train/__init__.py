"""Fine-tuning (heavy: imports torch and transformers when called)."""

from .config import TrainConfig
from .trainer import read_training_info, train

__all__ = ["TrainConfig", "read_training_info", "train"]
