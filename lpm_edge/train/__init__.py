"""Fine-tuning (heavy: imports torch and transformers when called)."""

from .._verbs import callable_package
from .config import TrainConfig
from .device import DevicePlan, plan_device
from .model_dir import resolve_model_dir
from .pretrain import PretrainConfig, pretrain
from .trainer import read_training_info, train

__all__ = ["DevicePlan", "PretrainConfig", "TrainConfig", "plan_device", "pretrain", "read_training_info",
           "resolve_model_dir", "train"]

callable_package(__name__, train)  # lpm_edge.train(...) stays the function after `import lpm_edge.train`
