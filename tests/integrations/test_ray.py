"""Ray Data: the predictor class on its own, and a real local Ray run against the single-process path."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from ..conftest import synthetic_rows


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
def test_ray_scores_like_the_single_process_path(tmp_path, tiny_fp32_bundle):
    ray = pytest.importorskip("ray")
    from lpm_edge.integrations.ray import score_file_ray
    from lpm_edge.scoring import score_file

    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        w.writerows((i, t) for i, (t, _) in enumerate(synthetic_rows(3000, seed=11)))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = score_file_ray(tiny_fp32_bundle, src, tmp_path / "ray.csv", concurrency=2, batch_size=500)
    finally:
        ray.shutdown()
    single = score_file(tiny_fp32_bundle, src, tmp_path / "one.csv", progress=False)
    with open(on_ray.output, newline="") as a, open(single.output, newline="") as b:
        got, want = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert on_ray.rows == single.rows == 3000
    assert [(r["id"], r["text"], r["pred_label"]) for r in got] == [(r["id"], r["text"], r["pred_label"]) for r in want]
    assert np.allclose([float(r["pred_score"]) for r in got], [float(r["pred_score"]) for r in want], atol=1e-5)
