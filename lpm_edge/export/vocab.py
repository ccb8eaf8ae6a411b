"""Vocabulary pruning: keep only the token ids the training corpus uses, and remap the tokenizer.

In an int8 MiniLM bundle most bytes are the word-embedding table (30,522 × 384). Rows of tokens
that never occur in the training texts were never tuned for the task; dropping them shrinks the
bundle and leaves in-domain tokenization unchanged: WordPiece matches the longest known prefix,
and every piece of a word seen in training is kept, so such a word splits exactly as before. A
word needing a dropped piece becomes [UNK], as WordPiece does for any unknown word.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any, Sequence

from ..errors import ExportError

log = logging.getLogger("lpm_edge.export")
BATCH = 1024


def used_ids(tokenizer: Any, texts: Sequence[str], max_length: int) -> set[int]:
    """Token ids that occur in `texts` (truncated as the bundle truncates) plus every special token."""
    ids: set[int] = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), BATCH):
        enc = tokenizer(list(texts[start : start + BATCH]), truncation=True, max_length=max_length)
        for row in enc["input_ids"]:
            ids.update(row)
    return ids


def prune_vocab(
    model: Any, tokenizer: Any, texts: Sequence[str], max_length: int
) -> tuple[Any, Any, dict[str, Any]]:
    """Return (model copy, tokenizer, info) keeping only the ids `texts` use; inputs are untouched."""
    import torch

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    kind = spec.get("model", {}).get("type")
    if kind != "WordPiece":
        raise ExportError(
            f"vocab_prune supports WordPiece tokenizers (BERT, ELECTRA); this model's is {kind}. "
            "Set vocab_prune = false in the recipe"
        )
    embeddings = model.get_input_embeddings()  # nn.Embedding (V, H)
    before = embeddings.num_embeddings
    keep = sorted(i for i in used_ids(tokenizer, texts, max_length) if i < before)  # old ids, ascending
    new_id = {old: new for new, old in enumerate(keep)}
    pruned_tok = _remap_tokenizer(tokenizer, spec, new_id)

    student = copy.deepcopy(model)
    index = torch.tensor(keep, dtype=torch.long)
    pad = embeddings.padding_idx
    table = torch.nn.Embedding(len(keep), embeddings.embedding_dim,
                               padding_idx=new_id.get(pad) if pad is not None else None)
    with torch.no_grad():
        table.weight.copy_(embeddings.weight.detach()[index])  # (V', H): the kept rows, in id order
    student.set_input_embeddings(table)
    student.config.vocab_size = len(keep)
    if getattr(student.config, "pad_token_id", None) is not None:
        student.config.pad_token_id = new_id.get(student.config.pad_token_id, pruned_tok.pad_token_id)
    log.info("vocabulary pruned: %d -> %d tokens (%d training texts)", before, len(keep), len(texts))
    return student, pruned_tok, {"before": before, "after": len(keep), "training_texts": len(texts)}


def unk_rate(tokenizer: Any, texts: Sequence[str], max_length: int) -> float:
    """Share of the (non-special) tokens of `texts` that are [UNK]."""
    specials = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    total = unknown = 0
    for start in range(0, len(texts), BATCH):
        enc = tokenizer(list(texts[start : start + BATCH]), truncation=True, max_length=max_length)
        for row in enc["input_ids"]:
            tokens = [i for i in row if i not in specials]
            total += len(tokens)
            unknown += sum(i == tokenizer.unk_token_id for i in tokens)
    return unknown / total if total else 0.0


def _remap_tokenizer(tokenizer: Any, spec: dict[str, Any], new_id: dict[int, int]) -> Any:
    """A fast tokenizer whose vocab, added tokens, post-processor and padding use the new ids."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = copy.deepcopy(spec)
    spec["model"]["vocab"] = {tok: new_id[i] for tok, i in spec["model"]["vocab"].items() if i in new_id}
    spec["added_tokens"] = [{**t, "id": new_id[t["id"]]} for t in spec.get("added_tokens") or [] if t["id"] in new_id]
    spec["post_processor"] = _remap_processor(spec.get("post_processor"), new_id)
    if spec.get("padding"):
        spec["padding"]["pad_id"] = new_id.get(spec["padding"]["pad_id"], 0)
    backend = Tokenizer.from_str(json.dumps(spec))
    specials = {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
    pruned = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=tokenizer.model_max_length,
                                     **specials)
    pruned.model_input_names = list(tokenizer.model_input_names)
    return pruned


def _remap_processor(proc: dict[str, Any] | None, new_id: dict[int, int]) -> dict[str, Any] | None:
    if not proc:
        return proc
    kind = proc.get("type")
    if kind == "TemplateProcessing":
        for token in proc["special_tokens"].values():
            token["ids"] = [new_id[i] for i in token["ids"]]
    elif kind in ("BertProcessing", "RobertaProcessing"):
        for key in ("sep", "cls"):
            token, old = proc[key]
            proc[key] = [token, new_id[old]]
    elif kind == "Sequence":
        proc["processors"] = [_remap_processor(p, new_id) for p in proc["processors"]]
    return proc
