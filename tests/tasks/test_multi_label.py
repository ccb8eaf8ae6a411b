"""The multi-label task: data (JSONL lists, `|` in CSV), thresholds, metrics, bad input; and on a
tiny model train -> export (cpu-int8, pruned + distilled) -> load -> predict -> bench."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest

from lpm_edge import tasks
from lpm_edge.data import load_dataset
from lpm_edge.errors import ConfigError, DataError
from lpm_edge.tasks.multi_label import MultiLabel, MultiLabelPrediction, best_threshold, parse_labels

from ..conftest import FILLER, NEGATIVE, POSITIVE

LABELS = ("neg", "pos")


def multi_rows(n: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """Texts holding a positive word, a negative word, both or neither; labels say which."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        labels = [name for name, bit in (("neg", i % 2), ("pos", (i // 2) % 2)) if bit]
        words = rng.choices(FILLER, k=rng.randint(2, 10))
        for name in labels:
            words.insert(rng.randrange(len(words) + 1), rng.choice(NEGATIVE if name == "neg" else POSITIVE))
        rows.append((" ".join(words), labels))
    return rows


def write_jsonl(path: Path, rows: list[tuple[str, list[str]]]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in rows))
    return path


def write_csv(path: Path, rows: list[tuple[str, list[str]]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "labels"])
        w.writerows((t, "|".join(ls)) for t, ls in rows)
    return path


def task(thresholds=None) -> MultiLabel:
    return tasks.from_section("multi-label", LABELS, {"thresholds": thresholds} if thresholds else {})


# -- data -------------------------------------------------------------------------------------------
def test_registered():
    assert tasks.task_class("multi-label") is MultiLabel


@pytest.mark.parametrize("raw, names", [
    (["a", "b"], ("a", "b")), ([], ()), (None, ()), ("a|b", ("a", "b")), (" a | b |", ("a", "b")), ("", ()),
    (["a", "a"], ("a",)),
])
def test_parse_labels(raw, names):
    assert parse_labels(raw, "f:1") == names


@pytest.mark.parametrize("raw", [[{"x": 1}], ["a", ""], 3.5, [True]])
def test_parse_labels_refuses(raw):
    with pytest.raises(DataError, match="f:7"):
        parse_labels(raw, "f:7")


@pytest.mark.parametrize("writer", [write_jsonl, write_csv])
def test_load_dataset_reads_lists_and_empty_rows(tmp_path, writer):
    path = writer(tmp_path / ("d.jsonl" if writer is write_jsonl else "d.csv"), multi_rows(100))
    ds = load_dataset(path, label_column="labels", task="multi-label")
    assert ds.labels == LABELS
    gold = np.asarray(ds.train.labels + ds.validation.labels + ds.test.labels)
    assert gold.shape == (100, 2)
    assert {tuple(r) for r in gold} == {(0, 0), (1, 0), (0, 1), (1, 1)}  # a row may have none


def test_single_label_still_refuses_empty_and_str_lists(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "a b", "label": ""}) + "\n")
    with pytest.raises(DataError, match="d.jsonl:1: empty label"):
        load_dataset(path)


def test_unknown_label_in_validation_names_file_and_line(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", multi_rows(40))
    val = write_jsonl(tmp_path / "val.jsonl", [("good movie", ["pos"]), ("bad movie", ["neg", "meh"])])
    with pytest.raises(DataError, match=r"val.jsonl:2: label 'meh' never occurs in"):
        load_dataset(train, label_column="labels", validation=val, task="multi-label")


def test_label_on_every_row_is_refused(tmp_path):
    rows = [(t, ["pos", *ls]) for t, ls in multi_rows(30)]
    path = write_jsonl(tmp_path / "d.jsonl", [(t, sorted(set(ls))) for t, ls in rows])
    with pytest.raises(DataError, match=r"d.jsonl:1-30: the label 'pos' is on every training row"):
        load_dataset(path, label_column="labels", task="multi-label")


def test_no_labels_at_all_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [(t, []) for t, _ in multi_rows(20)])
    with pytest.raises(DataError, match="no training row has a label"):
        load_dataset(path, label_column="labels", task="multi-label")


def test_label_missing_from_the_training_split_is_refused():
    t = task()
    with pytest.raises(DataError, match="'pos' is on none of the 3 training texts"):
        t.check_training([(1, 0), (0, 0), (1, 0)], "d.jsonl")
    with pytest.raises(DataError, match="'neg' is on every one"):
        t.check_training([(1, 0), (1, 1), (1, 0)], "d.jsonl")
    t.check_training([(1, 0), (0, 1)], "d.jsonl")


# -- record -----------------------------------------------------------------------------------------
def test_section_round_trip_and_validation():
    t = task([0.3, 0.7])
    assert t.section() == {"thresholds": [0.3, 0.7]}
    again = tasks.from_training({"task": tasks.record(t)}, ())
    assert again.labels == LABELS and list(again.thresholds) == pytest.approx([0.3, 0.7])
    assert task().section() == {"thresholds": [0.5, 0.5]}
    for bad in ([0.5], [0.5, 1.5], ["a", 0.5], 0.5, [0.5, float("nan")]):
        with pytest.raises(ConfigError, match="thresholds"):
            tasks.from_section("multi-label", LABELS, {"thresholds": bad}, "manifest.json: task")


def test_bundle_refuses_bad_thresholds(tmp_path, tiny_bundle):
    import shutil

    from lpm_edge.bundle import read_manifest
    from lpm_edge.errors import BundleError

    bdir = tmp_path / "b"
    shutil.copytree(tiny_bundle, bdir)
    doc = json.loads((bdir / "manifest.json").read_text())
    doc["task"] = {**doc["task"], "kind": "multi-label", "thresholds": [0.5]}
    (bdir / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(BundleError, match="thresholds"):
        read_manifest(bdir)


# -- thresholds, metrics, predictions ---------------------------------------------------------------
def test_best_threshold_maximises_f1():
    cut, f1 = best_threshold(np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 0, 1, 0]))
    assert (cut, f1) == (pytest.approx(0.25), pytest.approx(0.8))
    assert best_threshold(np.array([0.9, 0.1]), np.array([0, 0]))[0] == 0.5  # nothing to tune


def test_fit_tunes_each_label_and_metrics_follow():
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    # label pos: positives score 0.3 and 0.4, negatives 0.1 and 0.2: 0.5 misses both, tuning finds them
    scores = np.array([[0.9, 0.3], [0.8, 0.4], [0.1, 0.1], [0.2, 0.2]])
    gold = [(1, 1), (1, 1), (0, 0), (0, 0)]
    before = task().metrics(gold, logit(scores))
    assert before["f1/neg"] == 1.0 and before["f1/pos"] == 0.0 and before["micro_f1"] == pytest.approx(2 / 3)
    assert before["exact_match"] == 0.5
    tuned = task().fit(gold, logit(scores))
    assert tuned.thresholds[1] == pytest.approx(0.25)
    after = tuned.metrics(gold, logit(scores))
    assert after["micro_f1"] == after["macro_f1"] == after["exact_match"] == 1.0


def test_train_metrics_tune_until_thresholds_are_recorded():
    logits = np.log(np.array([[0.3, 0.2], [0.1, 0.4]]) / (1 - np.array([[0.3, 0.2], [0.1, 0.4]])))
    gold = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert task().metrics(gold.astype(int), logits)["micro_f1"] == 0.0  # nothing over 0.5
    assert task().train_metrics(gold, logits)["micro_f1"] == 1.0  # while training: tuned on these outputs
    assert task([0.5, 0.5]).train_metrics(gold, logits)["micro_f1"] == 0.0  # recorded thresholds stay


def test_metrics_by_hand():
    pred_scores = np.array([[0.9, 0.9], [0.9, 0.1], [0.1, 0.1]])
    gold = [(1, 0), (1, 1), (0, 0)]
    m = task().metrics(gold, np.log(pred_scores / (1 - pred_scores)))
    # neg: tp 2; pos: fp 1, fn 1 -> micro 2*2/(4+2); per label 1.0 and 0.0
    assert m["micro_f1"] == pytest.approx(4 / 6)
    assert m["f1/neg"] == 1.0 and m["f1/pos"] == 0.0 and m["macro_f1"] == 0.5
    assert m["exact_match"] == pytest.approx(1 / 3)
    # a label with neither gold nor predicted positives scores 1 (nothing to find, nothing found)
    assert task().metrics([(1, 0)], np.array([[3.0, -3.0]]))["f1/pos"] == 1.0


def test_predict_returns_labels_over_their_thresholds():
    t = task([0.5, 0.2])
    logits = np.log(np.array([[0.6, 0.3], [0.4, 0.1], [0.7, 0.9]]) / (1 - np.array([[0.6, 0.3], [0.4, 0.1], [0.7, 0.9]])))
    preds = t.predictions(logits)
    assert all(isinstance(p, MultiLabelPrediction) for p in preds)
    assert [p.labels for p in preds] == [("neg", "pos"), (), ("pos", "neg")]  # highest score first
    assert preds[0].scores == {"neg": pytest.approx(0.6), "pos": pytest.approx(0.3)}
    assert preds[1].all_scores["neg"] == pytest.approx(0.4)
    assert t.scores(logits) == pytest.approx(np.array([[0.6, 0.3], [0.4, 0.1], [0.7, 0.9]]), abs=1e-6)


def test_evaluator_bootstraps_micro_f1():
    from lpm_edge.data import Split
    from lpm_edge.evaluate import compare

    rng = np.random.default_rng(0)
    gold = tuple(tuple(int(v) for v in row) for row in rng.integers(0, 2, (60, 2)))
    good = (np.asarray(gold) * 2 - 1) * 3.0
    noisy = good + rng.normal(0, 4, good.shape)
    ref, cand = compare(Split(tuple("t%d" % i for i in range(60)), gold, "test"), [("a", good), ("b", noisy)],
                        task(), n_boot=200)
    assert ref.metric == "micro_f1" and ref.value == 1.0
    assert cand.loss_points > 0 and cand.loss_ci95[0] <= cand.loss_points <= cand.loss_ci95[1]
    assert 0 <= cand.agreement < 1


def test_evaluator_reads_each_model_by_its_own_thresholds():
    """A model whose scores all sit lower decides as well at thresholds fitted to it: read by the
    reference's thresholds it loses everything, by its own (`Task.fitted`) nothing."""
    from lpm_edge.data import Split
    from lpm_edge.evaluate import compare

    rng = np.random.default_rng(1)
    gold = tuple(tuple(int(v) for v in row) for row in rng.integers(0, 2, (80, 2)))
    good = (np.asarray(gold) * 2 - 1) * 3.0
    low = good - 6.0  # the same ranking, every score under 0.5
    split, ref = Split(tuple("t%d" % i for i in range(80)), gold, "validation"), task([0.5, 0.5])
    own = ref.fitted(gold, low)
    assert own.section()["thresholds"] != [0.5, 0.5]
    assert tasks.from_section("regression", ("score",), {}).fitted([1.0], np.ones((1, 1))).section() == {}
    regression = tasks.from_section("regression", ("score",), {})
    assert ref.reader_for(own) is own and ref.reader_for(None) is ref and regression.reader_for(own) is regression
    _, shared = compare(split, [("full", good), ("int8", low)], ref, n_boot=100)
    _, fitted = compare(split, [("full", good), ("int8", low)], ref, n_boot=100, tasks=[None, own])
    assert shared.value == 0.0 and shared.loss_points == pytest.approx(100.0)
    assert fitted.value == 1.0 and fitted.loss_points == 0.0 and fitted.loss_ci95 == (0.0, 0.0)
    assert fitted.agreement == 1.0  # read by the shared thresholds it agrees only where both find no label
    assert shared.agreement == pytest.approx(np.mean(~np.asarray(gold).any(axis=1)))
    # export's budget check reads a candidate graph the same way: by thresholds fitted to its scores
    assert ref.metric_loss(gold, good, low) == pytest.approx(100.0) and ref.fitted_loss(gold, good, low) == 0.0


def test_distill_loss_and_divergence():
    torch = pytest.importorskip("torch")
    t = task()
    s, te = torch.tensor([[2.0, -1.0]]), torch.tensor([[2.0, -1.0]])
    assert float(t.divergence(s, te)) == pytest.approx(0.0, abs=1e-6)
    assert float(t.divergence(torch.tensor([[-2.0, 1.0]]), te)) > 0.5
    gold = torch.tensor([[1, 0]])
    soft_only = t.distill_loss(s, te, gold, 2.0, 1.0)
    mixed = t.distill_loss(s, te, gold, 2.0, 0.5)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(s, gold.float())
    assert float(mixed) == pytest.approx(0.5 * float(soft_only) + 0.5 * float(bce), rel=1e-5)
    student = torch.zeros(1, 2, requires_grad=True)
    t.distill_loss(student, te, gold, 2.0, 0.5).backward()
    assert student.grad[0, 0] < 0 < student.grad[0, 1]  # towards the teacher and the gold


# -- end to end on a tiny model -------------------------------------------------------------------
@pytest.fixture(scope="module")
def ml_data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("ml-data") / "ml.jsonl", multi_rows(400))


@pytest.fixture(scope="module")
def ml_checkpoint(tmp_path_factory, tiny_config, ml_data) -> Path:
    from lpm_edge.train import train

    out = tmp_path_factory.mktemp("ml-ckpt") / "checkpoint"
    return train(tiny_config(out, data=str(ml_data), task="multi-label", label_column="labels", epochs=6))


@pytest.mark.slow
def test_trained_checkpoint_records_thresholds_and_metrics(ml_checkpoint):
    from transformers import AutoConfig

    info = json.loads((ml_checkpoint / "training.json").read_text())
    assert info["task"]["kind"] == "multi-label" and info["task"]["labels"] == list(LABELS)
    assert len(info["task"]["thresholds"]) == 2 and all(0 < t < 1 for t in info["task"]["thresholds"])
    assert info["best"]["metric"] == "micro_f1"
    assert {"micro_f1", "macro_f1", "exact_match", "f1/neg", "f1/pos"} <= set(info["test"])
    assert info["test"]["micro_f1"] > 0.9, info["test"]
    assert AutoConfig.from_pretrained(ml_checkpoint).problem_type == "multi_label_classification"


@pytest.fixture(scope="module")
def ml_bundle(tmp_path_factory, ml_checkpoint) -> Path:
    from lpm_edge.export import export

    return export(ml_checkpoint, tmp_path_factory.mktemp("ml-bundles") / "int8", "cpu-int8")


@pytest.mark.slow
def test_int8_bundle_predicts_label_sets(ml_bundle, ml_checkpoint):
    import lpm_edge
    from lpm_edge.bundle import read_manifest

    manifest = read_manifest(ml_bundle)
    info = json.loads((ml_checkpoint / "training.json").read_text())
    assert manifest.task == "multi-label"
    assert manifest.metrics["metric"] == "micro_f1" and manifest.metrics["bundle_accuracy"] > 0.9
    clf = lpm_edge.load(ml_bundle)
    # its thresholds are fitted to its own scores on the validation split, as training fitted the full model's
    from lpm_edge.export.pipeline import checkpoint_dataset

    validation = checkpoint_dataset(None, info).validation
    own = task(info["task"]["thresholds"]).fit(validation.labels, clf.logits(list(validation.texts)))
    assert manifest.task_info["thresholds"] == own.section()["thresholds"]
    assert manifest.metrics["bundle_accuracy"] == pytest.approx(own.metrics(validation.labels, clf.logits(
        list(validation.texts)))["micro_f1"])
    preds = clf.predict(["the film was great and awful", "the plot was superb", "the movie and the story",
                         "it was boring"])
    assert [p.labels for p in preds] == [("neg", "pos") if preds[0].labels[0] == "neg" else ("pos", "neg"),
                                         ("pos",), (), ("neg",)]
    probs = clf.predict_proba(["the plot was superb"])
    thresholds = manifest.task_info["thresholds"]
    assert probs.shape == (1, 2) and probs[0, 1] >= thresholds[1] and probs[0, 0] < thresholds[0]
    assert clf.predict("it was boring").labels == ("neg",)


@pytest.mark.slow
def test_pruned_distilled_bundle(tmp_path, ml_checkpoint):
    import lpm_edge
    from lpm_edge.bundle import read_manifest
    from lpm_edge.export import export, load_recipe
    from lpm_edge.export.recipe import DistillConfig

    recipe = load_recipe("cpu-pruned-int8")
    recipe = recipe.replace(distill=DistillConfig(**{**recipe.distill.__dict__, "steps": 40}))
    out = export(ml_checkpoint, tmp_path / "pruned", recipe, max_accuracy_drop=100.0, student_cache=False)
    manifest = read_manifest(out)
    compression = json.loads((out / "manifest.json").read_text())["source"]["compression"]
    assert compression["heads"] == {"before": 4, "after": 3} and compression["ffn"] == {"before": 64, "after": 32}
    distilled = compression["distill"]
    assert distilled["steps"] == 40 and distilled["kl_after"] < distilled["kl_before"], distilled
    assert manifest.task == "multi-label"
    assert manifest.metrics["bundle_accuracy"] > 0.8, manifest.metrics
    assert lpm_edge.load(out).predict("the plot was superb").labels == ("pos",)


@pytest.mark.slow
def test_bench_reports_micro_f1(tmp_path, ml_bundle, ml_checkpoint):
    import lpm_edge
    from lpm_edge.bench import bench
    from lpm_edge.export.pipeline import checkpoint_dataset

    report = bench([ml_bundle], ml_checkpoint, tmp_path / "bench", quick=True)
    doc = json.loads((tmp_path / "bench" / "report.json").read_text())
    cands = doc["candidates"]
    assert cands[1]["metric"] == "micro_f1" and "f1/pos" in cands[1] and cands[1]["loss_ci95"] is not None
    # the metrics read the raw outputs with the recorded thresholds: the full model scores as training said
    info = json.loads((ml_checkpoint / "training.json").read_text())
    assert cands[0]["micro_f1"] == pytest.approx(info["test"]["micro_f1"])
    assert cands[0]["exact_match"] == pytest.approx(info["test"]["exact_match"])
    # the bundle's, with the thresholds its manifest carries (fitted to its own scores at export)
    test = checkpoint_dataset(None, info).test
    clf = lpm_edge.load(ml_bundle)
    assert cands[1]["micro_f1"] == pytest.approx(clf.task.metrics(test.labels, clf.logits(list(test.texts)))["micro_f1"])
    md = (tmp_path / "bench" / "report.md").read_text()
    assert "| model | micro-F1 | loss, points" in md and "## Micro-F1" in md
    assert report is not None


def test_records_are_the_servers_json():
    t = task([0.5, 0.2])
    [rec] = t.records(np.log([[0.6 / 0.4, 0.3 / 0.7]]))  # the logits of sigmoid scores 0.6 and 0.3
    assert rec == {"labels": ["neg", "pos"], "scores": {"neg": pytest.approx(0.6), "pos": pytest.approx(0.3)},
                   "all_scores": {"neg": pytest.approx(0.6), "pos": pytest.approx(0.3)}}
    single = tasks.from_section("text-classification", LABELS)
    assert single.records(np.array([[0.3, 0.7]]))[0]["label"] == "pos"


@pytest.mark.slow
def test_serve_answers_label_sets(ml_bundle):
    from ..serve.conftest import Server

    server = Server(ml_bundle)
    try:
        status, body = server.request("POST", "/predict", {"texts": ["the plot was superb", "the movie and the story"]})
    finally:
        server.stop()
    assert status == 200, body
    assert [p["labels"] for p in body["predictions"]] == [["pos"], []]
    assert set(body["predictions"][0]["all_scores"]) == set(LABELS)


@pytest.mark.slow
def test_scoring_files_writes_label_sets(tmp_path, ml_bundle):
    from lpm_edge.scoring.run import score_file

    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,the plot was superb\n2,the movie and the story\n")
    out = score_file(ml_bundle, src, tmp_path / "out.csv", progress=False).output
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    clf = lpm_edge_load(ml_bundle)
    want = clf.predict(["the plot was superb", "the movie and the story"])
    assert [r["pred_labels"] for r in rows] == ["|".join(p.labels) for p in want]
    assert set(json.loads(rows[0]["pred_scores"])) == set(LABELS)


@pytest.mark.slow
def test_search_on_a_multi_label_checkpoint(tmp_path, ml_checkpoint):
    from lpm_edge.search import Candidate, search

    out = tmp_path / "search"
    result = search(ml_checkpoint, out, max_accuracy_drop=100.0, space=[Candidate(), Candidate(ffn=0.5, distill_steps=4)],
                    latency_texts=10)
    assert result.chosen is not None
    assert lpm_edge_load(out / "bundle").task.kind == "multi-label"
    assert json.loads((out / "search.json").read_text())["confirmed_on_test"]["n"] > 0


def lpm_edge_load(path):
    import lpm_edge

    return lpm_edge.load(path)


@pytest.mark.slow
def test_cli_train_export_with_csv_labels(tmp_path, tiny_model, capsys):
    from lpm_edge.cli import main

    data = write_csv(tmp_path / "ml.csv", multi_rows(400))
    ckpt, bundle = tmp_path / "ckpt", tmp_path / "bundle"
    assert main(["train", "--task", "multi-label", "--model", str(tiny_model), "--data", str(data),
                 "--label-column", "labels", "--out", str(ckpt), "--epochs", "6", "--batch-size", "16",
                 "--lr", "3e-3", "--max-length", "32", "--patience", "0", "--threads", "1"]) == 0
    assert "test micro_f1" in capsys.readouterr().out
    assert main(["export", str(ckpt), "--out", str(bundle), "--recipe", "cpu-int8"]) == 0
    assert "micro_f1" in capsys.readouterr().out
    assert main(["predict", str(bundle), "the plot was superb", "the movie and the story", "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)
    assert [a["labels"] for a in answers] == [["pos"], []] and set(answers[0]["all_scores"]) == set(LABELS)
    assert main(["inspect", str(bundle)]) == 0
    shown = capsys.readouterr().out
    assert "task        multi-label, thresholds [" in shown and "\nmicro_f1    " in shown
    assert main(["predict", str(bundle), "great and awful"]) == 0
    assert sorted(capsys.readouterr().out.split("\t")[0].split("|")) == ["neg", "pos"]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,labels\ngood movie,pos\nbad movie,neg|meh\n")
    assert main(["bench", str(bundle), "--reference", str(ckpt), "--test", str(bad), "--out",
                 str(tmp_path / "b"), "--quick"]) == 1
    assert "bad.csv:3: label 'meh' never occurs" in capsys.readouterr().err
