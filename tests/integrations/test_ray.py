"""Ray: the Ray Data predictor class on its own, and `score_file_ray` on a real local Ray instance
against the single-process path (same output, bad rows, resume)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from lpm_edge.errors import DataError
from lpm_edge.scoring import run, score_file

from ..conftest import synthetic_rows
from ..task_bundles import killed_after_two_chunks, read_output


def test_bundle_predictor_adds_label_and_score(tiny_bundle):
    from lpm_edge import load
    from lpm_edge.integrations.ray import BundlePredictor

    texts = [t for t, _ in synthetic_rows(20, seed=9)]
    out = BundlePredictor(tiny_bundle, threads=1)({"id": np.arange(20), "text": np.array(texts, dtype=object)})
    probs = load(tiny_bundle, providers="cpu").predict_proba(texts)
    assert list(out["id"]) == list(range(20))
    assert list(out["pred_label"]) == [("neg", "pos")[k] for k in probs.argmax(axis=1)]
    assert np.allclose(out["pred_score"], probs.max(axis=1), atol=1e-6)


@pytest.mark.slow
def test_cli_ray_skips_bad_rows_and_stops_the_instance_it_started(tmp_path, tiny_bundle, capsys):
    ray = pytest.importorskip("ray")
    from lpm_edge.cli import main

    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "a great film"}\n{"id": 2, "text": 7}\n{"id": 3, "text": "dull"}\n')
    out = tmp_path / "out.jsonl"
    assert not ray.is_initialized()
    args = ["predict", str(tiny_bundle), "--input", str(src), "--output", str(out), "--ray", "--workers", "2"]
    assert main(args) == 1
    assert "in.jsonl:2: not text (int); pass --skip-bad" in capsys.readouterr().err
    assert main([*args, "--skip-bad", "--force", "--json"]) == 0
    assert {k: v for k, v in json.loads(capsys.readouterr().out).items() if k in ("rows", "skipped")} == \
        {"rows": 2, "skipped": 1}
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == [1, 3]
    assert not ray.is_initialized()


def _same(a, b):
    """Two outputs (CSV or JSONL): the same rows and labels, scores equal to 1e-5."""
    got, want = read_output(a), read_output(b)
    assert [{k: v for k, v in r.items() if k != "pred_score"} for r in got] == \
        [{k: v for k, v in r.items() if k != "pred_score"} for r in want]
    assert np.allclose([float(r["pred_score"]) for r in got], [float(r["pred_score"]) for r in want], atol=1e-5)


@pytest.mark.slow
def test_ray_scores_like_the_single_process_path(tmp_path, tiny_fp32_bundle, local_ray):
    from lpm_edge.integrations.ray import score_file_ray

    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows((f"{i:05d}", t) for i, (t, _) in enumerate(synthetic_rows(3000, seed=11)))
    on_ray = score_file_ray(tiny_fp32_bundle, src, tmp_path / "ray.csv", concurrency=2, chunk_rows=500,
                            progress=False)
    single = score_file(tiny_fp32_bundle, src, tmp_path / "one.csv", chunk_rows=500, progress=False)
    assert on_ray.rows == single.rows == 3000 and (on_ray.workers, on_ray.chunks) == (2, 6)
    _same(on_ray.output, single.output)  # ids like 00007 kept as written
    assert local_ray.is_initialized()  # a Ray instance the caller started is left running


@pytest.mark.slow
def test_ray_skips_bad_rows_and_resumes(tmp_path, tiny_bundle, local_ray, monkeypatch):
    from lpm_edge.integrations.ray import score_file_ray

    lines = [json.dumps({"id": i, "text": t}) for i, (t, _) in enumerate(synthetic_rows(600, seed=5))]
    lines[4] = json.dumps({"id": 4, "text": None})
    lines[350] = "{not json"
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n")
    opts = {"chunk_rows": 100, "progress": False, "concurrency": 2}
    with pytest.raises(DataError, match=r"in.jsonl:5: not text \(missing\); pass --skip-bad"):
        score_file_ray(tiny_bundle, src, tmp_path / "out.jsonl", **opts)
    local = score_file(tiny_bundle, src, tmp_path / "local.jsonl", chunk_rows=100, skip_bad=True, progress=False)

    # interrupted after two chunks, then resumed on Ray: the two chunks are not scored again
    out = tmp_path / "out.jsonl"
    with killed_after_two_chunks(monkeypatch):
        score_file_ray(tiny_bundle, src, out, skip_bad=True, force=True, **opts)
    assert not out.exists() and len(list(run.work_dir(out).glob("part-*.json"))) == 2
    result = score_file_ray(tiny_bundle, src, out, skip_bad=True, resume=True, **opts)
    assert (result.rows, result.skipped, result.chunks, result.resumed_chunks) == (598, 2, 6, 2)
    _same(out, local.output)


@pytest.mark.slow
def test_score_dataset_on_ray_data(tiny_fp32_bundle, local_ray):
    from lpm_edge import load
    from lpm_edge.integrations.ray import score_dataset

    texts = [t for t, _ in synthetic_rows(300, seed=13)]
    ds = local_ray.data.from_items([{"id": i, "text": t} for i, t in enumerate(texts)])
    got = sorted(score_dataset(ds, tiny_fp32_bundle, concurrency=1, threads=1, batch_size=64).take_all(),
                 key=lambda r: r["id"])
    want = load(tiny_fp32_bundle, providers="cpu").predict(texts)
    assert [r["text"] for r in got] == texts
    assert [r["pred_label"] for r in got] == [p.label for p in want]
    assert np.allclose([r["pred_score"] for r in got], [p.score for p in want], atol=1e-5)
