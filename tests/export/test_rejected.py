"""A budget miss keeps the student and the bundle (OUT.rejected), tries the int8 rescue, says what to do next."""

import json
import logging
import os
from pathlib import Path

import pytest

import lpm_edge
from lpm_edge.cli import main
from lpm_edge.errors import AccuracyBudgetError, BundleError
from lpm_edge.export import export
from lpm_edge.export.recipe import DistillConfig, PruneConfig, QuantizeConfig, Recipe
from lpm_edge.export.rejected import accept
from lpm_edge.export.workdir import CACHE_ENV, rejected_dir


def _pruned(budget=None):
    from lpm_edge.export.recipe import CheckConfig

    return Recipe(name="tiny-pruned", max_length=32, prune=PruneConfig(heads=0.5, ffn=0.5, importance_batches=2),
                  distill=DistillConfig(steps=4, batch_size=16), quantize=QuantizeConfig(mode="dynamic"),
                  check=CheckConfig(max_accuracy_drop=budget))


def test_budget_miss_keeps_bundle_and_student_and_rerun_reuses_student(tiny_checkpoint, tmp_path, monkeypatch,
                                                                       caplog, capsys):
    import lpm_edge.export.compress as C

    calls = []
    real = C.distill
    monkeypatch.setattr(C, "distill", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = tmp_path / "bundle"
    # A negative budget demands a gain no bundle can make: the student misses it too, so no rescue.
    with pytest.raises(AccuracyBudgetError) as info:
        export(tiny_checkpoint, out, _pruned(), max_accuracy_drop=-100)
    message = str(info.value)
    assert "\n" not in message
    assert f"no bundle written to {out}" in message and str(rejected_dir(out)) in message
    assert "Tried: recipe tiny-pruned as written" in message and "auto_exclude" not in message
    assert f"lpm-edge accept {rejected_dir(out)} --out {out}" in message and "lpm-edge search" in message
    assert "distill longer or prune less" in message
    assert f"the distilled student is kept in {os.environ[CACHE_ENV]}, so a re-run skips distillation" in message
    assert not out.exists()
    m = json.loads((rejected_dir(out) / "manifest.json").read_text())["metrics"]
    assert m["accepted"] is False and "over the allowed -100" in m["rejected_reason"]
    assert m["max_accuracy_drop"] == -100
    with caplog.at_level(logging.WARNING, logger="lpm_edge.runtime"):
        lpm_edge.load(rejected_dir(out), providers="cpu")
    assert "missed its accuracy budget" in caplog.text and "lpm-edge accept" in caplog.text
    assert main(["inspect", str(rejected_dir(out))]) == 0
    assert "REJECTED: the bundle's accuracy" in capsys.readouterr().out

    export(tiny_checkpoint, out, _pruned(), max_accuracy_drop=100)  # a larger budget: passes, same student
    assert len(calls) == 1
    assert json.loads((out / "manifest.json").read_text())["metrics"]["accepted"] is True
    assert any(p.is_dir() for p in Path(os.environ[CACHE_ENV]).iterdir())


def test_int8_miss_is_rescued_with_auto_exclude(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    from lpm_edge.export import rejected

    # The first try's bundle misses (faked: its drop is 5 points); the rescue's is measured as it is.
    real = rejected.budget_miss
    seen = []

    def first_misses(metrics, budget):
        seen.append(metrics["accuracy_drop_points"])
        if len(seen) == 1:
            metrics = {**metrics, "accuracy_drop_points": 5.0, "source_accuracy": metrics["reference_accuracy"]}
        return real(metrics, budget)

    monkeypatch.setattr(rejected, "budget_miss", first_misses)
    out = tmp_path / "bundle"
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(tiny_checkpoint, out, "cpu-int8", max_accuracy_drop=1.0)
    assert "trying again with the most sensitive layers back in fp32" in caplog.text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recipe"]["quantize"]["auto_exclude"] is True and manifest["metrics"]["accepted"] is True
    assert rejected_dir(out).is_dir()  # the first try, kept


def _fake_drops(monkeypatch, drops):
    """Each export's measured drop becomes the next of `drops` (its fp32 student losing nothing), in
    the manifest too; returns the recipes measured, in order."""
    from lpm_edge.export import pipeline

    real, recipes = pipeline._measure, []

    def measure(bdir, *args, **kwargs):
        metrics, own = real(bdir, *args, **kwargs)
        recipes.append(json.loads((bdir / "manifest.json").read_text())["recipe"]["quantize"])
        return {**metrics, "accuracy_drop_points": drops[len(recipes) - 1],
                "source_accuracy": metrics["reference_accuracy"]}, own

    monkeypatch.setattr(pipeline, "_measure", measure)
    return recipes


def test_int8_miss_that_auto_exclude_cannot_rescue_tries_an_fp32_fallback(tiny_checkpoint, tmp_path, monkeypatch,
                                                                          caplog):
    recipes = _fake_drops(monkeypatch, [5.0, 4.0, 0.5])
    out = tmp_path / "bundle"
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(tiny_checkpoint, out, "cpu-int8", max_accuracy_drop=1.0)
    assert [r["auto_exclude"] for r in recipes] == [False, True, False]
    assert "trying again with an fp32 graph for batches of" in caplog.text
    manifest = json.loads((out / "manifest.json").read_text())
    low, high = manifest["recipe"]["quantize"]["fp32_tokens"]
    assert 1 < low <= high == manifest["max_length"]  # the long batches run in fp32
    assert manifest["model"]["fp32_fallback"]["tokens"] == [low, high] and manifest["metrics"]["accepted"] is True
    assert lpm_edge.load(out, providers="cpu").manifest.graph_for(high) == manifest["model"]["fp32_fallback"]["file"]
    kept = json.loads((rejected_dir(out) / "manifest.json").read_text())
    assert kept["metrics"]["accuracy_drop_points"] == 4.0  # the better of the two misses


def test_error_lists_every_rescue_and_the_least_bad_bundle_is_kept(tiny_checkpoint, tmp_path, monkeypatch):
    recipes = _fake_drops(monkeypatch, [5.0, 3.0, 4.0, 6.0])
    out = tmp_path / "bundle"
    with pytest.raises(AccuracyBudgetError) as info:
        export(tiny_checkpoint, out, "cpu-int8", max_accuracy_drop=1.0)
    message = str(info.value)
    assert len(recipes) == 4 and [r["fp32_tokens"] is not None for r in recipes] == [False, False, True, True]
    high = recipes[2]["fp32_tokens"][1]
    split = recipes[2]["fp32_tokens"][0] - 1
    assert recipes[3]["fp32_tokens"] == [0, split]
    assert (f"Tried: recipe cpu-int8 as written (drop 5.00); the most sensitive layers back in fp32 "
            f"(quantize.auto_exclude) (drop 3.00); an fp32 graph for batches of {split + 1}-{high} tokens "
            f"(quantize.fp32_tokens) (drop 4.00); an fp32 graph for batches of 0-{split} tokens "
            f"(quantize.fp32_tokens) (drop 6.00)") in message
    assert "is 3.00 points below" in message  # the reason of the bundle kept
    kept = json.loads((rejected_dir(out) / "manifest.json").read_text())
    assert kept["metrics"]["accuracy_drop_points"] == 3.0 and kept["recipe"]["quantize"]["auto_exclude"] is True
    assert [p.name for p in tmp_path.iterdir()] == [rejected_dir(out).name]  # no scratch copy left
    lpm_edge.load(rejected_dir(out), providers="cpu")  # files and hashes whole after the restore


def test_accept_publishes_a_rejected_bundle(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "b"
    with pytest.raises(AccuracyBudgetError):
        export(tiny_checkpoint, out, "cpu-fp32", max_accuracy_drop=-100)
    assert main(["accept", str(rejected_dir(out))]) == 0
    assert "accepted over its budget" in capsys.readouterr().out
    m = json.loads((out / "manifest.json").read_text())["metrics"]
    assert m["accepted"] is True and "over the allowed -100" in m["accepted_over_budget"]
    lpm_edge.load(out, providers="cpu")  # hashes still hold
    with pytest.raises(BundleError, match="not a rejected bundle"):
        accept(out, tmp_path / "c")
    assert main(["accept", str(rejected_dir(out))]) == 1  # OUT exists now: --force needed


def _vocab_pruned_int8(budget=None):
    from lpm_edge.export.recipe import CheckConfig

    return Recipe(name="tiny-vocab-int8", max_length=32, vocab_prune=True, quantize=QuantizeConfig(mode="dynamic"),
                  check=CheckConfig(max_accuracy_drop=budget))


@pytest.mark.parametrize("changed", [3, 0])
def test_vocab_pruning_miss_is_rescued_with_the_full_vocabulary(tiny_checkpoint, tmp_path, monkeypatch, caplog,
                                                                changed):
    """Vocabulary pruning that changed evaluation texts' tokens (words the training texts never used)
    and missed the budget is tried again with the full vocabulary, before the int8 rescues; when it
    changed no text, the full vocabulary cannot help and is not tried."""
    from lpm_edge.export import pipeline

    real = pipeline._prune_vocab

    def prune_vocab(*args, **kwargs):
        student, tokenizer, compression = real(*args, **kwargs)
        compression["vocab"]["eval_texts_changed"] = changed
        return student, tokenizer, compression

    monkeypatch.setattr(pipeline, "_prune_vocab", prune_vocab)
    vocab_prune = []
    real_measure = pipeline._measure

    def measure(bdir, *args, **kwargs):
        metrics, own = real_measure(bdir, *args, **kwargs)
        vocab_prune.append(json.loads((bdir / "manifest.json").read_text())["recipe"]["vocab_prune"])
        drop = 5.0 if len(vocab_prune) == 1 else 0.5
        return {**metrics, "accuracy_drop_points": drop, "source_accuracy": metrics["reference_accuracy"]}, own

    monkeypatch.setattr(pipeline, "_measure", measure)
    out = tmp_path / "bundle"
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        export(tiny_checkpoint, out, _vocab_pruned_int8(), max_accuracy_drop=1.0)
    manifest = json.loads((out / "manifest.json").read_text())
    if changed:
        assert vocab_prune == [True, False] and manifest["recipe"]["vocab_prune"] is False
        assert "trying again with the full vocabulary (vocab_prune = false; pruning changed the tokens of 3" in caplog.text
    else:  # the int8 rescue came first instead, keeping the pruned vocabulary
        assert vocab_prune == [True, True] and manifest["recipe"]["quantize"]["auto_exclude"] is True
        assert "full vocabulary" not in caplog.text
