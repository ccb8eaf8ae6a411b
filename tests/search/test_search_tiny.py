"""`search` end to end on the tiny model: real exports, real timings, a tiny space."""

import json

import pytest

from lpm_edge.cli import main
from lpm_edge.search import Candidate, SearchBudgetError, search

SPACE = [Candidate(), Candidate(ffn=0.5, distill_steps=4)]


def test_search_keeps_fastest_within_budget_and_resumes(tiny_checkpoint, tmp_path):
    out = tmp_path / "search"
    result = search(tiny_checkpoint, out, max_accuracy_drop=100.0, space=SPACE, latency_texts=10)
    assert result.chosen is not None and (out / "bundle" / "manifest.json").is_file()
    assert result.chosen.latency_ms == min(p.latency_ms for p in result.points)  # everything is within 100
    doc = json.loads((out / "search.json").read_text())
    assert doc["confirmed_on_test"]["n"] > 0 and (out / "search.md").is_file() and (out / "front.png").is_file()
    # chosen on the validation split, confirmed on the test split, each named with its source
    cut = "tiny.csv (a 10% cut, seed 20240611)"
    assert doc["confirmed_on_test"]["split"] == "test" and doc["confirmed_on_test"]["source"].endswith(cut)
    assert doc["validation"]["source"].endswith(cut) and doc["validation"]["n"] == 40
    md = (out / "search.md").read_text()
    assert "validation accuracy" in md and "40 validation texts of" in md and "40 test texts of" in md
    before = json.loads((out / "cache.json").read_text())["points"]
    again = search(tiny_checkpoint, out, max_accuracy_drop=100.0, space=SPACE, latency_texts=10)
    assert [p.key for p in again.points] == [p.key for p in result.points]
    assert json.loads((out / "cache.json").read_text())["points"] == before  # nothing re-measured


def test_search_with_no_candidate_in_budget_keeps_best_and_fails(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import lpm_edge.search as search_module

    out = tmp_path / "search"
    code = main(["search", str(tiny_checkpoint), "--out", str(out), "--max-accuracy-drop", "-1"])
    assert code == 1 and "--max-accuracy-drop" in capsys.readouterr().err
    # The tiny task is easy enough for any candidate to match the teacher, so make the reference
    # unbeatable: the real exports then all miss a zero-point budget.
    monkeypatch.setattr(search_module, "_reference_accuracy", lambda *a: 1.5)
    with pytest.raises(SearchBudgetError, match="best-effort-bundle"):
        search(tiny_checkpoint, out, max_accuracy_drop=0.0, space=SPACE, latency_texts=5)
    assert (out / "best-effort-bundle" / "manifest.json").is_file()


def test_rescue_variants_export_and_measure(tiny_checkpoint, tmp_path):
    space = [Candidate(exclude_budget=100.0), Candidate(fp32_tokens=(0, 8))]
    result = search(tiny_checkpoint, tmp_path / "s", max_accuracy_drop=100.0, space=space, latency_texts=5)
    assert len(result.points) == 2
    fallback = json.loads((tmp_path / "s" / "bundles" / space[1].key() / "manifest.json").read_text())
    assert fallback["model"]["fp32_fallback"]["tokens"] == [0, 8]
    excl = json.loads((tmp_path / "s" / "bundles" / space[0].key() / "manifest.json").read_text())
    assert "int8_auto_exclude" in excl["build"]["stages"]


def test_cuda_target_refused_without_cuda(tiny_checkpoint, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has onnxruntime-gpu")
    from lpm_edge.errors import ProviderError

    with pytest.raises(ProviderError, match=r"lpm-edge\[gpu\]"):
        search(tiny_checkpoint, tmp_path / "s", target="cuda", space=SPACE)
    assert not (tmp_path / "s").exists()  # refused before any work


def test_resumed_search_anchors_to_a_cached_bundle(tiny_checkpoint, tmp_path):
    from lpm_edge.search.evaluate import BundleEvaluator
    from lpm_edge.search.pareto import Point

    out = tmp_path / "s"
    result = search(tiny_checkpoint, out, max_accuracy_drop=100.0, space=SPACE[:1], latency_texts=5)
    [point] = result.points
    gone = Point(key="gone", label="gone", accuracy=0.5, latency_ms=1.0, size_bytes=1, extra={"bundle": str(tmp_path)})
    ev = BundleEvaluator(tiny_checkpoint, out, ["a text"])
    ev.resume_anchor([Point(key="reference", label="full", accuracy=1, latency_ms=0, size_bytes=0), gone, point])
    assert ev.anchor is not None and ev.anchor[1] == point.latency_ms  # skips the one whose bundle is gone


def test_export_recipe_auto_keeps_the_chosen_bundle(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    import functools

    import lpm_edge.search as search_module

    monkeypatch.setattr(search_module, "search", functools.partial(search, space=SPACE, latency_texts=5))
    out = tmp_path / "auto"
    args = ["export", str(tiny_checkpoint), "--recipe", "auto", "--out", str(out), "--max-accuracy-drop", "100"]
    assert main(args) == 0
    chosen = json.loads((tmp_path / "auto.search" / "search.json").read_text())["chosen"]["key"]
    assert json.loads((out / "manifest.json").read_text())["recipe"]["name"] == f"search-{chosen}"
    assert main(args) == 1 and "already exists" in capsys.readouterr().err  # no --force: refused, kept


def test_export_refuses_options_it_would_ignore(tiny_checkpoint, tmp_path, capsys):
    out = str(tmp_path / "b")
    assert main(["export", str(tiny_checkpoint), "--target", "cuda", "--out", out]) == 1
    assert "--recipe auto" in capsys.readouterr().err
    assert main(["export", str(tiny_checkpoint), "--recipe", "auto", "--student-cache", str(tmp_path), "--out", out]) == 1
    assert "--student-cache" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_evaluator_measures_accuracy_on_the_given_validation(tiny_checkpoint, tmp_path):
    from lpm_edge.data import Split
    from lpm_edge.search.evaluate import BundleEvaluator

    texts = ["a great film", "an awful plot", "superb", "dull and poor"]
    accs = []
    for label in (0, 1):
        split = Split(tuple(texts), (label,) * 4, "validation", "given")
        ev = BundleEvaluator(tiny_checkpoint, tmp_path / str(label), texts[:2], validation=split)
        accs.append(ev(Candidate()).accuracy)
    assert abs(sum(accs) - 1.0) < 1e-9  # every text counted once, against the labels given


def test_fused_fp32_candidate_exports_unquantized_and_fused(tiny_checkpoint, tmp_path):
    space = [Candidate(quantize="none", per_channel=False)]
    result = search(tiny_checkpoint, tmp_path / "s", max_accuracy_drop=100.0, space=space, latency_texts=5)
    [point] = result.points
    assert point.label == "fp32" and result.chosen.key == space[0].key()
    manifest = json.loads((tmp_path / "s" / "bundles" / space[0].key() / "manifest.json").read_text())
    assert manifest["recipe"]["quantize"]["mode"] == "none" and manifest["recipe"]["optimize"]["fusion"] is True
    assert manifest["build"]["stages"]["fusion"]["counts"]["attention"] > 0
