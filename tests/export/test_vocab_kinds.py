"""Vocabulary pruning for each tokenizer kind: byte-level BPE, Unigram, WordPiece.

Tokenizers are trained in the test with the `tokenizers` trainers on the test's own texts; the
models are tiny random RoBERTa / XLM-R / BERT classifiers of those vocabularies.
"""

from __future__ import annotations

import json
import random
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpm_edge.export.vocab import changed_texts, prune_tokenizer, prune_vocab, tokenizer_kind

# Stems and suffixes, so that words share pieces (a trainer learns subwords, not only whole words).
STEMS = ["the", "movie", "great", "awful", "plot", "act", "play", "película", "muy", "buen", "très", "bien",
         "schön", "straße", "naïve", "café", "映画", "良い", "とても", "😀", "dull", "real", "!"]
WORDS = [stem + suffix for stem in STEMS for suffix in ["", "s", "ing", "ly", "er", "ción", "chen"]]
ALPHABET = "".join(sorted(set("".join(WORDS)))) + " xqzΩ"  # plus characters no training text has


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 8))) for _ in range(n)]


TRAIN = sentences(300, seed=0)  # what the tokenizers learn from
KEPT = sentences(12, seed=1)  # the "training texts" pruning keeps the vocabulary of
ABSENT = " ".join(w for w in WORDS if all(w not in t.split() for t in KEPT))  # words of no kept text
UNSEEN = ["zebra quartz xylophone", "Ωμέγα über", ABSENT]


def _fast(tok: Any, **specials: str) -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=64, **specials)


def byte_level_bpe() -> Any:
    """A RoBERTa-style tokenizer: byte-level BPE, <s> … </s>, pad id 1."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok.train_from_iterator(TRAIN, trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return _fast(tok, bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>", unk_token="<unk>",
                 pad_token="<pad>", mask_token="<mask>")


def unigram(byte_fallback: bool = False) -> Any:
    """An XLM-R-style tokenizer: Unigram over Metaspace, <s> … </s>, pad id 1; optionally with the
    256 <0xNN> byte-fallback pieces (appended with a low score, as SentencePiece lists them)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(TRAIN, trainers.UnigramTrainer(
        vocab_size=150, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], unk_token="<unk>"))
    if byte_fallback:
        spec = json.loads(tok.to_str())
        spec["model"]["vocab"] += [[f"<0x{b:02X}>", -50.0] for b in range(256)]
        spec["model"]["byte_fallback"] = True
        tok = Tokenizer.from_str(json.dumps(spec))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return _fast(tok, bos_token="<s>", eos_token="</s>", cls_token="<s>", sep_token="</s>", unk_token="<unk>",
                 pad_token="<pad>", mask_token="<mask>")


def wordpiece() -> Any:
    """A BERT-style tokenizer: WordPiece, [CLS] … [SEP], pad id 0."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(TRAIN, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = _fast(tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    return fast


def tiny_model(kind: str, tokenizer: Any) -> Any:
    from transformers import (BertConfig, BertForSequenceClassification, RobertaConfig,
                              RobertaForSequenceClassification, XLMRobertaConfig, XLMRobertaForSequenceClassification)

    shape = dict(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                 intermediate_size=64, num_labels=3, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    if kind == "wordpiece":
        return BertForSequenceClassification(BertConfig(max_position_embeddings=64, **shape)).eval()
    roberta = dict(max_position_embeddings=66, bos_token_id=0, eos_token_id=2, **shape)
    if kind == "bpe":
        return RobertaForSequenceClassification(RobertaConfig(**roberta)).eval()
    return XLMRobertaForSequenceClassification(XLMRobertaConfig(**roberta)).eval()


MAKERS = {"bpe": byte_level_bpe, "unigram": unigram, "wordpiece": wordpiece}


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    return {kind: make() for kind, make in MAKERS.items()} | {"unigram-bytes": unigram(byte_fallback=True)}


def tokens(tokenizer: Any, text: str) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])


@pytest.mark.parametrize("kind", ["bpe", "unigram", "wordpiece"])
def test_pruned_model_gives_the_same_tokens_and_logits_on_the_kept_texts(trained, kind, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = trained[kind]
    model = tiny_model(kind, tokenizer)
    rows = model.get_input_embeddings().weight.detach().clone()
    student, small, info = prune_vocab(model, tokenizer, KEPT)

    assert info["kind"] == tokenizer_kind(tokenizer) == {"bpe": "byte-level-bpe"}.get(kind, kind)
    assert info["after"] == len(small) == student.get_input_embeddings().num_embeddings < info["before"] == len(rows)
    assert info["train_texts_changed"] == 0
    assert student.config.pad_token_id == small.pad_token_id
    old = tokenizer(KEPT, padding=True, return_tensors="pt")
    new = small(KEPT, padding=True, return_tensors="pt")
    assert [tokens(tokenizer, t) for t in KEPT] == [tokens(small, t) for t in KEPT]
    with torch.no_grad():  # a padded batch: pad ids and the positions numbered from them agree too
        torch.testing.assert_close(student(**new).logits, model(**old).logits)
    assert torch.equal(model.get_input_embeddings().weight, rows)  # the caller's model is untouched

    student.save_pretrained(tmp_path)
    small.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    with torch.no_grad():
        torch.testing.assert_close(again(**loaded(KEPT, padding=True, return_tensors="pt")).logits,
                                   model(**old).logits)


def test_byte_level_bpe_keeps_every_byte_and_consistent_merges(trained):
    from tokenizers import pre_tokenizers

    tokenizer = trained["bpe"]
    small, keep, info = prune_tokenizer(tokenizer, KEPT)
    spec = json.loads(small.backend_tokenizer.to_str())["model"]
    vocab = spec["vocab"]
    assert set(pre_tokenizers.ByteLevel.alphabet()) <= set(vocab)  # all 256 byte symbols
    assert all(a in vocab and b in vocab and a + b in vocab for a, b in spec["merges"])
    assert info["merges_after"] == len(spec["merges"]) < info["merges_before"]
    assert sorted(vocab.values()) == list(range(len(vocab)))
    # an unseen text: no unknown token, smaller pieces that still decode to the text
    for text in UNSEEN:
        ids = small(text, add_special_tokens=False)["input_ids"]
        assert small.unk_token_id not in ids and small.decode(ids) == text
        assert len(ids) >= len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert changed_texts(tokenizer, small, UNSEEN) > 0


def test_unigram_keeps_scores_unk_and_falls_back_to_characters_then_unk(trained):
    tokenizer = trained["unigram"]
    small, keep, info = prune_tokenizer(tokenizer, KEPT)
    before = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    after = json.loads(small.backend_tokenizer.to_str())["model"]
    assert after["vocab"] == [before["vocab"][i] for i in keep]  # pieces with their scores, in order
    assert after["vocab"][after["unk_id"]][0] == "<unk>"
    assert min(s for _, s in after["vocab"]) == min(s for _, s in before["vocab"])  # the unknown penalty
    # a word of seen characters only splits into smaller pieces; a never-seen character is <unk>
    word = "".join(sorted({c for t in KEPT for c in t if c.isalpha()})[:6])
    assert small.unk_token_id not in small(word)["input_ids"]
    assert small.decode(small(word, add_special_tokens=False)["input_ids"]) == word
    assert small.unk_token_id in small("xyzq")["input_ids"]


def test_unigram_byte_fallback_turns_unseen_characters_into_bytes(trained):
    tokenizer = trained["unigram-bytes"]
    small, keep, info = prune_tokenizer(tokenizer, KEPT)
    assert info["train_texts_changed"] == 0
    pieces = [p for p, _ in json.loads(small.backend_tokenizer.to_str())["model"]["vocab"]]
    assert {f"<0x{b:02X}>" for b in range(256)} <= set(pieces)
    got = tokens(small, "Ω")
    assert "<unk>" not in got and got[-3:-1] == ["<0xCE>", "<0xA9>"]  # Ω is UTF-8 CE A9
    assert tokens(small, "Ω") == tokens(tokenizer, "Ω")


def test_wordpiece_unseen_words_become_unk(trained):
    tokenizer = trained["wordpiece"]
    small, keep, info = prune_tokenizer(tokenizer, ["the movie was great"])
    assert tokens(small, "the movie was great") == tokens(tokenizer, "the movie was great")
    assert tokens(small, "acting") == ["[CLS]", "[UNK]", "[SEP]"] != tokens(tokenizer, "acting")
    assert changed_texts(tokenizer, small, ["the movie", "acting"]) == 1


def test_wordpiece_word_of_seen_characters_splits_into_pieces_not_unk(trained):
    """Single-character pieces of every seen character are kept, so an unseen word spelled with
    them tokenizes (into smaller pieces) instead of becoming one [UNK]."""
    tokenizer = trained["wordpiece"]
    small, keep, info = prune_tokenizer(tokenizer, ["the movie was great"])
    assert info["single_characters_added"] > 0
    for word in ("mist", "grave", "saw"):  # every character occurs in the kept text
        pieces = tokens(small, word)
        assert "[UNK]" not in pieces and small.decode(small(word)["input_ids"], skip_special_tokens=True) == word


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["bpe", "unigram", "unigram-bytes", "wordpiece"]),
       texts=st.lists(st.lists(st.sampled_from(WORDS) | st.text(alphabet=ALPHABET, min_size=1, max_size=10),
                               min_size=1, max_size=8).map(" ".join), min_size=1, max_size=6))
def test_kept_texts_tokenize_to_the_same_tokens_with_remapped_ids(trained, kind, texts):
    tokenizer = trained[kind]
    small, keep, info = prune_tokenizer(tokenizer, texts)
    assert len(keep) < len(tokenizer)
    for text in texts:
        old, new = tokenizer(text)["input_ids"], small(text)["input_ids"]
        assert [keep[i] for i in new] == old  # new id i is old id keep[i]
    assert info["train_texts_changed"] == 0


def test_the_export_records_the_kind_and_how_many_evaluation_texts_changed(trained):
    from lpm_edge.export.pipeline import _prune_vocab

    tokenizer = trained["unigram"]
    model = tiny_model("unigram", tokenizer)
    dataset = SimpleNamespace(train=SimpleNamespace(texts=KEPT))
    evaluation = KEPT[:3] + [ABSENT]
    student, small, compression = _prune_vocab(model, tokenizer, dataset, evaluation, 32, {"heads": {}})
    vocab = compression["vocab"]
    assert compression["heads"] == {}
    assert vocab["kind"] == "unigram" and vocab["after"] == len(small) < vocab["before"] == len(tokenizer)
    assert vocab["eval_texts"] == 4 and vocab["eval_texts_changed"] == 1
    assert vocab["eval_unk_rate_after"] >= vocab["eval_unk_rate_before"]


def test_a_model_numbering_positions_from_the_pad_id_keeps_that_id(tmp_path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TRAIN, trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    pad = 300  # among the merged pieces: pruning must keep every id below it to keep the pad's number
    spec = json.loads(tok.to_str())
    spec["model"]["vocab"] = {t: i + (i >= pad) for t, i in spec["model"]["vocab"].items()} | {"<pad>": pad}
    spec["added_tokens"].append({"id": pad, "content": "<pad>", "single_word": False, "lstrip": False,
                                 "rstrip": False, "normalized": False, "special": True})
    tokenizer = _fast(Tokenizer.from_str(json.dumps(spec)), bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    assert tokenizer.pad_token_id == pad
    torch.manual_seed(0)
    model = RobertaForSequenceClassification(RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
        max_position_embeddings=pad + 66, pad_token_id=pad, num_labels=2)).eval()
    student, small, info = prune_vocab(model, tokenizer, KEPT[:2])
    assert info["after"] < info["before"]
    assert small.pad_token_id == student.config.pad_token_id == pad  # positions are pad + 1, pad + 2, ...
    student.save_pretrained(tmp_path)  # a reloaded model numbers positions from its config's pad id
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(**small(KEPT[:2], padding=True, return_tensors="pt")).logits,
                                   model(**tokenizer(KEPT[:2], padding=True, return_tensors="pt")).logits)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_export_prunes_the_vocabulary_of_a_roberta_and_an_xlm_r_checkpoint(trained, kind, tiny_config, tiny_data,
                                                                            tmp_path):
    import dataclasses

    import numpy as np
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import lpm_edge
    from lpm_edge.data import load_dataset
    from lpm_edge.export import export, load_recipe
    from lpm_edge.train import train

    tokenizer = trained[kind]
    model = tiny_model(kind, tokenizer)
    model.config.num_labels = 2
    model.config.id2label, model.config.label2id = {0: "neg", 1: "pos"}, {"neg": 0, "pos": 1}
    model = type(model)(model.config)  # a 2-label head
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    ckpt = train(tiny_config(tmp_path / "ckpt", model=tmp_path / "model", epochs=1))
    recipe = load_recipe("cpu-fp32")  # unfused: which families fuse is not this test's concern
    recipe = recipe.replace(name="fp32-vocab", vocab_prune=True,
                            optimize=dataclasses.replace(recipe.optimize, fusion=False))
    out = export(ckpt, tmp_path / "bundle", recipe)

    vocab = json.loads((out / "manifest.json").read_text())["source"]["compression"]["vocab"]
    assert vocab["kind"] == {"bpe": "byte-level-bpe"}.get(kind, kind)
    assert vocab["after"] < vocab["before"] and vocab["train_texts_changed"] == 0
    assert 0 <= vocab["eval_texts_changed"] <= vocab["eval_texts"]
    texts = list(load_dataset(str(tiny_data)).train.texts[:8])
    full = AutoModelForSequenceClassification.from_pretrained(ckpt).eval()
    with torch.no_grad():
        expected = full(**AutoTokenizer.from_pretrained(ckpt)(texts, padding=True, return_tensors="pt")).logits
    np.testing.assert_allclose(lpm_edge.load(out, providers="cpu").logits(texts), expected.numpy(), atol=1e-4)
