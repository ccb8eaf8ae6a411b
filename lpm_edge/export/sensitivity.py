"""Per-layer int8 sensitivity, and excluding the worst layers until the accuracy budget holds.

Each group of quantizable nodes (the embeddings, each encoder layer, the pooler and classifier
head) is quantized alone and the logit error it causes is measured. When the fully quantized
graph loses more accuracy than the budget allows, whole groups go back to fp32, worst first,
until it does not (or none is left, and the budget check refuses the bundle).
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

log = logging.getLogger("lpm_edge.export")
LAYER = re.compile(r"(?:^|/)layers?\.(\d+)/")  # encoder.layer.N (BERT, DistilBERT), layers.N (ModernBERT)

# quantize(dst, nodes_to_exclude) writes an int8 graph; drop_of(graph) -> accuracy points lost.
Quantize = Callable[[Path, Sequence[str]], None]
DropOf = Callable[[Path], float]


def node_groups(graph: Path, op_types: Sequence[str]) -> dict[str, list[str]]:
    """Names of the nodes of `op_types`, grouped as 'embeddings', 'layer.N' and 'head'.

    Torch export names nodes by module path (".../layer.3/intermediate/dense/MatMul"); fused
    nodes lose it ("Attention_3"), so a node without one takes the layer of what consumes it.
    """
    import onnx

    model = onnx.load(str(graph), load_external_data=False)
    consumers: dict[str, list[Any]] = defaultdict(list)
    for node in model.graph.node:
        for name in node.input:
            consumers[name].append(node)

    def layer_of(node: Any, depth: int = 0) -> str | None:
        found = LAYER.search(node.name)
        if found:
            return f"layer.{int(found[1])}"
        if depth < 4:
            for out in node.output:
                for c in consumers[out]:
                    if (g := layer_of(c, depth + 1)) is not None:
                        return g
        return None

    groups: dict[str, list[str]] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type not in op_types:
            continue
        if "embeddings" in node.name or node.op_type == "EmbedLayerNormalization":
            group = "embeddings"
        elif "pooler" in node.name or "classifier" in node.name:
            group = "head"
        else:
            group = layer_of(node) or "head"
        groups[group].append(node.name)

    def order(name: str) -> tuple[int, int]:
        return (0, 0) if name == "embeddings" else (2, 0) if name == "head" else (1, int(name.split(".")[1]))

    return {g: groups[g] for g in sorted(groups, key=order)}


def logit_error(graph: Path, feeds: Sequence[dict], reference: np.ndarray, output: str = "logits") -> float:
    """Mean absolute logit difference of `graph`'s `output` against `reference` ((n, labels); per-token
    outputs (n, T, labels) of batches padded to different lengths are padded with zeros to its width,
    as the reference was stacked)."""
    from .onnx_graph import onnx_logits

    outs = [np.pad(o, [(0, 0)] + [(0, r - s) for r, s in zip(reference.shape[1:], o.shape[1:])])
            for o in onnx_logits(graph, feeds, output)]
    return float(np.abs(np.concatenate(outs) - reference).mean())


def auto_exclude(
    groups: dict[str, list[str]], work: Path, quantize: Quantize, drop_of: DropOf, budget: float,
    feeds: Sequence[dict], reference: np.ndarray, output: str = "logits",
) -> tuple[Path, dict[str, Any]]:
    """Quantize everything, then return groups to fp32, most sensitive first, until the drop ≤ budget.

    Returns the chosen graph and a report: each group's logit error when quantized alone, the
    drop of each attempt, and the node names left in fp32 (copy them into quantize.exclude_nodes).
    """
    final = work / "int8-auto.onnx"
    sensitivity = {}
    everything = [n for nodes in groups.values() for n in nodes]
    for i, (name, nodes) in enumerate(groups.items()):
        alone = work / f"int8-only-{i}.onnx"
        keep = set(nodes)
        quantize(alone, [n for n in everything if n not in keep])
        sensitivity[name] = logit_error(alone, feeds, reference, output)
        alone.unlink()
    log.info("int8 sensitivity (mean abs logit error, quantized alone): %s",
             ", ".join(f"{k} {v:.4f}" for k, v in sensitivity.items()))
    quantize(final, [])
    attempts = [{"excluded": [], "accuracy_drop_points": drop_of(final)}]
    excluded: list[str] = []
    for name in sorted(groups, key=lambda g: sensitivity[g], reverse=True):
        if attempts[-1]["accuracy_drop_points"] <= budget:
            break
        excluded.append(name)
        quantize(final, [n for g in excluded for n in groups[g]])
        attempts.append({"excluded": list(excluded), "accuracy_drop_points": drop_of(final)})
        log.info("int8 with %s in fp32: accuracy drop %.2f points (budget %g)", ", ".join(excluded),
                 attempts[-1]["accuracy_drop_points"], budget)
    report = {
        "budget_points": budget,
        "sensitivity": sensitivity,
        "attempts": attempts,
        "excluded_groups": excluded,
        "excluded_nodes": [n for g in excluded for n in groups[g]],
        "groups": {k: len(v) for k, v in groups.items()},
    }
    return final, report
