"""Token classification: BIO data, entity metrics, windows over long texts, entities with offsets,
and the whole path (train, export int8 and pruned+distilled, load, evaluate) on a tiny model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from lpm_edge import tasks
from lpm_edge.data import load_dataset
from lpm_edge.errors import ConfigError, DataError
from lpm_edge.tasks.token_classification import (
    TokenClassification, first_tokens, read_token_rows, spans_of, token_outputs, word_spans,
)

FIRST = ["alice", "bob", "carol"]
LAST = ["smith", "jones"]
PLACES = ["paris", "rome", "oslo"]
FILLER = ["the", "movie", "was", "a", "really", "story", "and", "very", "it", "plot"]
LABELS = ("O", "B-LOC", "I-LOC", "B-PER", "I-PER")


def ner_sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Sentences of filler words with a person (one or two words) and sometimes a place."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = rng.choices(FILLER, k=rng.randint(2, 8))
        tags = ["O"] * len(words)
        person = [rng.choice(FIRST)] + ([rng.choice(LAST)] if rng.random() < 0.5 else [])
        at = rng.randrange(len(words) + 1)
        words[at:at] = person
        tags[at:at] = ["B-PER"] + ["I-PER"] * (len(person) - 1)
        if rng.random() < 0.6:
            at = rng.randrange(len(words) + 1)
            words.insert(at, rng.choice(PLACES))
            tags.insert(at, "B-LOC")
        out.append((words, tags))
    return out


def write_conll(path: Path, sentences, docstart: bool = True) -> Path:
    lines = ["-DOCSTART- -X- -X- O", ""] if docstart else []
    for words, tags in sentences:
        lines += [f"{w}\t{t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- data --------------------------------------------------------------------------------------------
def test_conll_sentences_keep_words_and_lines(tmp_path):
    path = tmp_path / "a.conll"
    path.write_text("-DOCSTART- -X- -X- O\n\nAlice NNP B-NP B-PER\nlives VBZ B-VP O\nin IN B-PP O\n"
                    "Paris NNP B-NP B-LOC\n\n\nBob x B-PER\n", encoding="utf-8")
    rows = read_token_rows(path)
    assert rows == [("Alice lives in Paris", ("B-PER", "O", "O", "B-LOC"), f"{path}:3"),
                    ("Bob", ("B-PER",), f"{path}:9")]
    assert word_spans(rows[0][0]).tolist() == [[0, 5], [6, 11], [12, 14], [15, 20]]


@pytest.mark.parametrize("content, line, words", [
    ("a O\nb B-PER\n\nc X-PER\n", 4, "is not O, B-TYPE or I-TYPE"),
    ("a O\nlonely\n", 2, "expected a token and its tag"),
    ("a O\nb b-per\n", 2, "is not O, B-TYPE or I-TYPE"),
])
def test_conll_bad_lines_name_file_and_line(tmp_path, content, line, words):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=f"bad.txt:{line}: .*{words}"):
        read_token_rows(path)


def test_jsonl_sentences_and_errors(tmp_path):
    good = tmp_path / "a.jsonl"
    good.write_text(json.dumps({"tokens": ["Ann", "went"], "tags": ["B-PER", "O"]}) + "\n\n"
                    + json.dumps({"words": ["x"], "ner": ["O"]}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"a.jsonl:3: no list 'tokens'.*--text-column"):
        read_token_rows(good)
    other = tmp_path / "b.jsonl"
    other.write_text(json.dumps({"words": ["x"], "ner": ["O"]}) + "\n", encoding="utf-8")
    assert read_token_rows(other, "words", "ner") == [("x", ("O",), f"{other}:1")]
    for record, message in [({"tokens": ["a", "b"], "tags": ["O"]}, "2 tokens but 1 tags"),
                            ({"tokens": ["a b"], "tags": ["O"]}, "holds whitespace"),
                            ({"tokens": ["a"], "tags": ["B_PER"]}, "not O, B-TYPE or I-TYPE")]:
        bad = tmp_path / "bad.jsonl"
        bad.write_text("\n" + json.dumps(record) + "\n", encoding="utf-8")
        with pytest.raises(DataError, match=f"bad.jsonl:2: .*{message}"):
            read_token_rows(bad)


def test_load_dataset_gives_tag_ids_and_labels(tmp_path):
    train = write_conll(tmp_path / "train.conll", ner_sentences(60))
    valid = write_conll(tmp_path / "valid.conll", [(["the", "oslo"], ["O", "B-LOC"])])
    data = load_dataset(train, task="token-classification", validation=valid)
    assert data.labels == LABELS
    assert data.validation.texts == ("the oslo",) and data.validation.labels == ((0, 1),)
    for text, gold in zip(data.train.texts, data.train.labels):
        assert len(text.split(" ")) == len(gold)
    unseen = write_conll(tmp_path / "org.conll", [(["acme"], ["B-ORG"])])
    with pytest.raises(DataError, match=r"org.conll:3: tag 'B-ORG' has an entity type that never occurs"):
        load_dataset(train, task="token-classification", validation=unseen)
    empty = write_conll(tmp_path / "none.conll", [(["a", "b"], ["O", "O"])] * 20)
    with pytest.raises(DataError, match="no sentence of this file has an entity tag"):
        load_dataset(empty, task="token-classification")


# -- metrics -----------------------------------------------------------------------------------------
def _logits(tag_ids, n_labels=len(LABELS)):
    out = np.zeros((len(tag_ids), max(len(t) for t in tag_ids), n_labels), dtype=np.float32)
    for i, tags in enumerate(tag_ids):
        out[i, np.arange(len(tags)), tags] = 5.0
    return out


def test_entity_spans_follow_seqeval():
    task = TokenClassification(LABELS)
    kind, begin = task._kind, task._begin
    # B-PER I-PER O I-LOC I-LOC B-LOC: PER (0,2); LOC starts at an I- after O (3,5); B- starts another
    assert spans_of([3, 4, 0, 2, 2, 1], kind, begin) == {(0, 2, 1), (3, 5, 0), (5, 6, 0)}
    assert spans_of([3, 2], kind, begin) == {(0, 1, 1), (1, 2, 0)}  # a change of type ends an entity


def test_entity_f1_counts_exact_spans_and_types():
    task = TokenClassification(LABELS)
    gold = ((3, 4, 0, 1), (0, 3))  # PER(0,2) LOC(3,4); PER(1,2)
    pred = _logits([[3, 0, 0, 1], [0, 3]])  # PER cut short (wrong), LOC right; PER right
    m = task.metrics(gold, pred)
    assert m["entity_precision"] == pytest.approx(2 / 3) and m["entity_recall"] == pytest.approx(2 / 3)
    assert m["entity_f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert task.metrics(gold, _logits([[3, 4, 0, 1], [0, 3]]))["entity_f1"] == 1.0


def test_bootstrap_interval_is_paired_and_signed():
    from lpm_edge.data import Split
    from lpm_edge.evaluate import compare

    rng = np.random.default_rng(0)
    gold = tuple(tuple(int(x) for x in rng.choice([0, 1, 3, 4], size=rng.integers(2, 9))) for _ in range(200))
    good = _logits([list(g) for g in gold])
    worse = good.copy()
    worse[:60, 0, :] = 0
    worse[:60, 0, 0] = 5  # the first word of 60 sentences predicted O
    split = Split(tuple(" ".join("w" * len(g)) for g in gold), gold, "validation", "synthetic")
    ref, same, bad = compare(split, [("ref", good), ("same", good), ("bad", worse)], TokenClassification(LABELS))
    assert ref.metric == "entity_f1" and ref.value == 1.0
    assert same.loss_points == 0 and same.loss_ci95 == (0.0, 0.0) and same.agreement == 1.0
    assert bad.loss_points > 0 and 0 < bad.loss_ci95[0] <= bad.loss_points <= bad.loss_ci95[1]
    assert bad.agreement < 1


def test_train_metrics_read_token_level_arrays():
    task = TokenClassification(LABELS)
    labels = np.array([[-100, 3, -100, 0, 1, -100], [-100, 0, 3, -100, -100, -100]])
    logits = np.zeros((2, 6, 5), dtype=np.float32)
    for i, row in enumerate(labels):
        for j, k in enumerate(row):
            logits[i, j, max(k, 0)] = 1
    logits[0, 2, 4] = 9  # a non-first sub-token says I-PER: ignored
    assert task.train_metrics(labels, logits)["entity_f1"] == 1.0


def test_task_record_round_trips_and_refuses_bad_labels():
    task = tasks.from_section("token-classification", LABELS)
    assert tasks.record(task)["kind"] == "token-classification" and task.offers == ("entities",)
    with pytest.raises(ConfigError, match="'O' first"):
        tasks.from_section("token-classification", ("B-PER", "O"))


# -- windows and entities, on a runner that reports token ids -----------------------------------------
def _tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {t: i for i, t in enumerate(dict.fromkeys(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *FILLER, *list(letters), *[f"##{c}" for c in letters]]))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return tok, vocab


class FakeRunner:
    """What token_outputs needs of a loaded bundle; logits say each token's id and its place in its
    window (label 0: id, label 1: position), so the merge can be checked."""

    def __init__(self, max_length, table=None):
        self._tokenizer, self.vocab = _tokenizer()
        self.max_length, self.batch_size, self.max_batch_tokens = max_length, 4, None
        self._inputs = ["input_ids", "attention_mask"]
        self.manifest = type("M", (), {"pad_id": 0})()
        self.table = table
        self.calls = []

    def run(self, feed):
        ids = feed["input_ids"]
        self.calls.append(ids.shape)
        if self.table is not None:
            return self.table[ids]
        out = np.zeros((*ids.shape, 5), dtype=np.float32)
        out[..., 0] = ids
        out[..., 1] = np.arange(ids.shape[1])
        return out


def test_long_texts_run_as_overlapping_windows_and_merge_in_order():
    rng = random.Random(1)
    text = " ".join(rng.choice(FILLER + FIRST) for _ in range(60))
    runner = FakeRunner(max_length=12)
    whole = runner._tokenizer.encode(text)
    (found,) = token_outputs(runner, [text])
    assert max(width for _, width in runner.calls) <= 12 and len(runner.calls) > 3  # windows, no truncation
    content = [j for j, s in enumerate(whole.special_tokens_mask) if not s]
    assert found.offsets.tolist() == [list(whole.offsets[j]) for j in content]
    assert found.logits[:, 0].tolist() == [whole.ids[j] for j in content]
    assert found.words.tolist() == [whole.word_ids[j] for j in content]
    # Past the first window, no token was taken from the first or last content place of its window.
    assert found.logits[10:-10, 1].min() >= 2
    short = token_outputs(runner, ["the plot"])[0]
    assert short.logits[:, 0].tolist() == [runner.vocab["the"], runner.vocab["plot"]]


def test_word_outputs_take_each_words_first_token():
    runner = FakeRunner(max_length=64)
    task = TokenClassification(LABELS)
    out = task.outputs_of(runner, ["the alice", "bob"])
    assert out.shape == (2, 2, 5)
    assert out[0, :, 0].tolist() == [runner.vocab["the"], runner.vocab["a"]]
    assert out[1, :, 0].tolist() == [runner.vocab["b"], 0]  # padding past the last word
    spans = word_spans("ab cd")
    assert first_tokens(np.array([[0, 0], [0, 1], [1, 2], [3, 5], [0, 0]]), spans).tolist() == [1, 3]


@pytest.mark.parametrize("aggregation, expected", [
    ("first", []),  # 'a' (the first sub-token of alice) says O
    ("max", [("PER", 0, 5)]),  # its other sub-tokens say B-PER with more confidence
    ("average", [("PER", 0, 5)]),
])
def test_aggregation_as_transformers_pipeline(aggregation, expected):
    _, vocab = _tokenizer()
    table = np.zeros((len(vocab), 5), dtype=np.float32)
    table[:, 0] = 4  # O by default
    table[vocab["a"]] = [1, 0, 0, 0.5, 0]  # O, barely
    for piece in ("##l", "##i", "##c", "##e"):
        table[vocab[piece]] = [0, 0, 0, 6, 0]  # B-PER
    runner = FakeRunner(max_length=64, table=table)
    task = TokenClassification(LABELS)
    found = task.entities(runner, "alice was it", aggregation)
    assert [(e.label, e.start, e.end) for e in found] == expected
    with pytest.raises(ConfigError, match="aggregation must be one of first, max, average"):
        task.entities(runner, "x", "simple")


def test_entities_group_words_by_bio():
    _, vocab = _tokenizer()
    table = np.zeros((len(vocab), 5), dtype=np.float32)
    table[:, 0] = 4
    table[vocab["b"], 3] = 9  # bob: B-PER (first sub-token)
    table[vocab["s"], 4] = 9  # smith: I-PER
    table[vocab["r"], 1] = 9  # rome: B-LOC
    table[vocab["o"], 1] = 9  # oslo: B-LOC (a B- starts a new entity)
    runner = FakeRunner(max_length=64, table=table)
    text = "the  bob smith\tin rome oslo."
    found = TokenClassification(LABELS).entities(runner, [text, ""])
    assert [(e.label, e.text) for e in found[0]] == [("PER", "bob smith"), ("LOC", "rome"), ("LOC", "oslo")]
    assert all(text[e.start:e.end] == e.text and 0 < e.score <= 1 for e in found[0])
    assert found[1] == []


# -- the whole path on a tiny model --------------------------------------------------------------------
@pytest.fixture(scope="module")
def ner_checkpoint(tmp_path_factory, tiny_model):
    from lpm_edge.train import TrainConfig, train

    folder = tmp_path_factory.mktemp("ner")
    data = write_conll(folder / "train.conll", ner_sentences(400))
    config = TrainConfig(out=folder / "ckpt", model=tiny_model, data=str(data), task="token-classification",
                         epochs=6, batch_size=16, learning_rate=3e-3, max_length=32, patience=None, threads=1,
                         metric="entity_f1")
    return train(config)


@pytest.mark.slow
def test_train_export_load_entities(ner_checkpoint, tmp_path):
    import lpm_edge
    from lpm_edge.evaluate import evaluate
    from lpm_edge.export import export
    from lpm_edge.export.pipeline import checkpoint_dataset
    from lpm_edge.reference import TorchClassifier
    from lpm_edge.train import read_training_info

    info = read_training_info(ner_checkpoint)
    assert info["task"]["kind"] == "token-classification" and info["test"]["entity_f1"] > 0.8
    bundle = export(ner_checkpoint, tmp_path / "b", "cpu-int8")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["task"]["kind"] == "token-classification"
    assert manifest["metrics"]["metric"] == "entity_f1" and manifest["metrics"]["bundle_accuracy"] > 0.8
    model = lpm_edge.load(bundle, spin=False)
    text = "the movie alice smith was in rome"
    found = model.entities(text)
    assert [(e.label, e.text) for e in found] == [("PER", "alice smith"), ("LOC", "rome")]
    with pytest.raises(ConfigError, match=r"offers entities\(\), not predict\(\)"):
        model.predict(text)
    # A text longer than max_length (32 tokens) is windowed: the entities at its end are found too.
    long = " ".join(["the plot was very"] * 12) + " bob jones and paris"
    assert [(e.label, e.text) for e in model.entities(long, aggregation="first")][-2:] == [
        ("PER", "bob jones"), ("LOC", "paris")]
    assert long[model.entities(long)[-1].start:] == "paris"
    # The evaluator: full model vs bundle, entity F1 with its interval.
    data = checkpoint_dataset(None, info)
    task = model.task
    ref = TorchClassifier(ner_checkpoint, max_length=32)  # its head and outputs from training.json's task
    assert type(ref.model).__name__ == "BertForTokenClassification"
    full, got = evaluate(data.test, [("full", ref.logits), ("int8", model.logits)], task)
    assert full.value > 0.8 and got.loss_ci95 is not None and got.loss_ci95[0] <= got.loss_points <= got.loss_ci95[1]
    # Entities as transformers' pipeline finds them with the same model, for each aggregation.
    from transformers import pipeline

    hf = pipeline("token-classification", model=str(ner_checkpoint), device="cpu")
    for agg in ("first", "max", "average"):
        for t in (text, "bob smith and carol went to oslo and rome", "the plot paris was alice"):
            theirs = [(e["entity_group"], e["start"], e["end"], e["score"]) for e in hf(t, aggregation_strategy=agg)]
            ours = [(e.label, e.start, e.end, e.score) for e in task.entities(ref, t, agg)]
            assert [x[:3] for x in ours] == [x[:3] for x in theirs], (agg, t)
            assert np.allclose([x[3] for x in ours], [x[3] for x in theirs], atol=1e-4)


@pytest.mark.slow
def test_pruned_distilled_export(ner_checkpoint, tmp_path):
    import lpm_edge
    from lpm_edge.export import export, load_recipe
    from lpm_edge.export.recipe import DistillConfig, PruneConfig

    recipe = load_recipe("cpu-pruned-int8")  # gradient importance over token labels, vocabulary pruning
    recipe = recipe.replace(prune=PruneConfig(**{**recipe.prune.__dict__, "layers": 1, "importance_batches": 4}),
                            distill=DistillConfig(**{**recipe.distill.__dict__, "steps": 60, "batch_size": 16,
                                                     "learning_rate": 1e-3}))
    bundle = export(ner_checkpoint, tmp_path / "p", recipe, max_accuracy_drop=100)
    manifest = json.loads((bundle / "manifest.json").read_text())
    compression = manifest["source"]["compression"]
    assert compression["layers"]["after"] < compression["layers"]["before"]
    assert compression["distill"]["kl_after"] < compression["distill"]["kl_before"]
    assert manifest["metrics"]["bundle_accuracy"] > 0.5
    model = lpm_edge.load(bundle, spin=False)
    assert [e.label for e in model.entities("the carol jones was in oslo")] == ["PER", "LOC"]


def test_builtin_data_set_is_read_from_its_installed_package(tmp_path, monkeypatch):
    from lpm_edge.errors import MissingDependencyError

    from importlib import metadata

    def not_installed(name: str):
        raise metadata.PackageNotFoundError(name)

    with monkeypatch.context() as m:  # as on a machine without the package, whether this one has it or not
        m.setattr(metadata, "distribution", not_installed)
        with pytest.raises(MissingDependencyError, match=r'pip install --no-deps "hironsancorpus==0.1.2"'):
            load_dataset("hironsan-ja-ner", task="token-classification")
    site = tmp_path / "site"  # a distribution found first on sys.path, without and then with its file
    info = site / "hironsancorpus-0.1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hironsancorpus\nVersion: 0.1.2\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(MissingDependencyError, match="hironsan-ja-ner data set"):  # installed but without its file
        load_dataset("hironsan-ja-ner", task="token-classification")
    (site / "hironsan" / "corpus").mkdir(parents=True)
    write_conll(site / "hironsan" / "corpus" / "iob_sents.txt", ner_sentences(50), docstart=False)
    data = load_dataset("hironsan-ja-ner", task="token-classification")
    assert data.labels == LABELS and sum(data.sizes().values()) == 50


def test_cli_train_refuses_a_bad_tag_with_file_and_line(tmp_path, monkeypatch, capsys, tiny_model):
    from lpm_edge import cli

    monkeypatch.setattr(cli, "_configure_logging", lambda debug, quiet: None)
    bad = tmp_path / "bad.conll"
    bad.write_text("Ann B-PER\nwent O\n\nBob B-PER\nsat BAD\n", encoding="utf-8")
    code = cli.main(["train", "--task", "token-classification", "--data", str(bad), "--model", str(tiny_model),
                     "--out", str(tmp_path / "ckpt")])
    err = capsys.readouterr().err
    assert code == 1 and f"{bad}:5: tag 'BAD' is not O, B-TYPE or I-TYPE" in err and len(err.strip().splitlines()) == 1


def test_training_rows_cover_long_sentences_with_overlapping_windows(tiny_model):
    """A sentence longer than max_length trains as the runtime's windows: every word's tag is learnt
    (the last words too), each window within max_length, the overlap as the runtime's stride."""
    from transformers import AutoTokenizer

    from lpm_edge.data import Split
    from lpm_edge.tasks.token_windows import window_stride

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    words, tags = ner_sentences(1, seed=3)[0]
    long_words = words * 6 + ["bob", "paris"]
    long_tags = tags * 6 + ["B-PER", "B-LOC"]
    task = TokenClassification(LABELS)
    gold = tuple(LABELS.index(t) for t in long_tags)
    short = (" ".join(words), tuple(LABELS.index(t) for t in tags))
    split = Split((" ".join(long_words), short[0]), (gold, short[1]), "train", "x")
    rows = task.training_rows(tokenizer, split, max_length=16)
    assert len(rows) > 3 and all(len(r["input_ids"]) <= 16 for r in rows)
    *long_rows, short_row = rows
    assert [t for t in short_row["labels"] if t != -100] == list(short[1])  # one window, as before
    labelled = [t for r in long_rows for t in r["labels"] if t != -100]
    assert len(labelled) >= len(long_words) and labelled[-2:] == [LABELS.index("B-PER"), LABELS.index("B-LOC")]
    # consecutive windows share the runtime's stride of tokens
    stride = window_stride(16, tokenizer.num_special_tokens_to_add(pair=False))
    assert long_rows[0]["input_ids"][-1 - stride:-1] == long_rows[1]["input_ids"][1:1 + stride]
    # the words learnt, in order, are every word of the sentence (overlaps counted once)
    enc = tokenizer(" ".join(long_words), truncation=True, max_length=16, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True)
    starts = {enc["offset_mapping"][r][j][0] for r, row in enumerate(long_rows)
              for j, t in enumerate(row["labels"]) if t != -100}
    assert starts == {int(s) for s in word_spans(" ".join(long_words))[:, 0]}


@pytest.mark.slow
def test_int8_budget_miss_tries_the_rescues_then_raises_the_budget_error(ner_checkpoint, tmp_path, monkeypatch):
    """The int8 rescues run for per-token bundles (auto_exclude measures entity F1 through the windows),
    and a miss they cannot fix is an AccuracyBudgetError saying what was tried and what to do."""
    from lpm_edge.errors import AccuracyBudgetError
    from lpm_edge.export import export

    from ..export.test_rejected import _fake_drops

    recipes = _fake_drops(monkeypatch, [5.0, 3.0, 4.0, 6.0])
    out = tmp_path / "b"
    with pytest.raises(AccuracyBudgetError) as info:
        export(ner_checkpoint, out, "cpu-int8", max_accuracy_drop=1.0)
    message = str(info.value)
    assert [r["auto_exclude"] for r in recipes][:2] == [False, True]
    assert "entity_f1" in message and "quantize.auto_exclude" in message and "Next:" in message
    assert "lpm-edge accept" in message and not out.exists()


@pytest.mark.slow
def test_auto_exclude_measures_entity_f1_through_windows(ner_checkpoint, tmp_path):
    from lpm_edge.export import export, load_recipe
    from lpm_edge.export.recipe import QuantizeConfig

    recipe = load_recipe("cpu-int8")
    recipe = recipe.replace(quantize=QuantizeConfig(**{**recipe.quantize.__dict__, "auto_exclude": True}))
    bundle = export(ner_checkpoint, tmp_path / "b", recipe, max_accuracy_drop=100.0)
    manifest = json.loads((bundle / "manifest.json").read_text())
    stage = manifest["build"]["stages"]["int8_auto_exclude"]
    assert stage["excluded_groups"] == [] and len(stage["attempts"]) == 1
    # the drop auto_exclude measured is the one the export's check measures on the same texts
    assert stage["attempts"][0]["accuracy_drop_points"] == pytest.approx(
        manifest["metrics"]["accuracy_drop_points"], abs=1e-6)
