"""BERT's module layout, shared by ELECTRA and by the RoBERTa line (RoBERTa, XLM-RoBERTa, CamemBERT)."""

from .base import ATTENTION, GELU, LAYERNORM, Family, Fusion

_LAYOUT = dict(
    layers_path="encoder.layer",
    q_k_v=("attention.self.query", "attention.self.key", "attention.self.value"),
    attn_out="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
    heads_attr="attention.self.num_attention_heads",
    pruned_heads_at="attention",
)

# Eager attention: ORT's attention fusion was written against this graph (sdpa's also fuses with
# transformers 4.57, but eager is the one that always has).
BERT = Family(name="bert", model_types=("bert", "electra"), attn_implementation="eager", fusion=Fusion(), **_LAYOUT)

ROBERTA = Family(
    name="roberta", model_types=("roberta", "xlm-roberta", "camembert"), attn_implementation="eager",
    fusion=Fusion(
        expects=(ATTENTION, LAYERNORM, GELU),
        missing="EmbedLayerNormalization: position ids are computed from input_ids (a cumulative sum over "
                "non-padding tokens), a pattern ORT's embedding fusion does not match; the embeddings stay unfused",
    ),
    position_offset=True, **_LAYOUT,
)
