"""Recipes: one TOML file per deployment target, read into frozen, versioned dataclasses.

Unknown keys are errors that name the closest valid key, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from ..bundle import is_token_range
from ..errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib is 3.11+; tomli is the same parser, published separately
    import tomli as tomllib

RECIPE_VERSION = 1


@dataclass(frozen=True)
class PruneConfig:
    heads: float = 0.0  # fraction of attention heads to remove in each layer
    ffn: float = 0.0  # fraction of FFN intermediate neurons to remove (uniform across layers)
    layers: int | None = None  # keep this many encoder layers; None = all
    layer_selection: str = "even"  # even (evenly spaced, first and last kept) | importance
    importance: str = "gradient"  # gradient (Michel et al. 2019) | magnitude
    importance_batches: int = 16  # batches of training texts used to score heads and neurons


@dataclass(frozen=True)
class DistillConfig:
    steps: int = 0  # 0 = no distillation
    temperature: float = 2.0
    alpha: float = 0.5  # weight of the soft (teacher) loss; 1 - alpha on the hard labels
    batch_size: int = 32
    learning_rate: float = 5e-5
    # Early stopping on the validation split: every `eval_every` steps (0 = never) the student's
    # accuracy on `eval_samples` validation texts is measured; the best student is kept, and
    # distillation stops after `patience` checks without improvement.
    eval_every: int = 0
    patience: int = 3
    eval_samples: int = 512
    # Losses beyond the logits (lpm_edge.export.losses); 0 = off.
    hidden_weight: float = 0.0  # MSE of each student layer's output against its teacher layer's
    attention_relation_weight: float = 0.0  # MiniLM-v2 query/key/value relations of the last layer
    similarity_weight: float = 0.0  # KL of the in-batch neighbours of the outputs (embeddings)
    # More transfer texts, labelled by the teacher only: none | edit (span deletion and word swaps)
    augment: str = "none"
    augment_copies: int = 1  # edited copies of each training text
    # On a GPU: auto (bf16 where native, else fp16) | fp32 | bf16 | fp16; the CPU always runs fp32.
    precision: str = "auto"
    grad_accum: int = 1  # batches per optimizer step (the effective batch is batch_size × grad_accum)


# Fields added after the first DistillConfig: left out of the student cache key while at their
# defaults, so that students distilled before they existed are still found.
DISTILL_ADDED = ("eval_every", "patience", "eval_samples", "hidden_weight", "attention_relation_weight",
                 "similarity_weight", "augment", "augment_copies", "precision", "grad_accum")
AUGMENTS = ("none", "edit")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class OptimizeConfig:
    fusion: bool = True  # ONNX Runtime transformer optimizer (attention, LayerNorm, GELU fusion)
    require_fusion: bool = True  # fail the export when fusion was asked for but fused nothing


@dataclass(frozen=True)
class QuantizeConfig:
    mode: str = "none"  # none | dynamic | static | fp16
    per_channel: bool = True
    calibration_samples: int = 256  # static only: bounded sample of training texts
    exclude_nodes: tuple[str, ...] = ()
    exclude_op_types: tuple[str, ...] = ()
    auto_exclude: bool = False  # int8 only: return the most sensitive layers to fp32 until the budget holds
    # int8 only: [low, high] padded lengths (inclusive) whose batches run an fp32 copy of the graph
    # shipped beside the int8 one; None = int8 for every length
    fp32_tokens: tuple[int, int] | None = None
    # int8 only: 7-bit weights, so that ONNX Runtime's u8s8 kernels on x86 CPUs without VNNI
    # (AVX2) cannot saturate their 16-bit pair sums; costs a little precision everywhere
    reduce_range: bool = False


@dataclass(frozen=True)
class CheckConfig:
    parity_tolerance: float = 1e-3  # max abs logit diff of the fp32 graph against PyTorch
    max_accuracy_drop: float | None = None  # points; None = record only
    eval_samples: int | None = None  # None = the whole evaluation split


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str = ""
    target: str = "cpu"  # cpu | cuda
    opset: int = 17
    max_length: int = 128
    vocab_prune: bool = False  # keep only tokens seen in the training corpus
    prune: PruneConfig = field(default_factory=PruneConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    version: int = RECIPE_VERSION

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Recipe":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "recipe") -> "Recipe":
        return _build(cls, data, where, "")


def _build(kind: type, data: Mapping[str, Any], where: str, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: [{prefix.rstrip('.')}] must be a table")
    fields = {f.name: f for f in dataclasses.fields(kind)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; valid keys: {', '.join(fields)}"
            raise ConfigError(f"{where}: unknown key '{prefix}{key}'{hint}")
        f = fields[key]
        factory = f.default_factory
        if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
            kwargs[key] = _build(factory, value, where, f"{prefix}{key}.")  # type: ignore[arg-type]
        else:
            kwargs[key] = _coerce(value, f, where, prefix)
    if "name" in fields and "name" not in kwargs:
        raise ConfigError(f"{where}: missing key 'name'")
    try:
        obj = kind(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    _validate(obj, where)
    return obj


def _coerce(value: Any, f: dataclasses.Field, where: str, prefix: str) -> Any:
    default = f.default
    if f.name == "fp32_tokens":  # a TOML array; its shape and range are checked in _validate
        return tuple(value) if isinstance(value, list) else value
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: '{prefix}{f.name}' must be a list of strings")
        return tuple(value)
    if isinstance(default, bool) and not isinstance(value, bool):
        raise ConfigError(f"{where}: '{prefix}{f.name}' must be true or false, got {value!r}")
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if default is not None and default is not dataclasses.MISSING and not isinstance(value, type(default)):
        raise ConfigError(
            f"{where}: '{prefix}{f.name}' must be {type(default).__name__}, got {type(value).__name__} {value!r}"
        )
    return value


def validate(recipe: Recipe) -> None:
    """Check a Recipe built in Python the way a TOML recipe is checked on reading."""
    for obj in (recipe, *(getattr(recipe, f.name) for f in dataclasses.fields(recipe))):
        if dataclasses.is_dataclass(obj):
            _validate(obj, f"recipe {recipe.name}")


def _validate(obj: Any, where: str) -> None:
    def bad(msg: str) -> ConfigError:
        return ConfigError(f"{where}: {msg}")

    if isinstance(obj, Recipe):
        if obj.target not in ("cpu", "cuda"):
            raise bad(f"target {obj.target!r} must be 'cpu' or 'cuda'")
        if obj.version != RECIPE_VERSION:
            raise bad(f"recipe version {obj.version} is not supported (this lpm-edge reads {RECIPE_VERSION})")
        if not 11 <= obj.opset <= 21:
            raise bad(f"opset {obj.opset} is out of the supported range 11..21")
    elif isinstance(obj, PruneConfig):
        for name in ("heads", "ffn"):
            if not 0.0 <= getattr(obj, name) < 1.0:
                raise bad(f"prune.{name}={getattr(obj, name)} must be in [0, 1)")
        if obj.layers is not None and (type(obj.layers) is not int or obj.layers < 1):
            raise bad(f"prune.layers={obj.layers!r} must be an integer of at least 1 (or left out: all layers)")
        if obj.importance not in ("gradient", "magnitude"):
            raise bad(f"prune.importance={obj.importance!r} must be 'gradient' or 'magnitude'")
        if obj.layer_selection not in ("even", "importance"):
            raise bad(f"prune.layer_selection={obj.layer_selection!r} must be 'even' or 'importance'")
        if obj.importance_batches < 1:
            raise bad(f"prune.importance_batches={obj.importance_batches} must be at least 1")
    elif isinstance(obj, QuantizeConfig):
        if obj.mode not in ("none", "dynamic", "static", "fp16"):
            raise bad(f"quantize.mode={obj.mode!r} must be one of none, dynamic, static, fp16")
        t = obj.fp32_tokens
        if t is not None and not is_token_range(t):
            shown = list(t) if isinstance(t, (tuple, list)) else t
            raise bad(f"quantize.fp32_tokens={shown!r} must be [low, high] token counts with 0 <= low <= high, "
                      "e.g. [0, 32]")
        if obj.fp32_tokens is not None and obj.mode not in ("dynamic", "static"):
            raise bad(f"quantize.fp32_tokens falls back from int8 to fp32; it needs mode 'dynamic' or 'static', "
                      f"not {obj.mode!r}")
        if obj.reduce_range and obj.mode not in ("dynamic", "static"):
            raise bad(f"quantize.reduce_range narrows int8 weights to 7 bits; it needs mode 'dynamic' or 'static', "
                      f"not {obj.mode!r}")
        if obj.calibration_samples < 1:
            raise bad(f"quantize.calibration_samples={obj.calibration_samples} must be at least 1")
    elif isinstance(obj, CheckConfig):
        drop = obj.max_accuracy_drop
        if drop is not None and (isinstance(drop, bool) or not isinstance(drop, (int, float))):
            raise bad(f"check.max_accuracy_drop={drop!r} must be a number of accuracy points")
        if obj.eval_samples is not None and (type(obj.eval_samples) is not int or obj.eval_samples < 1):
            raise bad(f"check.eval_samples={obj.eval_samples!r} must be an integer of at least 1")
    elif isinstance(obj, DistillConfig):
        if obj.steps < 0 or obj.temperature <= 0 or not 0 <= obj.alpha <= 1:
            raise bad("distill: steps >= 0, temperature > 0 and 0 <= alpha <= 1 are required")
        if obj.batch_size < 1 or obj.learning_rate <= 0:
            raise bad("distill: batch_size >= 1 and learning_rate > 0 are required")
        if obj.precision not in PRECISIONS:
            raise bad(f"distill.precision={obj.precision!r} must be one of {', '.join(PRECISIONS)}")
        for name in ("eval_every", "patience", "eval_samples", "augment_copies", "grad_accum"):
            value = getattr(obj, name)
            if type(value) is not int or value < (0 if name == "eval_every" else 1):
                least = 0 if name == "eval_every" else 1
                raise bad(f"distill.{name}={value!r} must be an integer of at least {least}")
        for name in ("hidden_weight", "attention_relation_weight", "similarity_weight"):
            if getattr(obj, name) < 0:
                raise bad(f"distill.{name}={getattr(obj, name)} must be >= 0 (0 turns the loss off)")
        if obj.augment not in AUGMENTS:
            why = (" ('mlm' needs a masked-LM head, which a classification checkpoint does not have)"
                   if obj.augment == "mlm" else "")
            raise bad(f"distill.augment={obj.augment!r} must be one of {', '.join(AUGMENTS)}{why}")


def builtin_names() -> list[str]:
    folder = resources.files("lpm_edge.export") / "recipes"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_recipe(name_or_path: str | Path) -> Recipe:
    """A built-in recipe by name (e.g. 'cpu-int8') or a TOML file by path."""
    text: str
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"recipe file {path} does not exist")
        text, where = path.read_text(encoding="utf-8"), str(path)
    else:
        names = builtin_names()
        if str(name_or_path) not in names:
            close = difflib.get_close_matches(str(name_or_path), names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ConfigError(f"unknown recipe {str(name_or_path)!r}; {hint}built-in recipes: {', '.join(names)}")
        res = resources.files("lpm_edge.export") / "recipes" / f"{name_or_path}.toml"
        text, where = res.read_text(encoding="utf-8"), f"recipe {name_or_path}"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    return Recipe.from_dict(data, where)
