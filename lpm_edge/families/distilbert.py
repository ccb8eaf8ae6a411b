"""DistilBERT: `transformer.layer`, q_lin/k_lin/v_lin/out_lin, ffn.lin1/lin2, no token types."""

from .base import Family, Fusion

# sdpa: on the TorchScript export of DistilBERT's eager attention (masked_fill with the dtype's
# minimum) ORT fuses no Attention; the sdpa graph fuses every layer.
DISTILBERT = Family(
    name="distilbert", model_types=("distilbert",), attn_implementation="sdpa", fusion=Fusion(),
    layers_path="transformer.layer",
    q_k_v=("attention.q_lin", "attention.k_lin", "attention.v_lin"),
    attn_out="attention.out_lin",
    ffn_in="ffn.lin1",
    ffn_out="ffn.lin2",
    heads_attr="attention.n_heads",
    pruned_heads_at="attention",
    ffn_config="hidden_dim",
)
