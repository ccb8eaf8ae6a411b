"""Fine-tuning (heavy: imports torch and transformers when called).

`lpm_edge.train(TrainConfig(...))` calls `train` whether or not this package was imported before:
importing a subpackage binds it as an attribute of its parent, which would hide the function of the
same name, so the package itself is made callable.
"""

import sys
import types
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .device import DevicePlan, plan_device
from .model_dir import resolve_model_dir
from .trainer import read_training_info, train

__all__ = ["DevicePlan", "TrainConfig", "plan_device", "read_training_info", "resolve_model_dir", "train"]


class _CallablePackage(types.ModuleType):
    def __call__(self, config: TrainConfig, **kwargs: Any) -> Path:
        return train(config, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
