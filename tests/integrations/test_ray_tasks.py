"""Ray for every task: the Ray Data predictor's columns and bad rows, `score_file_ray` against the local
path, and a bundle that fails to load in an actor (one line, exit 1)."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

import lpm_edge
from lpm_edge.errors import BundleError, DataError
from lpm_edge.scoring import score_file

from ..task_bundles import KINDS, TEXTS, corrupt_copy, task_bundle


def _batch(texts) -> dict:
    column = np.empty(len(texts), dtype=object)
    column[:] = texts
    return {"id": np.arange(len(texts)), "text": column}


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_predictor_reports_a_missing_text_instead_of_scoring_none(tiny_bundle, missing, caplog):
    from lpm_edge.integrations.ray import BundlePredictor

    texts = ["a great film", missing, "dull"]
    with pytest.raises(DataError, match=r"^row 1 of a batch of 3: column 'text': not text \(missing\); pass "
                                        r"skip_bad=True to skip such rows$"):
        BundlePredictor(tiny_bundle, threads=1)(_batch(texts))
    predictor = BundlePredictor(tiny_bundle, threads=1, skip_bad=True)
    out = predictor(_batch(texts))
    want = lpm_edge.load(tiny_bundle).predict(["a great film", "dull"])
    assert list(out["id"]) == [0, 2] and list(out["text"]) == ["a great film", "dull"]
    assert list(out["pred_label"]) == [p.label for p in want]
    assert predictor.skipped == 1 and "skipped 1 bad rows of a batch of 3" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_predictor_adds_every_tasks_columns(kind, tmp_path_factory, request):
    from lpm_edge.integrations.ray import BundlePredictor

    bundle = task_bundle(kind, tmp_path_factory, request)
    out = BundlePredictor(bundle, threads=1)(_batch(TEXTS))
    clf = lpm_edge.load(bundle)
    rows = [clf.task.row(r) for r in clf.records(TEXTS)]
    for j, (name, kind_) in enumerate(clf.task.columns()):
        want = [row[j] for row in rows]
        if kind_ == "json":
            assert [json.loads(v) for v in out[name]] == json.loads(json.dumps(want))
        elif kind_ in ("float", "vector"):
            assert out[name].dtype == np.float32 and np.allclose(out[name], np.asarray(want, np.float32), atol=1e-6)
        else:
            assert list(out[name]) == want


@pytest.mark.slow
def test_every_task_on_ray_scores_like_the_local_path(tmp_path, tmp_path_factory, request, local_ray):
    from lpm_edge.integrations.ray import score_file_ray

    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": i, "text": TEXTS[i % len(TEXTS)]}) for i in range(40)]
    lines[7] = json.dumps({"id": 7, "text": None})
    src.write_text("\n".join(lines) + "\n")
    for kind in KINDS:
        bundle = task_bundle(kind, tmp_path_factory, request)
        local = score_file(bundle, src, tmp_path / f"{kind}-local.jsonl", chunk_rows=16, skip_bad=True,
                           progress=False)
        on_ray = score_file_ray(bundle, src, tmp_path / f"{kind}-ray.jsonl", concurrency=1, chunk_rows=16,
                                skip_bad=True, progress=False)
        assert (on_ray.rows, on_ray.skipped) == (local.rows, local.skipped) == (39, 1)
        got = [json.loads(x) for x in on_ray.output.read_text().splitlines()]
        want = [json.loads(x) for x in local.output.read_text().splitlines()]
        assert [r["id"] for r in got] == [r["id"] for r in want]
        names = [n for n, _ in lpm_edge.load(bundle).task.columns()]
        for g, w in zip(got, want):  # the same records, floats to 1e-5
            assert np.allclose(_floats([g[n] for n in names]), _floats([w[n] for n in names]), atol=1e-5), kind
            assert json.dumps(_labels(g, names)) == json.dumps(_labels(w, names)), kind


def _floats(value) -> list[float]:
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in _floats(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in _floats(v)]
    return [float(value)] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def _labels(value, names=None):
    """`value` without its numbers (the labels, entity types and offsets' texts)."""
    if names is not None:
        return [_labels(value[n]) for n in names]
    if isinstance(value, dict):
        return {k: _labels(v) for k, v in value.items() if not isinstance(v, float)}
    if isinstance(value, list):
        return [_labels(v) for v in value if not isinstance(v, float)]
    return value


@pytest.mark.slow
def test_ray_data_embeddings_and_entities_with_a_missing_text(tmp_path_factory, request, local_ray):
    from lpm_edge.integrations.ray import score_dataset

    rows = [{"id": i, "text": t} for i, t in enumerate(TEXTS)] + [{"id": len(TEXTS), "text": None}]
    ds = local_ray.data.from_items(rows)
    for kind, column in (("embedding", "pred_embedding"), ("token-classification", "pred_entities")):
        bundle = task_bundle(kind, tmp_path_factory, request)
        got = sorted(score_dataset(ds, bundle, batch_size=4, skip_bad=True).take_all(), key=lambda r: r["id"])
        assert [r["id"] for r in got] == list(range(len(TEXTS)))
        records = lpm_edge.load(bundle).records(TEXTS)
        if kind == "embedding":
            assert np.allclose(np.stack([r[column] for r in got]), [r["embedding"] for r in records], atol=1e-5)
        else:
            assert [[e["text"] for e in json.loads(r[column])] for r in got] == \
                [[e["text"] for e in r["entities"]] for r in records]
    # last: a failed dataset's actor outlives the error (which holds it) and keeps its CPU
    with pytest.raises(Exception, match="not text \\(missing\\); pass skip_bad=True"):
        score_dataset(ds, bundle, batch_size=4).take_all()
    gc.collect()  # the error and its actor gone: the next test's actors get the CPUs


@pytest.mark.slow
def test_a_bundle_that_fails_to_load_in_an_actor_is_one_line(tmp_path, tiny_bundle, local_ray, capsys):
    from lpm_edge.cli import main
    from lpm_edge.integrations.ray import score_file_ray

    bad = corrupt_copy(tiny_bundle, tmp_path / "bundle")  # load refuses it, in the actor
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a great film"}\n')
    with pytest.raises(BundleError) as caught:
        score_file_ray(bad, src, tmp_path / "out.jsonl", progress=False)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)
    code = main(["predict", str(bad), "--input", str(src), "--output", str(tmp_path / "out2.jsonl"), "--ray"])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and err.startswith("lpm-edge predict: error: ") and "model.onnx" in err
