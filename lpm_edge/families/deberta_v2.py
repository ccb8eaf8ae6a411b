"""DeBERTa-v2/v3: disentangled attention (content and relative position), query_proj/key_proj/value_proj."""

from .base import GELU, LAYERNORM, Family, Fusion

DEBERTA_V2 = Family(
    name="deberta-v2", model_types=("deberta-v2",), attn_implementation="eager",
    fusion=Fusion(
        expects=(LAYERNORM, GELU),
        missing="Attention: ORT has no fusion for DeBERTa's disentangled (content-to-position) attention; "
                "attention stays unfused (MatMul/Softmax)",
    ),
    layers_path="encoder.layer",
    q_k_v=("attention.self.query_proj", "attention.self.key_proj", "attention.self.value_proj"),
    attn_out="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
    heads_attr="attention.self.num_attention_heads",
    no_heads="transformers has no prune_heads for it and builds its attention output projection hidden_size × "
             "hidden_size, so a model with fewer heads would not load with from_pretrained",
)
