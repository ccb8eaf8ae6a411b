"""Structured pruning of encoders: whole layers, attention heads, FFN neurons.

Removing structure (not zeroing it) is what makes ONNX Runtime faster: a zeroed weight costs
as much as any other. Heads and FFN width are cut by the same amount in every layer, so the
graph keeps one `num_heads` (the fusion needs it) and the config stays loadable by
`from_pretrained` (`intermediate_size`, `num_hidden_layers`, and `pruned_heads`, which
transformers 4.x re-applies on load). Where the modules live is the family adapter's business
(lpm_edge.families); a family whose heads cannot be removed keeps them, and says why.

Importance (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"): the absolute
gradient of the task loss with respect to a mask of ones on each head's attention output and
on each FFN neuron, accumulated over batches of training texts. Weight magnitude is the
fallback when gradients are unwanted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..errors import ConfigError, ExportError
from ..families import Family, adapter_for

if TYPE_CHECKING:
    import torch

log = logging.getLogger("lpm_edge.export")


@dataclass(frozen=True)
class PrunePlan:
    """What to remove. Indices refer to the model's current layers, heads and neurons."""

    keep_layers: tuple[int, ...]  # layer indices kept, ascending
    drop_heads: dict[int, tuple[int, ...]]  # current layer index -> current head indices removed
    keep_neurons: tuple[tuple[int, ...], ...]  # per kept layer: FFN neuron indices kept, ascending


def family(model: Any) -> Family:
    """The model's family adapter; an unknown family is an ExportError naming the fix."""
    try:
        return adapter_for(model.config)
    except ConfigError as exc:  # here it is the export that cannot go on
        raise ExportError(
            f"structured pruning: {exc}. Remove [prune] from the recipe (distillation alone works)") from None


def encoder_layers(model: Any) -> Sequence[Any]:
    """The encoder's layers, where the model's family keeps them."""
    layers = family(model).layers(model)
    if not len(layers):
        raise ExportError(f"{model.config.model_type!r} model has no encoder layers to prune")
    return layers


def heads_per_layer(model: Any) -> int:
    """Attention heads in each layer; refuses a model whose layers differ (fusion needs one count)."""
    fam = family(model)
    counts = {fam.heads(l) for l in encoder_layers(model)}
    if len(counts) != 1:
        raise ExportError(
            f"the model's layers have different head counts {sorted(counts)}; lpm-edge prunes and fuses "
            "only models with the same number of heads in every layer"
        )
    return counts.pop()


def shape(model: Any) -> dict[str, int]:
    """Layers, heads per layer, FFN width and parameter count."""
    layers = encoder_layers(model)
    return {
        "layers": len(layers),
        "heads": heads_per_layer(model),
        "ffn": family(model).ffn_width(layers[0]),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }


def gradient_importance(
    model: Any, batches: Iterable[tuple[dict[str, "torch.Tensor"], "torch.Tensor"]], loss_fn: Any = None,
) -> tuple["torch.Tensor", "torch.Tensor"]:
    """|d loss / d mask| summed over batches: heads (L, H) and FFN neurons (L, I).

    The masks multiply what the attention output projection and the FFN output projection take
    in: each head's slice of the concatenated heads (B, T, H*d) and each FFN activation (B, T, I),
    the same in every family. Dropout is off (eval mode) so the scores describe the function that
    will be exported. Only the masks receive gradients (torch.autograd.grad), so the model's .grad
    fields stay empty. loss_fn(outputs, labels): the task's loss (default: cross-entropy, per example or token).
    """
    import torch
    import torch.nn.functional as F

    fam = family(model)
    layers = encoder_layers(model)
    n_layers, n_heads = len(layers), heads_per_layer(model)
    width = fam.ffn_width(layers[0])
    device = next(model.parameters()).device
    head_mask = torch.ones(n_layers, n_heads, device=device, requires_grad=True)  # (L, H)
    ffn_mask = torch.ones(n_layers, width, device=device, requires_grad=True)  # (L, I)
    head_score = torch.zeros(n_layers, n_heads, device=device)
    ffn_score = torch.zeros(n_layers, width, device=device)

    def head_masker(index: int) -> Any:
        def hook(module: Any, inputs: tuple) -> tuple:
            x = inputs[0]  # (B, T, H*d)
            masked = (x.unflatten(-1, (n_heads, -1)) * head_mask[index][:, None]).flatten(-2)
            return (masked, *inputs[1:])
        return hook

    def ffn_masker(index: int) -> Any:
        # FFN activations (B, T, I) * mask (I,): a zero removes neuron i
        return lambda module, inputs: (inputs[0] * ffn_mask[index], *inputs[1:])

    hooks = [layer.get_submodule(fam.attn_out).register_forward_pre_hook(head_masker(i))
             for i, layer in enumerate(layers)]
    hooks += [layer.get_submodule(fam.ffn_out).register_forward_pre_hook(ffn_masker(i))
              for i, layer in enumerate(layers)]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        for inputs, labels in batches:
            logits = model(**inputs).logits  # (B, labels); per token (B, T, labels), labels (B, T)
            loss = loss_fn(logits, labels) if loss_fn else F.cross_entropy(logits.flatten(0, -2), labels.flatten(),
                                                                            ignore_index=-100)
            g_heads, g_ffn = torch.autograd.grad(loss, [head_mask, ffn_mask])
            head_score += g_heads.abs()
            ffn_score += g_ffn.abs()
            seen += 1
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    if not seen:
        raise ExportError("gradient importance needs training texts and got none; check the dataset")
    return head_score.cpu(), ffn_score.cpu()


def magnitude_importance(model: Any) -> tuple["torch.Tensor", "torch.Tensor"]:
    """Weight norms: heads (L, H) from their Q/K/V rows and output columns; neurons (L, I)."""
    import torch

    fam = family(model)
    n_heads = heads_per_layer(model)
    heads, neurons = [], []
    with torch.no_grad():
        for layer in encoder_layers(model):
            size = fam.head_size(layer)
            per_head = torch.zeros(n_heads)
            for w in fam.qkv_weights(layer):  # (H*d, hidden)
                per_head += w.detach().float().cpu().reshape(n_heads, size, -1).pow(2).sum((1, 2))
            out = layer.get_submodule(fam.attn_out).weight.detach().float().cpu()  # (hidden, H*d)
            per_head += out.reshape(out.shape[0], n_heads, size).pow(2).sum((0, 2))
            heads.append(per_head.sqrt())
            w_out = layer.get_submodule(fam.ffn_out).weight.detach().float().cpu()  # (hidden, I)
            width = w_out.shape[1]
            w_in = layer.get_submodule(fam.ffn_in).weight.detach().float().cpu()  # (I or 2I gated, hidden)
            rows = w_in.norm(dim=1).reshape(-1, width).prod(0)  # (I,): a gated FFN's two rows multiply
            neurons.append(rows * w_out.norm(dim=0))
    return torch.stack(heads), torch.stack(neurons)


def layer_importance(
    model: Any, batches: Sequence[tuple[dict[str, "torch.Tensor"], "torch.Tensor"]], divergence: Any = None,
) -> list[float]:
    """Per layer: mean KL from the full model's outputs to those with only that layer skipped
    (divergence(student, teacher): the task's summed divergence instead, averaged per text)."""
    import torch.nn.functional as F
    import torch

    fam = family(model)
    layers = list(fam.layers(model))
    was_training = model.training
    model.eval()
    scores = []
    try:
        with torch.no_grad():
            full = [model(**x).logits for x, _ in batches]  # each (B, labels)

            def gap(out: Any, ref: Any) -> float:  # per text, averaged over the batch
                if divergence is not None:
                    return float(divergence(out, ref)) / max(1, len(out))
                return float(F.kl_div(F.log_softmax(out, -1), F.log_softmax(ref, -1), log_target=True,
                                      reduction="batchmean"))

            for skip in range(len(layers)):
                fam.replace_layers(model, [l for i, l in enumerate(layers) if i != skip])
                kl = sum(gap(model(**x).logits, f) for (x, _), f in zip(batches, full))
                scores.append(kl / max(1, len(batches)))
    finally:
        fam.replace_layers(model, layers)
        model.train(was_training)
    return scores


def count_to_remove(total: int, fraction: float) -> int:
    """round(total × fraction), leaving at least one."""
    return min(total - 1, int(round(total * fraction)))


def evenly_spaced(total: int, keep: int) -> tuple[int, ...]:
    """`keep` of `total` indices spread evenly, always keeping the first and the last."""
    if keep >= total:
        return tuple(range(total))
    if keep == 1:
        return (total - 1,)
    return tuple(sorted({round(i * (total - 1) / (keep - 1)) for i in range(keep)}))


def plan(
    head_scores: "torch.Tensor", ffn_scores: "torch.Tensor", heads: float, ffn: float,
    keep_layers: Sequence[int],
) -> PrunePlan:
    """Remove the least important heads and neurons, the same count in every kept layer.

    head_scores (L, H) and ffn_scores (L, I) are indexed by the model's current layers.
    """
    import torch

    n_heads, width = head_scores.shape[1], ffn_scores.shape[1]
    drop_h, keep_n = count_to_remove(n_heads, heads), width - count_to_remove(width, ffn)
    drop_heads: dict[int, tuple[int, ...]] = {}
    neurons = []
    for new, old in enumerate(keep_layers):
        if drop_h:
            order = torch.argsort(head_scores[old], stable=True)  # least important first
            drop_heads[new] = tuple(sorted(int(h) for h in order[:drop_h]))
        order = torch.argsort(ffn_scores[old], descending=True, stable=True)
        neurons.append(tuple(sorted(int(i) for i in order[:keep_n])))
    return PrunePlan(tuple(keep_layers), drop_heads, tuple(neurons))


def apply(model: Any, p: PrunePlan) -> None:
    """Prune `model` in place by `p`: layers first, then heads, then FFN neurons, each where the
    model's family keeps them. Heads of a family that cannot lose them stay (the caller skips them)."""
    import torch

    fam = family(model)
    old_pruned = {int(k): v for k, v in (getattr(model.config, "pruned_heads", None) or {}).items()}
    fam.keep_layers(model, p.keep_layers)
    # config.pruned_heads is keyed by layer index: follow the layers that moved.
    model.config.pruned_heads = {new: old_pruned[old] for new, old in enumerate(p.keep_layers) if old in old_pruned}
    kept = fam.layers(model)
    if p.drop_heads:
        if fam.no_heads:
            raise ExportError(f"{fam.name} models keep their heads: {fam.no_heads}; set prune.heads = 0")
        fam.prune_heads(model, p.drop_heads)

    for layer, keep in zip(kept, p.keep_neurons):
        index = torch.tensor(keep, dtype=torch.long, device=layer.get_submodule(fam.ffn_out).weight.device)
        fam.prune_ffn(layer, index)
    if p.keep_neurons:
        setattr(model.config, fam.ffn_config, len(p.keep_neurons[0]))
    heads_per_layer(model)  # the uniform-heads invariant still holds
