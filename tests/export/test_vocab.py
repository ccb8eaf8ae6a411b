import json
from pathlib import Path

import numpy as np
import pytest
import torch

import lpm_edge
from lpm_edge.errors import ExportError
from lpm_edge.export import export, load_recipe
from lpm_edge.export.vocab import prune_vocab, unk_rate

CORPUS = ["the movie was great", "a really awful plot", "boring acting and a dull story", "it was fine"]
IN_DOMAIN = ["the plot was great", "a dull and boring movie", "it was really awful acting"]


@pytest.fixture(scope="module")
def loaded(tiny_checkpoint):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(tiny_checkpoint)


def test_pruned_vocab_keeps_in_domain_outputs_and_maps_the_rest_to_unk(loaded, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model, tokenizer = loaded
    before_rows = model.get_input_embeddings().weight.detach().clone()
    student, small, info = prune_vocab(model, tokenizer, CORPUS)
    words = {w for text in CORPUS for w in text.split()}
    assert info["before"] == model.get_input_embeddings().num_embeddings
    # the corpus's words, the specials, and single-character pieces of the corpus's letters
    letters = {c for w in words for c in w}
    pieces = {c for c in letters} | {f"##{c}" for c in letters}
    assert info["single_characters_added"] == len(pieces - words)  # ("a" is a word of the corpus already)
    assert info["after"] == len(words) + len(tokenizer.all_special_ids) + info["single_characters_added"]
    assert student.get_input_embeddings().num_embeddings == info["after"] == student.config.vocab_size

    # in-domain texts: the same tokens (new ids), the same logits
    old = tokenizer(IN_DOMAIN, padding=True, return_tensors="pt")
    new = small(IN_DOMAIN, padding=True, return_tensors="pt")
    assert [tokenizer.convert_ids_to_tokens(r) for r in old["input_ids"]] == \
        [small.convert_ids_to_tokens(r) for r in new["input_ids"]]
    with torch.no_grad():
        torch.testing.assert_close(student(**new).logits, model(**old).logits)

    # a word the corpus never used (even one in the original vocabulary) splits into the corpus's
    # letters; one with a letter no corpus text has ("q", "x", "z") becomes [UNK]
    assert small.convert_ids_to_tokens(small("superb xyz")["input_ids"]) == \
        ["[CLS]", "s", "##u", "##p", "##e", "##r", "##b", "[UNK]", "[SEP]"]
    assert tokenizer.unk_token_id not in tokenizer("superb xyz")["input_ids"]
    assert unk_rate(small, ["the quiz zoo"], 32) == pytest.approx(2 / 3)
    assert unk_rate(tokenizer, ["the quiz zoo"], 32) == 0.0

    # the caller's model is untouched, and the student reloads with from_pretrained
    assert torch.equal(model.get_input_embeddings().weight, before_rows)
    student.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path, attn_implementation="eager").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(**new).logits, student(**new).logits)


def test_vocab_pruned_bundle_matches_the_full_bundle_in_domain(tiny_checkpoint, tiny_fp32_bundle, tmp_path):
    recipe = load_recipe("cpu-fp32").replace(name="fp32-vocab", vocab_prune=True)
    out = export(tiny_checkpoint, tmp_path / "b", recipe)
    manifest = json.loads((out / "manifest.json").read_text())
    vocab = manifest["source"]["compression"]["vocab"]
    assert vocab["after"] < vocab["before"]
    assert vocab["kind"] == "wordpiece" and vocab["train_texts_changed"] == 0
    assert 0 <= vocab["eval_texts_changed"] <= vocab["eval_texts"]
    assert vocab["eval_unk_rate_after"] >= vocab["eval_unk_rate_before"] == 0.0
    shipped = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]
    assert len(shipped) == vocab["after"] and sorted(shipped.values()) == list(range(vocab["after"]))
    small = lpm_edge.load(out, providers="cpu").logits(IN_DOMAIN)
    full = lpm_edge.load(tiny_fp32_bundle, providers="cpu").logits(IN_DOMAIN)
    np.testing.assert_allclose(small, full, atol=1e-4)
    assert (out / "model.onnx").stat().st_size < (tiny_fp32_bundle / "model.onnx").stat().st_size


def test_vocab_pruning_refuses_a_word_level_tokenizer(loaded):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    model, _ = loaded
    words = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "<unk>": 1}, unk_token="<unk>")), unk_token="<unk>")
    with pytest.raises(ExportError, match="vocab_prune = false"):
        prune_vocab(model, words, ["a"])


def test_an_export_refuses_a_tokenizer_it_cannot_prune_before_any_work(tiny_checkpoint, tmp_path, monkeypatch):
    import shutil

    from tokenizers import Tokenizer, models, pre_tokenizers

    import lpm_edge.export.compress as compress

    ckpt = Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))
    vocab = json.loads((ckpt / "tokenizer.json").read_text())["model"]["vocab"]
    words = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.save(str(ckpt / "tokenizer.json"))
    monkeypatch.setattr(compress, "compress", lambda *a, **k: pytest.fail("pruning and distillation ran"))
    with pytest.raises(ExportError, match="this model's is WordLevel. Set vocab_prune = false"):
        export(ckpt, tmp_path / "b", load_recipe("cpu-pruned-int8"))
