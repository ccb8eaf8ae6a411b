"""ModernBERT: fused Wqkv, gated FFN (Wi = input and gate halves), alternating global/local attention."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import GELU, LAYERNORM, Family, Fusion, _replace

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ModernBert(Family):
    def qkv_weights(self, layer: Any) -> list["torch.Tensor"]:
        return list(layer.attn.Wqkv.weight.chunk(3, dim=0))  # each (H*d, hidden)

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
    no_layers="a layer's index decides global or sliding-window attention, its rotary base and whether it has an "
              "attention LayerNorm; from_pretrained reassigns these by position, so removing layers changes the "
              "ones kept",
)
