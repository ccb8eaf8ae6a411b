"""What differs between encoder families, in one value per family.

A `Family` says where pruning finds layers, heads and FFN neurons (module paths inside one
encoder layer), which attention implementation to export with, and how ONNX Runtime's transformer
optimizer fuses the graph (`Fusion`). Families whose layout differs from the paths (fused QKV,
gated FFN) override the few methods that read or cut those modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import torch

# Fused operator kinds counted after fusion (see lpm_edge.export.onnx_graph.FUSED_KINDS).
ATTENTION, LAYERNORM, GELU, EMBED = "attention", "layernorm", "gelu", "embed_layernorm"


@dataclass(frozen=True)
class Fusion:
    """ONNX Runtime transformer-optimizer settings for a family, and which fusions it should find.

    model_type: `onnxruntime.transformers.optimizer.MODEL_TYPES` key. Every encoder here is fused
    as "bert": ORT has no other encoder type; what differs is which of its patterns match.
    expects: fused kinds (ATTENTION, LAYERNORM, GELU, EMBED) a correct export of this family has.
    missing: why a fusion is not expected (logged by the export and stored in the manifest).
    """

    expects: tuple[str, ...] = (ATTENTION, LAYERNORM, GELU, EMBED)
    model_type: str = "bert"
    missing: str = ""

    @property
    def attention(self) -> bool:
        return ATTENTION in self.expects

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": self.model_type, "expects": list(self.expects), "unfused": self.missing}


@dataclass(frozen=True)
class Family:
    """One encoder family's layout. Paths are dotted module paths: `layers` from the model's
    base_model, the others from one encoder layer."""

    name: str
    model_types: tuple[str, ...]
    attn_implementation: str  # the one ORT's attention fusion matches on the TorchScript export
    fusion: Fusion
    layers_path: str
    q_k_v: tuple[str, ...]  # query, key, value Linear layers (H*d, hidden)
    attn_out: str  # the Linear that takes the heads' concatenated outputs (B, T, H*d)
    ffn_in: str  # (I, hidden)
    ffn_out: str  # (hidden, I): its input is the FFN's activations, one column per neuron
    heads_attr: str  # attribute path, from a layer, of its current head count
    pruned_heads_at: str = ""  # module holding `pruned_heads` for model.prune_heads; "" = heads stay
    no_heads: str = ""  # why heads cannot be pruned ("" = they can)
    no_layers: str = ""  # why layers cannot be removed ("" = they can)
    ffn_config: str = "intermediate_size"  # config key of the FFN width
    position_offset: bool = False  # position ids start after the padding index (RoBERTa's scheme)

    # -- structure ---------------------------------------------------------------------------
    def layers(self, model: Any) -> Sequence[Any]:
        return model.base_model.get_submodule(self.layers_path)

    def replace_layers(self, model: Any, layers: Sequence[Any]) -> None:
        """Put `layers` in place of the encoder's layers (the config is not changed)."""
        import torch

        parent, _, name = self.layers_path.rpartition(".")
        setattr(model.base_model.get_submodule(parent) if parent else model.base_model, name,
                torch.nn.ModuleList(layers))

    def keep_layers(self, model: Any, keep: Sequence[int]) -> None:
        """Keep the layers at indices `keep`, in order; the config follows."""
        old = list(self.layers(model))
        kept = [old[i] for i in keep]
        self.replace_layers(model, kept)
        model.config.num_hidden_layers = len(kept)
        for new, layer in enumerate(kept):  # caches and masks are keyed by the layer's index
            for module in layer.modules():
                if hasattr(module, "layer_idx"):
                    module.layer_idx = new

    def layer_period(self, config: Any) -> int:
        """Layers are removed in whole blocks of this many consecutive layers (block 0 always stays)
        when a layer's position decides its kind; 1 = any layer alone."""
        return 1

    def heads(self, layer: Any) -> int:
        owner, _, attr = self.heads_attr.rpartition(".")
        return int(getattr(layer.get_submodule(owner) if owner else layer, attr))

    def head_size(self, layer: Any) -> int:
        return layer.get_submodule(self.attn_out).in_features // self.heads(layer)

    def ffn_width(self, layer: Any) -> int:
        return layer.get_submodule(self.ffn_out).in_features

    def qkv_weights(self, layer: Any) -> list["torch.Tensor"]:
        """Query, key and value weights, each (H*d, hidden)."""
        return [layer.get_submodule(p).weight for p in self.q_k_v]

    def attention_shape(self, model: Any) -> tuple[int, int]:
        """(heads per layer, heads × head size) as the exported graph has them, pruned or not."""
        layer = self.layers(model)[0]
        return self.heads(layer), layer.get_submodule(self.attn_out).in_features

    def max_length(self, config: Any) -> int:
        """The longest input the position embeddings allow."""
        positions = int(getattr(config, "max_position_embeddings", 512))
        if self.position_offset:  # ids run from padding_idx + 1
            positions -= int(config.pad_token_id or 0) + 1
        return positions

    # -- pruning -------------------------------------------------------------------------------
    def prune_heads(self, model: Any, drop: dict[int, Sequence[int]]) -> None:
        """Remove heads (current indices per layer) with transformers' prune_heads, which records
        them in config.pruned_heads so that from_pretrained rebuilds the same shapes."""
        layers = self.layers(model)
        original = {}
        for index, current in drop.items():
            gone = layers[index].get_submodule(self.pruned_heads_at).pruned_heads
            alive = [h for h in range(model.config.num_attention_heads) if h not in gone]
            original[index] = [alive[h] for h in current]
        if original:
            model.prune_heads(original)

    def prune_ffn(self, layer: Any, index: "torch.Tensor") -> None:
        """Keep the FFN neurons at `index` in one layer."""
        from transformers.pytorch_utils import prune_linear_layer

        _replace(layer, self.ffn_in, prune_linear_layer(layer.get_submodule(self.ffn_in), index, dim=0))
        _replace(layer, self.ffn_out, prune_linear_layer(layer.get_submodule(self.ffn_out), index, dim=1))

    def capabilities(self) -> dict[str, Any]:
        """What each stage can do for this family (the README table and `check_capabilities`)."""
        return {
            "family": self.name, "model_types": list(self.model_types),
            "attn_implementation": self.attn_implementation, "fusion": self.fusion.to_dict(),
            "prune_heads": not self.no_heads, "prune_ffn": True, "prune_layers": not self.no_layers,
            "no_heads": self.no_heads, "no_layers": self.no_layers,
        }


def _replace(root: Any, path: str, module: Any) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)
