"""Encoder family adapters: one module per family, one lookup, one capability check.

`adapter_for(config)` returns the `Family` of a model config; `check_capabilities(config, recipe)`
runs before training or export spends any time, refuses a family no stage knows and says, one line
each, what a recipe will skip for this family.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .base import ATTENTION, EMBED, GELU, LAYERNORM, Family, Fusion
from .bert import BERT, ROBERTA
from .deberta_v2 import DEBERTA_V2
from .distilbert import DISTILBERT
from .modernbert import MODERNBERT
from .mpnet import MPNET

if TYPE_CHECKING:
    from ..export.recipe import Recipe

__all__ = ["ATTENTION", "EMBED", "FAMILIES", "GELU", "LAYERNORM", "Family", "Fusion", "adapter_for",
           "check_capabilities"]
log = logging.getLogger("lpm_edge.families")

FAMILIES: tuple[Family, ...] = (BERT, ROBERTA, DISTILBERT, MPNET, DEBERTA_V2, MODERNBERT)
_BY_TYPE = {t: f for f in FAMILIES for t in f.model_types}


def model_type_of(config: Any) -> str | None:
    if isinstance(config, str):
        return config
    if isinstance(config, dict):
        return config.get("model_type")
    return getattr(config, "model_type", None)


def adapter_for(config: Any) -> Family:
    """The family adapter for a config (a transformers config, its dict, or a model_type string)."""
    model_type = model_type_of(config)
    family = _BY_TYPE.get(model_type or "")
    if family is None:
        raise ConfigError(
            f"model_type {model_type!r}: lpm-edge has no family adapter for it, so export (pruning, fusion, "
            f"int8) cannot handle it; use one of {', '.join(sorted(_BY_TYPE))}"
        )
    return family


def check_capabilities(config: Any, recipe: "Recipe | None" = None) -> list[str]:
    """Refuse an unknown family (ConfigError); return, and log, what `recipe` will skip for this one."""
    family = adapter_for(config)
    if recipe is None:
        return []
    notes = []
    p = recipe.prune
    if p.heads and family.no_heads:
        notes.append(f"{family.name}: prune.heads={p.heads:g} is skipped, heads stay: {family.no_heads}; "
                     "FFN and layers are pruned as asked")
    if p.layers is not None and family.no_layers:
        notes.append(f"{family.name}: prune.layers={p.layers} is skipped, layers stay: {family.no_layers}")
    if recipe.optimize.fusion and family.fusion.missing:
        notes.append(f"{family.name}: fusion: {family.fusion.missing}")
    for note in notes:
        log.warning("%s", note)
    return notes
