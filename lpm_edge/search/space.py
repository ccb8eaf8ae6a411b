"""The search space: compression candidates, ordered cheap and mild first."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Iterable

from ..export.recipe import CheckConfig, DistillConfig, PruneConfig, QuantizeConfig, Recipe


@dataclass(frozen=True)
class Candidate:
    """One point of the space: how much structure to remove and how to quantize."""

    layers: int | None = None  # layers kept; None = all
    heads: float = 0.0  # fraction of heads removed per layer
    ffn: float = 0.0  # fraction of FFN neurons removed
    distill_steps: int = 0
    quantize: str = "dynamic"  # dynamic | static
    per_channel: bool = True

    @property
    def pruned(self) -> bool:
        return bool(self.layers or self.heads or self.ffn)

    def key(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def label(self) -> str:
        parts = []
        if self.layers:
            parts.append(f"L{self.layers}")
        if self.heads:
            parts.append(f"h-{self.heads:.0%}")
        if self.ffn:
            parts.append(f"ffn-{self.ffn:.0%}")
        if self.distill_steps:
            parts.append(f"kd{self.distill_steps}")
        parts.append(f"{self.quantize}{'-pc' if self.per_channel else ''}")
        return " ".join(parts)

    def student_key(self) -> tuple[Any, ...]:
        """Candidates sharing this key share one pruned, distilled student."""
        return (self.layers, self.heads, self.ffn, self.distill_steps)

    def at_least_as_aggressive_as(self, other: "Candidate", full_layers: int) -> bool:
        """True when this candidate removes at least what `other` removes, on every axis."""
        return (
            (self.layers or full_layers) <= (other.layers or full_layers)
            and self.heads >= other.heads
            and self.ffn >= other.ffn
            and self.distill_steps <= other.distill_steps
            and (self.quantize, self.per_channel) == (other.quantize, other.per_channel)
        )

    def recipe(self, target: str = "cpu") -> Recipe:
        return Recipe(
            name=f"search-{self.key()}",
            description=f"found by lpm-edge search: {self.label()}",
            target=target,
            vocab_prune=self.pruned,  # as cpu-pruned-int8: the corpus vocabulary only
            prune=PruneConfig(heads=self.heads, ffn=self.ffn, layers=self.layers),
            distill=DistillConfig(steps=self.distill_steps, learning_rate=1e-4),  # as cpu-pruned-int8
            quantize=QuantizeConfig(mode=self.quantize, per_channel=self.per_channel),
            check=CheckConfig(max_accuracy_drop=None),
        )


def default_space(
    full_layers: int,
    *,
    vnni: bool,
    distill_steps: int = 300,
    layers: Iterable[int | None] | None = None,
    heads: Iterable[float] = (0.0, 1 / 3, 0.5),
    ffn: Iterable[float] = (0.0, 0.5, 0.75),
) -> list[Candidate]:
    """Candidates mild first. Static int8 is tried only on CPUs with VNNI: without it, dynamic
    int8 was measured faster (static QDQ S8S8 slowest)."""
    layer_options = list(layers) if layers is not None else [None, max(1, full_layers * 2 // 3), max(1, full_layers // 2)]
    quant = [("dynamic", True), ("dynamic", False)] + ([("static", True)] if vnni else [])
    out = []
    for n_layers, h, f in itertools.product(layer_options, heads, ffn):
        pruned = bool(n_layers and n_layers < full_layers) or h or f
        for mode, pc in quant:
            out.append(Candidate(
                layers=n_layers if n_layers and n_layers < full_layers else None, heads=h, ffn=f,
                distill_steps=distill_steps if pruned else 0, quantize=mode, per_channel=pc,
            ))
    return sorted(set(out), key=lambda c: ((c.layers or full_layers) * -1, c.heads + c.ffn, c.quantize, not c.per_channel))
