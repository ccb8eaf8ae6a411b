"""The search space: compression candidates, ordered cheap and mild first."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any, Iterable

from ..export.recipe import (CheckConfig, DistillConfig, OptimizeConfig, PruneConfig, QuantizeConfig, Recipe,
                             load_recipe)
from ..export.rejected import fp32_token_ranges  # the export's own fallback ranges, in its order


@dataclass(frozen=True)
class Candidate:
    """One point of the space: how much structure to remove and how to quantize."""

    layers: int | None = None  # layers kept; None = all
    heads: float = 0.0  # fraction of heads removed per layer
    ffn: float = 0.0  # fraction of FFN neurons removed
    distill_steps: int = 0
    quantize: str = "dynamic"  # dynamic | static | none (fused fp32) (cpu); fp16 | static (cuda)
    per_channel: bool = True
    # Rescue variants, tried only when int8 broke the budget that the fp32 student met:
    exclude_budget: float | None = None  # return sensitive layers to fp32 until this budget holds
    fp32_tokens: tuple[int, int] | None = None  # padded lengths that run an fp32 copy of the graph

    @property
    def pruned(self) -> bool:
        return bool(self.layers or self.heads or self.ffn)

    @property
    def distils(self) -> bool:
        """Building it distils a pruned student (shared by the candidates of its student_key)."""
        return self.pruned and bool(self.distill_steps)

    @property
    def rescue(self) -> bool:
        return self.exclude_budget is not None or self.fp32_tokens is not None

    def key(self) -> str:
        fields = dataclasses.asdict(self)
        for name in ("exclude_budget", "fp32_tokens"):  # absent when unset: older caches keep their keys
            if fields[name] is None:
                del fields[name]
        blob = json.dumps(fields, sort_keys=True)
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
        if self.quantize == "none":
            parts.append("fp32")
        else:
            parts.append(f"{self.quantize}{'-pc' if self.per_channel and self.quantize != 'fp16' else ''}")
        if self.exclude_budget is not None:
            parts.append("auto-excl")
        if self.fp32_tokens is not None:
            parts.append(f"fp32@{self.fp32_tokens[0]}-{self.fp32_tokens[1]}tok")
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
            and not self.rescue
        )

    def same_architecture_as(self, other: "Candidate") -> bool:
        """Same layers, heads and FFN width, whatever the distillation budget and precision."""
        return (self.layers, self.heads, self.ffn) == (other.layers, other.heads, other.ffn)

    def recipe(self, target: str = "cpu") -> Recipe:
        return Recipe(
            name=f"search-{self.key()}",
            description=f"found by lpm-edge search: {self.label()}",
            target=target,
            vocab_prune=self.pruned,  # as cpu-pruned-int8: the corpus vocabulary only
            prune=PruneConfig(heads=self.heads, ffn=self.ffn, layers=self.layers),
            distill=DistillConfig(steps=self.distill_steps, learning_rate=1e-4),  # as cpu-pruned-int8
            # cuda static int8 is QDQ for TensorRT, which fuses the graph itself (as the cuda-int8 recipe)
            optimize=OptimizeConfig(fusion=not (target == "cuda" and self.quantize == "static")),
            # Pruned dynamic int8 as cpu-pruned-int8: 7-bit weights, so the accuracy measured here holds
            # on CPUs whose u8s8 kernels saturate (AVX2 without VNNI); the unpruned as cpu-int8.
            quantize=QuantizeConfig(mode=self.quantize, per_channel=self.per_channel,
                                    reduce_range=self.pruned and target == "cpu" and self.quantize == "dynamic",
                                    auto_exclude=self.exclude_budget is not None, fp32_tokens=self.fp32_tokens),
            check=CheckConfig(max_accuracy_drop=self.exclude_budget),
        )


DEFAULT_RECIPE = "cpu-pruned-int8"  # the default distillation budget is this recipe's


def recipe_distill_steps() -> int:
    """The distillation steps of the cpu-pruned-int8 recipe, whose students were measured to keep the
    accuracy with them (1,600 on the demo checkpoint; 300 were too few)."""
    from ..export.recipe import load_recipe

    return load_recipe(DEFAULT_RECIPE).distill.steps


def default_space(
    full_layers: int,
    *,
    vnni: bool,
    distill_steps: int | Iterable[int] | None = None,
    layers: Iterable[int | None] | None = None,
    heads: Iterable[float] | None = None,
    ffn: Iterable[float] | None = None,
    target: str = "cpu",
    fp32: bool | None = None,
) -> list[Candidate]:
    """Candidates cheap first: every architecture at the shortest distillation budget, mild to
    aggressive, before any longer budget.

    CPU: dynamic int8 per channel and per tensor, and static int8 only on CPUs with VNNI (without
    it, dynamic int8 was measured faster, static QDQ S8S8 slowest). `fp32` adds the fused fp32 graph
    (quantize mode "none") for every architecture (`search` passes `not runtime.int8_pays()`);
    by default only on CPUs without VNNI, where int8
    adds little to what fusion gives (4 layers / 6 heads ran 5.9x PyTorch fp32 in fused fp32 and
    5.5x in int8 on an AVX2 CPU), while with VNNI int8 is where most of the speed comes from (dynamic
    int8 gave 4.2x PyTorch's throughput there, 1.35x on AVX2), so the extra export would not win.
    CUDA: fp16, and static int8 QDQ.
    distill_steps: None = the cpu-pruned-int8 recipe's (recipe_distill_steps()).
    layers, heads, ffn: with none of them given, the architectures are a ladder of three (`ladder`:
    the full model, the cpu-pruned-int8 recipe's student, and a smaller one), so that a search
    with no options ends in tens of minutes, not hours; given any, every combination of the given
    values (the others at their grid defaults: all, 2/3 and 1/2 of the layers; 0, 1/3 and 1/2 of
    the heads; 0, 1/2 and 3/4 of the FFN) is a candidate.
    A longer distillation budget is only worth measuring for an architecture that a shorter one did
    not bring within the accuracy budget; `run_search` skips it otherwise.
    """
    if layers is None and heads is None and ffn is None:
        shapes = ladder(full_layers)
    else:
        layer_options = list(layers) if layers is not None else [None, max(1, full_layers * 2 // 3),
                                                                 max(1, full_layers // 2)]
        shapes = list(itertools.product(layer_options, heads if heads is not None else (0.0, 1 / 3, 0.5),
                                        ffn if ffn is not None else (0.0, 0.5, 0.75)))
    if distill_steps is None:
        distill_steps = recipe_distill_steps()
    steps = sorted({distill_steps} if isinstance(distill_steps, int) else set(distill_steps))
    if target == "cuda":
        quant = [("fp16", False), ("static", True)]
    else:
        quant = [("dynamic", True), ("dynamic", False)] + ([("static", True)] if vnni else [])
        if fp32 if fp32 is not None else not vnni:
            quant.append(("none", False))
    out = []
    for n_layers, h, f in shapes:
        pruned = bool(n_layers and n_layers < full_layers) or h or f
        for k in steps if pruned else [0]:
            for mode, pc in quant:
                out.append(Candidate(
                    layers=n_layers if n_layers and n_layers < full_layers else None, heads=h, ffn=f,
                    distill_steps=k, quantize=mode, per_channel=pc,
                ))
    return sorted(set(out), key=lambda c: (c.distill_steps, (c.layers or full_layers) * -1, c.heads + c.ffn,
                                           c.quantize, not c.per_channel))


def ladder(full_layers: int) -> list[tuple[int | None, float, float]]:
    """The default architectures, mild to aggressive, as (layers kept, heads removed, FFN removed): the
    full model; the cpu-pruned-int8 recipe's student (2/3 of the layers, a third of the heads, half
    the FFN; it kept the demo checkpoint within 0.15 points); and half the layers with half the heads
    and FFN (MiniLM-L6: 3 layers, 6 heads: about 7x PyTorch at batch 1 on an AVX2 CPU, undistilled)."""
    p = load_recipe("cpu-pruned-int8").prune
    shapes = [(None, 0.0, 0.0), (max(1, full_layers * 2 // 3), p.heads, p.ffn), (max(1, full_layers // 2), 0.5, 0.5)]
    return list(dict.fromkeys(shapes))  # a 1- or 2-layer model: fewer distinct shapes


def rescue_variants(cand: Candidate, budget: float, max_length: int, split_tokens: int) -> list[Candidate]:
    """int8 variants of a candidate whose quantization broke the budget: the most sensitive layers
    back to fp32 (searched until the budget holds), or an fp32 graph for short or for long batches."""
    if cand.quantize not in ("dynamic", "static") or cand.rescue:
        return []
    return [dataclasses.replace(cand, exclude_budget=budget),
            *(dataclasses.replace(cand, fp32_tokens=t) for t in fp32_token_ranges(max_length, split_tokens))]
