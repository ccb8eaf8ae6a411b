"""MPNet: BERT-like layers with a relative position bias shared by all layers."""

from .base import GELU, LAYERNORM, Family, Fusion

MPNET = Family(
    name="mpnet", model_types=("mpnet",), attn_implementation="eager",
    fusion=Fusion(
        expects=(LAYERNORM, GELU),
        missing="Attention: MPNet adds a relative position bias to the attention scores, a pattern ORT's "
                "attention fusion does not match; attention stays unfused (MatMul/Softmax)",
    ),
    layers_path="encoder.layer",
    q_k_v=("attention.attn.q", "attention.attn.k", "attention.attn.v"),
    attn_out="attention.attn.o",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
    heads_attr="attention.attn.num_attention_heads",
    no_heads="its relative position bias (encoder.relative_attention_bias, one column per head) is shared by "
             "all layers and sized by num_attention_heads, so a layer cannot lose heads on its own",
    position_offset=True,
)
