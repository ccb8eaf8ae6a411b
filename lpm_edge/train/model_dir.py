"""Checks on a local model directory before transformers reads it, so that mistakes get our errors."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigError

WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TOKENIZER = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model")
HOW = "pass a directory written by save_pretrained() (model and tokenizer); lpm-edge never downloads models"


def resolve_model_dir(model: Path | str | None) -> Path:
    """The model directory to fine-tune: `model`, or the built-in MiniLM-L6 when None.

    Raises ConfigError, naming the fix, when `model` is not a Hugging Face directory that
    transformers can load without running code shipped with the model (trust_remote_code stays off).
    """
    if model is None:
        from ..assets import builtin_model_dir

        return builtin_model_dir()
    path = Path(model)
    if not path.is_dir():
        what = "is a file, not a directory" if path.exists() else "does not exist"
        raise ConfigError(f"model {path} {what}; {HOW}, or omit --model for the built-in MiniLM-L6")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"model {path} is not a Hugging Face model directory (no config.json); {HOW}")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_file}: not valid JSON ({exc}); re-save the model with save_pretrained()") from None
    _check_architecture(config_file, config)
    from ..families import check_capabilities

    check_capabilities(config)  # a family that export cannot handle is refused before training, not after
    if not any((path / name).is_file() for name in WEIGHTS):
        raise ConfigError(f"model {path} has no weights ({' or '.join(WEIGHTS[::2])}); {HOW}")
    require_safetensors(path)
    if not any((path / name).is_file() for name in TOKENIZER):
        raise ConfigError(
            f"model {path} has no tokenizer files ({', '.join(TOKENIZER)}); save it beside the model with "
            "tokenizer.save_pretrained(...)"
        )
    return path


def require_safetensors(path: Path) -> None:
    """Refuse a model directory without safetensors weights: loading a pickle can run code."""
    if not any(path.glob("*.safetensors")):
        raise ConfigError(
            f"{path} has no *.safetensors weights; lpm-edge never loads pickled weights (pytorch_model.bin "
            "can run code when loaded). Convert once, from a source you trust: "
            "AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)"
        )


def _check_architecture(config_file: Path, config: object) -> None:
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES as KNOWN

    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type in KNOWN:
        return
    if isinstance(config, dict) and "auto_map" in config:
        raise ConfigError(
            f"{config_file}: model_type {model_type!r} needs Python code shipped with the model (auto_map); "
            "lpm-edge never runs such code (trust_remote_code stays off). Use a model whose architecture "
            "transformers has built in: bert, distilbert, roberta, electra, ..."
        )
    raise ConfigError(
        f"{config_file}: model_type {model_type!r} has no sequence-classification model in transformers; "
        "use an encoder lpm-edge has a family adapter for (bert, distilbert, roberta, xlm-roberta, electra, mpnet, "
        "deberta-v2, modernbert)"
    )
