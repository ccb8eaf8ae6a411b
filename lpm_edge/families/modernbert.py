"""ModernBERT: fused Wqkv, gated FFN (Wi = input and gate halves), alternating global/local attention."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ExportError
from .base import GELU, LAYERNORM, Family, Fusion, _replace

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModernBert(Family):
    def qkv_weights(self, layer: Any) -> list["torch.Tensor"]:
        return list(layer.attn.Wqkv.weight.chunk(3, dim=0))  # each (H*d, hidden)

    def layer_period(self, config: Any) -> int:
        # A layer's index decides global or sliding-window attention (global every n-th), its rotary
        # base, and (layer 0 only) no attention LayerNorm; from_pretrained reassigns these by position.
        # Removing whole periods of n layers after the first keeps every kept layer's kind in place.
        return int(config.global_attn_every_n_layers)

    def keep_layers(self, model: Any, keep: Sequence[int]) -> None:
        n = self.layer_period(model.config)
        if not keep or keep[0] != 0 or any(old % n != new % n for new, old in enumerate(keep)):
            raise ExportError(
                f"ModernBERT layers {list(keep)} would change kind on reload (global attention every {n} layers, "
                f"by position); remove whole blocks of {n} consecutive layers after the first"
            )
        super().keep_layers(model, keep)

    def prune_ffn(self, layer: Any, index: "torch.Tensor") -> None:
        import torch
        from transformers.pytorch_utils import prune_linear_layer

        width = layer.mlp.Wo.in_features
        both = torch.cat([index, index + width])  # Wi's rows: the input half, then the gate half
        _replace(layer, "mlp.Wi", prune_linear_layer(layer.mlp.Wi, both, dim=0))
        _replace(layer, "mlp.Wo", prune_linear_layer(layer.mlp.Wo, index, dim=1))


MODERNBERT = ModernBert(
    name="modernbert", model_types=("modernbert",), attn_implementation="sdpa",
    fusion=Fusion(
        expects=(LAYERNORM, GELU),
        missing="Attention: ModernBERT's rotary position embeddings and sliding-window masks are not a pattern "
                "ORT's attention fusion matches; attention stays unfused",
    ),
    layers_path="layers",
    q_k_v=("attn.Wqkv",),
    attn_out="attn.Wo",
    ffn_in="mlp.Wi",
    ffn_out="mlp.Wo",
    heads_attr="attn.num_heads",
    no_heads="its head size is hidden_size / num_attention_heads with no config key to keep it, so a model with "
             "fewer heads would not load with from_pretrained",
)
