"""Vocabulary pruning: keep only the tokens the training corpus needs, and remap the tokenizer.

The word-embedding table is most of a small encoder's bytes (MiniLM: 30,522 × 384; XLM-R base:
250,002 × 768, about 70% of its weights). Rows of tokens that never occur in the training texts
were never tuned for the task; dropping them shrinks the bundle. Each tokenizer kind keeps what
its algorithm needs so that every training text tokenizes exactly as before (new ids, same
tokens), and an unseen text still tokenizes:

- WordPiece (BERT, ELECTRA, DistilBERT): the pieces the texts use, and the single-character
  pieces (word-initial and ##-continuing) of every character in them. Longest-prefix matching over
  a subset that holds every piece of a seen word splits that word as before; an unseen word gets
  the longest kept pieces that spell it, down to single characters, so a word of seen characters
  never becomes [UNK] (without them one missing piece made the whole word [UNK]); a word with a
  character no training text has is [UNK], as WordPiece does for any unknown word.
- BPE (byte-level: RoBERTa, GPT-2, ModernBERT): the pieces the texts use, every piece a kept
  piece was merged from (down to single symbols), all 256 byte symbols (and <0xNN> pieces under
  byte fallback), and every merge whose two parts and result are kept, in the original order.
  A word's merges are the lowest-ranked applicable ones at each step; all those the original
  applied on the kept texts survive with their relative ranks, and dropped ones never applied,
  so the merge sequence is the same. An unseen word stops merging earlier: smaller pieces,
  never [UNK] (every byte is kept).
- Unigram (XLM-R, DeBERTa-v3, T5; SentencePiece): the pieces the texts use with their scores,
  the unk piece, the <0xNN> pieces under byte fallback, every single-character piece of a
  character the kept pieces contain, and the lowest-scored piece (the unknown penalty is the
  minimum score minus 10: keeping it keeps the penalty). The best (Viterbi) segmentation of a
  kept text uses only kept pieces, and a subset can only lower other segmentations' scores, so
  it stays the best. An unseen word falls back to single characters, then to unk or bytes.

Special and added tokens are always kept. New ids follow the old order. A model that numbers
positions from the pad id (RoBERTa, XLM-R, MPNet: padding_idx + 1, + 2, ...) keeps every id up to
the pad's (id 1 in those families: nothing extra), so the pad keeps its number.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any, Iterator, Sequence

from ..errors import ExportError
from ..pairs import hf_tokenize, strings

log = logging.getLogger("lpm_edge.export")
BATCH = 1024
# The symbols a byte-level pre-tokenizer maps the 256 bytes to (GPT-2's bytes_to_unicode).
_PRINTABLE = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
BYTE_SYMBOLS = frozenset(
    [chr(b) for b in _PRINTABLE] + [chr(256 + n) for n in range(256 - len(_PRINTABLE))]
)
BYTE_PIECES = frozenset(f"<0x{b:02X}>" for b in range(256))  # byte-fallback pieces (BPE and Unigram)


def prune_vocab(model: Any, tokenizer: Any, texts: Sequence[str]) -> tuple[Any, Any, dict[str, Any]]:
    """Return (model copy, tokenizer, info) keeping only the tokens `texts` need; inputs are untouched.

    info: kind (wordpiece, byte-level-bpe, bpe, unigram), before/after (embedding rows),
    training_texts, train_texts_changed (texts of `texts` that tokenize differently: 0 by
    construction, measured), and for BPE merges_before/merges_after.
    """
    import torch

    embeddings = model.get_input_embeddings()  # nn.Embedding (V, H)
    before = embeddings.num_embeddings
    # RoBERTa-style embeddings number positions from the pad id (padding_idx + 1, + 2, ...): keeping
    # every id up to it keeps the pad id, and so the positions (RoBERTa, XLM-R, MPNet: pad id 1).
    fixed = _position_pad(model)
    pruned_tok, keep, info = prune_tokenizer(tokenizer, texts, rows=before,
                                             keep_below=0 if fixed is None else fixed + 1)
    new_id = {old: new for new, old in enumerate(keep)}

    student = copy.deepcopy(model)
    index = torch.tensor(keep, dtype=torch.long)
    pad = embeddings.padding_idx
    table = torch.nn.Embedding(len(keep), embeddings.embedding_dim,
                               padding_idx=new_id.get(pad) if pad is not None else None)
    with torch.no_grad():
        table.weight.copy_(embeddings.weight.detach()[index])  # (V', H): the kept rows, in id order
    student.set_input_embeddings(table)
    student.config.vocab_size = len(keep)
    _remap_config_ids(student, new_id, pruned_tok)
    log.info("vocabulary pruned (%s): %d -> %d tokens (%d training texts)", info["kind"], before, len(keep),
             len(texts))
    return student, pruned_tok, {"kind": info.pop("kind"), "before": before, "after": len(keep), **info}


def prune_tokenizer(
    tokenizer: Any, texts: Sequence[str], rows: int | None = None, keep_below: int = 0
) -> tuple[Any, list[int], dict[str, Any]]:
    """Return (pruned tokenizer, kept old ids ascending, info); new id i is old id keep[i].

    rows: the embedding table's size; ids at or above it (a tokenizer larger than its model)
    are dropped. keep_below: ids below it are all kept (so they keep their numbers).
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    name = _kind_name(spec)
    kind = spec["model"]["type"]
    plain = _plain(spec)
    texts = list(strings(texts))  # both texts of each pair
    used = {i for enc in _encode(plain, texts) for i in enc.ids}
    added = {t["id"] for t in spec.get("added_tokens") or []}
    model_keep, extra = _KEEP[kind](spec["model"], used)
    keep = sorted(i for i in model_keep | added | used | set(range(keep_below)) if rows is None or i < rows)
    new_id = {old: new for new, old in enumerate(keep)}
    pruned = _wrap(tokenizer, _remap(spec, kind, new_id))
    info = {"kind": name, "training_texts": len(texts), **extra}
    info["train_texts_changed"] = changed_texts(tokenizer, pruned, texts)
    if info["train_texts_changed"]:  # (only an exact tie between two Unigram segmentations could)
        log.warning("%d of %d training texts tokenize differently after vocabulary pruning",
                    info["train_texts_changed"], len(texts))
    return pruned, keep, info


def tokenizer_kind(tokenizer: Any) -> str:
    """wordpiece, byte-level-bpe, bpe or unigram; ExportError for a kind vocab_prune cannot prune
    (a check to run before any minutes are spent)."""
    return _kind_name(json.loads(tokenizer.backend_tokenizer.to_str()))


def changed_texts(before: Any, after: Any, texts: Sequence[str], max_length: int | None = None) -> int:
    """How many of `texts` tokenize to a different token sequence under `after` than under `before`
    (compared as token strings, so a remapped id is no change; truncated to max_length if given)."""
    old, new = (_plain(json.loads(t.backend_tokenizer.to_str()), max_length) for t in (before, after))
    changed = 0
    for a, b in zip(_encode(old, texts), _encode(new, texts)):
        changed += [old.id_to_token(i) for i in a.ids] != [new.id_to_token(i) for i in b.ids]
    return changed


def unk_rate(tokenizer: Any, texts: Sequence[str], max_length: int) -> float:
    """Share of the (non-special) tokens of `texts` that are the unknown token (0 without one)."""
    if tokenizer.unk_token_id is None:
        return 0.0
    specials = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    total = unknown = 0
    for start in range(0, len(texts), BATCH):
        enc = hf_tokenize(tokenizer, texts[start : start + BATCH], truncation=True, max_length=max_length)
        for row in enc["input_ids"]:
            tokens = [i for i in row if i not in specials]
            total += len(tokens)
            unknown += sum(i == tokenizer.unk_token_id for i in tokens)
    return unknown / total if total else 0.0


# --- what each kind keeps: (model ids to keep, what to record about it) ---

def _keep_wordpiece(model: dict[str, Any], used: set[int]) -> tuple[set[int], dict[str, Any]]:
    vocab: dict[str, int] = model["vocab"]
    prefix = model.get("continuing_subword_prefix") or "##"
    kept = {i: t for t, i in vocab.items() if i in used}
    chars = {c for t in kept.values() for c in t.removeprefix(prefix)}
    singles = {vocab[p] for c in chars for p in (c, prefix + c) if p in vocab}
    return set(kept) | singles, {"single_characters_added": len(singles - set(kept))}


def _keep_bpe(model: dict[str, Any], used: set[int]) -> tuple[set[int], dict[str, Any]]:
    vocab: dict[str, int] = model["vocab"]
    merges = [_pair(m) for m in model.get("merges") or []]
    prefix = model.get("continuing_subword_prefix") or ""
    made_by: dict[str, list[tuple[str, str]]] = {}  # result -> the merges producing it
    for a, b in merges:
        made_by.setdefault(_merged(a, b, prefix), []).append((a, b))
    bases = BYTE_SYMBOLS | (BYTE_PIECES if model.get("byte_fallback") else frozenset())
    keep = {t for t, i in vocab.items() if i in used or t in bases}
    stack = list(keep)
    while stack:  # close under "merged from": a kept piece's parts are the steps to it
        for part in (p for ab in made_by.get(stack.pop(), ()) for p in ab):
            if part not in keep and part in vocab:
                keep.add(part)
                stack.append(part)
    kept = sum(1 for a, b in merges if {a, b, _merged(a, b, prefix)} <= keep)
    return {vocab[t] for t in keep}, {"merges_before": len(merges), "merges_after": kept}


def _keep_unigram(model: dict[str, Any], used: set[int]) -> tuple[set[int], dict[str, Any]]:
    pieces: list[list[Any]] = model["vocab"]  # [[piece, score], ...]; a piece's id is its index
    keep = set(used)
    if model.get("unk_id") is not None:
        keep.add(model["unk_id"])
    if pieces:
        keep.add(min(range(len(pieces)), key=lambda i: pieces[i][1]))  # keeps min score, so the unk penalty
    chars = {c for i in used if i < len(pieces) for c in pieces[i][0]}
    fallback = BYTE_PIECES if model.get("byte_fallback") else frozenset()
    keep |= {i for i, (p, _) in enumerate(pieces) if (len(p) == 1 and p in chars) or p in fallback}
    return {i for i in keep if i < len(pieces)}, {}


_KEEP = {"WordPiece": _keep_wordpiece, "BPE": _keep_bpe, "Unigram": _keep_unigram}


def _pair(merge: str | list[str]) -> tuple[str, str]:
    """A merge as (left, right): tokenizers writes ["a", "b"] (0.20+) or "a b" (older files)."""
    if isinstance(merge, str):
        a, b = merge.split(" ", 1)
        return a, b
    return merge[0], merge[1]


def _merged(a: str, b: str, prefix: str) -> str:
    # tokenizers' BPE joins a merge as a + b without b's continuing-subword prefix
    return a + (b[len(prefix):] if prefix and b.startswith(prefix) else b)


def _kind_name(spec: dict[str, Any]) -> str:
    kind = spec.get("model", {}).get("type")
    if kind not in _KEEP:
        raise ExportError(
            f"vocab_prune supports WordPiece, BPE and Unigram tokenizers; this model's is {kind}. "
            "Set vocab_prune = false in the recipe"
        )
    if kind != "BPE":
        return kind.lower()
    return "byte-level-bpe" if '"ByteLevel"' in json.dumps(spec.get("pre_tokenizer")) else "bpe"


# --- rewriting the tokenizer and the model to the new ids ---

def _remap(spec: dict[str, Any], kind: str, new_id: dict[int, int]) -> dict[str, Any]:
    """The tokenizer JSON with only the kept tokens, renumbered by `new_id`."""
    spec = copy.deepcopy(spec)
    model = spec["model"]
    if kind == "Unigram":
        model["vocab"] = [p for i, p in enumerate(model["vocab"]) if i in new_id]
        if model.get("unk_id") is not None:
            model["unk_id"] = new_id[model["unk_id"]]
    else:
        model["vocab"] = {t: new_id[i] for t, i in model["vocab"].items() if i in new_id}
    if kind == "BPE":
        prefix = model.get("continuing_subword_prefix") or ""
        vocab = model["vocab"]
        model["merges"] = [m for m in model.get("merges") or []
                           if all(t in vocab for t in (*_pair(m), _merged(*_pair(m), prefix)))]
    spec["added_tokens"] = [{**t, "id": new_id[t["id"]]} for t in spec.get("added_tokens") or [] if t["id"] in new_id]
    spec["post_processor"] = _remap_processor(spec.get("post_processor"), new_id)
    if spec.get("padding"):
        spec["padding"]["pad_id"] = new_id.get(spec["padding"]["pad_id"], 0)
    return spec


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


def _wrap(tokenizer: Any, spec: dict[str, Any]) -> Any:
    """A transformers fast tokenizer over `spec` with the special tokens and settings of `tokenizer`."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(json.dumps(spec))
    specials = {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, (str, list))}
    pruned = PreTrainedTokenizerFast(tokenizer_object=backend, model_max_length=tokenizer.model_max_length,
                                     padding_side=tokenizer.padding_side, **specials)
    pruned.model_input_names = list(tokenizer.model_input_names)
    return pruned


def _position_pad(model: Any) -> int | None:
    """The pad id if the model's embeddings build position ids from it (a `padding_idx` attribute
    outside an nn.Embedding), else None."""
    from torch import nn

    pad = getattr(model.config, "pad_token_id", None)
    if pad is None:
        return None
    for module in model.modules():  # (an nn.Embedding's padding_idx is only the row it zeroes)
        if not isinstance(module, nn.Embedding) and getattr(module, "padding_idx", None) == pad:
            return pad
    return None


def _remap_config_ids(student: Any, new_id: dict[int, int], tokenizer: Any) -> None:
    """Point the config's special-token ids at the new ids."""
    config = student.config
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "cls_token_id", "sep_token_id"):
        old = getattr(config, key, None)
        if isinstance(old, int):
            setattr(config, key, new_id.get(old, tokenizer.pad_token_id if key == "pad_token_id" else None))


def _plain(spec: dict[str, Any], max_length: int | None = None) -> Any:
    """A `tokenizers.Tokenizer` of `spec` without padding, truncated to max_length if given."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(json.dumps(spec))
    tok.no_padding()
    tok.no_truncation()
    if max_length:
        tok.enable_truncation(max_length)
    return tok


def _encode(tok: Any, texts: Sequence[str]) -> Iterator[Any]:
    for start in range(0, len(texts), BATCH):
        yield from tok.encode_batch(list(texts[start : start + BATCH]))
