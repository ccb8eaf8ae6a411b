"""Distillation losses beyond the logits: hidden states, self-attention relations, and the
similarities of a batch's outputs.

- Hidden states (TinyBERT, Jiao et al. 2020): the mean squared error between each student layer's
  output and the output of the teacher layer it came from (the embeddings with the embeddings),
  over real tokens only. Pruning keeps the hidden width, so no projection is learned.
- Self-attention relations (MiniLM v2, Wang et al. 2021): for the last layer, the scaled dot
  products among queries (Q·Qᵀ), keys (K·Kᵀ) and values (V·Vᵀ), each split into the same number
  of relation heads for both models, softmaxed over the keys; the loss is the KL from the
  teacher's relations to the student's. Relation heads need not be attention heads, so a student
  with fewer heads (pruned) learns from a teacher with more.

- Output similarities (relational distillation, Park et al. 2019; the in-batch neighbours of an
  embedding student): the cosine similarities among a batch's output vectors, scaled by 20 (as
  sentence-transformers' ranking loss) and softmaxed over the other texts of the batch; the loss is
  the KL from the teacher's neighbour distribution to the student's. It teaches the student which
  texts are near which, the thing retrieval reads, where a per-text cosine only pulls each vector
  towards its own target. Outputs must be one vector per text (embeddings, class scores).

Queries, keys and values are read with forward hooks on the Linear modules the family adapter
names (lpm_edge.families: `q_k_v`, or one fused QKV module as in ModernBERT).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ConfigError

if TYPE_CHECKING:
    import torch

    from .recipe import DistillConfig


def layer_mapping(student_layers: int, teacher_layers: int, kept: Sequence[int] | None = None) -> list[int]:
    """Teacher layer index for each student layer: the layer pruning kept (`kept`), else spread evenly
    with the last on the last (student i -> teacher round((i + 1) * Lt / Ls) - 1)."""
    if kept is not None:
        if len(kept) != student_layers or max(kept, default=-1) >= teacher_layers:
            raise ConfigError(f"layer mapping {list(kept)} does not fit a {student_layers}-layer student of a "
                              f"{teacher_layers}-layer teacher")
        return list(kept)
    return [round((i + 1) * teacher_layers / student_layers) - 1 for i in range(student_layers)]


def hidden_loss(s_hidden: Sequence["torch.Tensor"], t_hidden: Sequence["torch.Tensor"], mapping: Sequence[int],
                mask: "torch.Tensor") -> "torch.Tensor":
    """Mean over mapped layers of the per-token MSE on real tokens.

    s_hidden, t_hidden: output_hidden_states tuples, embeddings first, each (B, T, H).
    mapping: teacher layer of each student layer. mask: (B, T), 1 on real tokens.
    """
    m = mask.to(s_hidden[0].dtype)  # (B, T)
    pairs = [(0, 0)] + [(i + 1, t + 1) for i, t in enumerate(mapping)]
    total = s_hidden[0].new_zeros(())
    for si, ti in pairs:
        per_token = (s_hidden[si].float() - t_hidden[ti].float()).pow(2).mean(-1)  # (B, T)
        total = total + (per_token * m).sum() / m.sum().clamp(min=1)
    return total / len(pairs)


def relation_heads(student_width: int, teacher_width: int, student_heads: int) -> int:
    """Relation heads: the student's head count when it divides both widths, else the largest count
    below it that does (the widths are the Q/K/V projection widths, heads × head size)."""
    common = math.gcd(student_width, teacher_width)
    for r in range(min(student_heads, common), 0, -1):
        if common % r == 0:
            return r
    return 1


def relation_log_probs(x: "torch.Tensor", mask: "torch.Tensor", heads: int) -> "torch.Tensor":
    """Log-softmax over keys of the scaled self dot products of x (B, T, A) in `heads` relation
    heads: (B, R, T, T); padded keys get the dtype's lowest value (probability 0, no NaN)."""
    import torch

    b, t, a = x.shape
    x = x.float().view(b, t, heads, a // heads).transpose(1, 2)  # (B, R, T, a/R)
    scores = x @ x.transpose(-1, -2) / math.sqrt(a // heads)  # (B, R, T, T)
    scores = scores.masked_fill(~mask.bool()[:, None, None, :], torch.finfo(scores.dtype).min)
    return scores.log_softmax(-1)


def relation_loss(s_qkv: Sequence["torch.Tensor"], t_qkv: Sequence["torch.Tensor"], mask: "torch.Tensor",
                  heads: int) -> "torch.Tensor":
    """Sum over Q, K, V of KL(teacher relations ‖ student relations), mean over relation heads and
    real query tokens. s_qkv, t_qkv: three (B, T, A) tensors each; mask (B, T)."""
    m = mask.float()  # (B, T)
    total = m.new_zeros(())
    for s, t in zip(s_qkv, t_qkv):
        ls, lt = relation_log_probs(s, mask, heads), relation_log_probs(t, mask, heads)  # (B, R, T, T)
        kl = (lt.exp() * (lt - ls)).sum(-1)  # (B, R, T): one KL per query token
        total = total + (kl * m[:, None, :]).sum() / (m.sum().clamp(min=1) * heads)
    return total


SIMILARITY_SCALE = 20.0


def similarity_loss(s_out: "torch.Tensor", t_out: "torch.Tensor") -> "torch.Tensor":
    """Mean over the texts of a batch of KL(teacher's ‖ student's) softmax over the *other* texts
    of scaled cosine similarity. s_out, t_out: (B, D). A batch of one text has no neighbours: 0."""
    import torch
    import torch.nn.functional as F

    if s_out.dim() != 2:
        raise ConfigError(f"distill.similarity_weight compares one output vector per text; this model's "
                          f"outputs are {s_out.dim()}-dimensional (token classification?). Set "
                          "distill.similarity_weight = 0")
    b = s_out.shape[0]
    if b < 2:
        return s_out.new_zeros((), dtype=torch.float32)

    def log_probs(x: "torch.Tensor") -> "torch.Tensor":
        v = F.normalize(x.float(), dim=-1)
        sim = (v @ v.T * SIMILARITY_SCALE).masked_fill(torch.eye(b, dtype=torch.bool, device=v.device), -1e4)
        return sim.log_softmax(-1)

    ls, lt = log_probs(s_out), log_probs(t_out)
    return (lt.exp() * (lt - ls)).sum(-1).mean()


class _QKV:
    """Forward hooks that keep the last query, key and value projections (B, T, A) of one layer."""

    def __init__(self, model: Any, layer_index: int, what: str) -> None:
        from ..families import adapter_for

        try:
            family = adapter_for(model.config)
        except ConfigError as exc:
            raise ConfigError(f"{what}: {exc}. Set distill.attention_relation_weight = 0") from None
        if len(family.q_k_v) not in (1, 3):
            raise ConfigError(f"{what}: the {family.name} adapter names no query/key/value modules; "
                              "set distill.attention_relation_weight = 0")
        layer = family.layers(model)[layer_index]
        self.fused = len(family.q_k_v) == 1
        self.out: list[Any] = [None, None, None]
        # A new forward through the layer starts afresh; only the first call of each projection per
        # forward is kept (DeBERTa-v2 also runs its relative position embeddings through them).
        self.hooks = [layer.register_forward_pre_hook(self._reset)]
        self.hooks += [layer.get_submodule(path).register_forward_hook(self._keep(i))
                       for i, path in enumerate(family.q_k_v)]
        self.width = (layer.get_submodule(family.q_k_v[0]).out_features // (3 if self.fused else 1))
        self.heads = family.heads(layer)

    def _reset(self, module: Any, inputs: Any) -> None:
        self.out = [None, None, None]

    def _keep(self, i: int) -> Any:
        def hook(module: Any, inputs: tuple, output: "torch.Tensor") -> None:
            if self.out[i] is not None:
                return
            if self.fused:  # (B, T, 3A): query, key and value side by side
                self.out[:] = list(output.chunk(3, dim=-1))
            else:
                self.out[i] = output
        return hook

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()
        self.out = [None, None, None]


class TransferLoss:
    """The extra loss terms of a distillation step, built once per run; `close()` removes its hooks."""

    def __init__(self, student: Any, teacher: Any, config: "DistillConfig", kept_layers: Sequence[int] | None) -> None:
        s_cfg, t_cfg = student.config, teacher.config
        self.hidden_weight, self.relation_weight = config.hidden_weight, config.attention_relation_weight
        self.similarity_weight = config.similarity_weight
        self.mapping = layer_mapping(s_cfg.num_hidden_layers, t_cfg.num_hidden_layers, kept_layers)
        self.kwargs: dict[str, Any] = {"output_hidden_states": True} if self.hidden_weight else {}
        self.last: dict[str, float] = {}
        if self.hidden_weight and s_cfg.hidden_size != t_cfg.hidden_size:
            raise ConfigError(f"distill.hidden_weight: the student's hidden width {s_cfg.hidden_size} differs from "
                              f"the teacher's {t_cfg.hidden_size}; pruning keeps it, so this student was not pruned "
                              "from this teacher. Set distill.hidden_weight = 0")
        self.student_qkv = self.teacher_qkv = None
        self.heads = 0
        if self.relation_weight:
            what = "distill.attention_relation_weight"
            self.student_qkv = _QKV(student, s_cfg.num_hidden_layers - 1, what)
            try:
                self.teacher_qkv = _QKV(teacher, self.mapping[-1], what)
            except ConfigError:
                self.student_qkv.remove()
                raise
            self.heads = relation_heads(self.student_qkv.width, self.teacher_qkv.width, self.student_qkv.heads)

    def __call__(self, s_out: Any, t_out: Any, mask: "torch.Tensor") -> "torch.Tensor":
        """Weighted sum of the enabled terms for the last student and teacher forward passes."""
        import torch

        total = s_out.logits.new_zeros((), dtype=torch.float32)
        if self.hidden_weight:
            h = hidden_loss(s_out.hidden_states, t_out.hidden_states, self.mapping, mask)
            self.last["hidden"] = float(h.detach())
            total = total + self.hidden_weight * h
        if self.student_qkv is not None and self.teacher_qkv is not None:
            r = relation_loss(self.student_qkv.out, self.teacher_qkv.out, mask, self.heads)
            self.last["relation"] = float(r.detach())
            total = total + self.relation_weight * r
        if self.similarity_weight:
            sim = similarity_loss(s_out.logits, t_out.logits)
            self.last["similarity"] = float(sim.detach())
            total = total + self.similarity_weight * sim
        return total

    def record(self) -> dict[str, Any]:
        """What the compression record keeps."""
        out: dict[str, Any] = {"layer_mapping": self.mapping}
        if self.hidden_weight:
            out["hidden_weight"] = self.hidden_weight
        if self.relation_weight:
            out.update(attention_relation_weight=self.relation_weight, relation_heads=self.heads)
        if self.similarity_weight:
            out["similarity_weight"] = self.similarity_weight
        out["last_losses"] = {k: round(v, 6) for k, v in self.last.items()}
        return out

    def close(self) -> None:
        for q in (self.student_qkv, self.teacher_qkv):
            if q is not None:
                q.remove()


def transfer_loss(student: Any, teacher: Any, config: "DistillConfig",
                  kept_layers: Sequence[int] | None = None) -> TransferLoss | None:
    """The extra terms `config` asks for, or None when it asks for none (the logits alone)."""
    if not (config.hidden_weight or config.attention_relation_weight or config.similarity_weight):
        return None
    return TransferLoss(student, teacher, config, kept_layers)
