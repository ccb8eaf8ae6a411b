"""Ray with sentence pairs: `lpm-edge predict --ray --text-pair-column` against the local path (same
output, a row without its second text as one line and exit 1, --skip-bad), and the Ray Data form
(`score_dataset(..., text_pair_column=)`)."""

from __future__ import annotations

import csv
import gc

import numpy as np
import pytest

import lpm_edge

from ..task_bundles import task_bundle
from ..tasks.test_pairs import pair_rows


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_cli_ray_scores_pairs_like_the_local_path(tmp_path, tmp_path_factory, request, local_ray, capsys):
    from lpm_edge.cli import main

    bundle = task_bundle("pairs", tmp_path_factory, request)
    rows = [(f"{i:03d}", a, b) for i, (a, b, _) in enumerate(pair_rows(30, seed=4))]
    rows[5] = (rows[5][0], rows[5][1], "")  # line 7 of the file: no second text
    src = tmp_path / "in.csv"
    with open(src, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "premise", "hypothesis"])
        w.writerows(rows)
    pair_args = ["--text-column", "premise", "--text-pair-column", "hypothesis", "--chunk-rows", "8"]
    on_ray = ["predict", str(bundle), "--input", str(src), "--output", str(tmp_path / "ray.csv"), "--ray",
              "--workers", "2", *pair_args]
    assert main(on_ray) == 1
    err = capsys.readouterr().err
    [line] = [x for x in err.splitlines() if x.startswith("lpm-edge predict: error: ")]
    assert "in.csv:7" in line and "hypothesis" in line and "Traceback" not in err
    assert main([*on_ray, "--skip-bad", "--force"]) == 0
    assert main(["predict", str(bundle), "--input", str(src), "--output", str(tmp_path / "local.csv"), "--skip-bad",
                 *pair_args]) == 0
    got, want = _read(tmp_path / "ray.csv"), _read(tmp_path / "local.csv")
    assert [r["id"] for r in got] == [r["id"] for r in want] == [r[0] for r in rows if r[0] != "005"]
    assert [r["pred_label"] for r in got] == [r["pred_label"] for r in want]
    assert np.allclose([float(r["pred_score"]) for r in got], [float(r["pred_score"]) for r in want], atol=1e-5)
    records = lpm_edge.load(bundle).records([(r["premise"], r["hypothesis"]) for r in got])
    assert [r["pred_label"] for r in got] == [r["label"] for r in records]
    capsys.readouterr()
    # a pair bundle asked to score one text per row: one line, exit 1
    assert main(["predict", str(bundle), "--input", str(src), "--output", str(tmp_path / "one.csv"), "--ray",
                 "--text-column", "premise"]) == 1
    err = capsys.readouterr().err
    assert len([x for x in err.splitlines() if x.startswith("lpm-edge predict: error: ")]) == 1
    assert "pair" in err and "Traceback" not in err


@pytest.mark.slow
def test_ray_data_scores_pairs(tmp_path_factory, request, local_ray):
    from lpm_edge.integrations.ray import score_dataset

    bundle = task_bundle("pairs", tmp_path_factory, request)
    pairs = [(a, b) for a, b, _ in pair_rows(12, seed=6)]
    ds = local_ray.data.from_items([{"id": i, "premise": a, "hypothesis": b} for i, (a, b) in enumerate(pairs)]
                                   + [{"id": 12, "premise": "the plot", "hypothesis": None}])
    got = sorted(score_dataset(ds, bundle, batch_size=8, text_column="premise", text_pair_column="hypothesis",
                               skip_bad=True).take_all(), key=lambda r: r["id"])
    assert [r["id"] for r in got] == list(range(12))
    assert [r["pred_label"] for r in got] == [r["label"] for r in lpm_edge.load(bundle).records(pairs)]
    # without skip_bad the job stops; Ray Data raises its own exception (RayTaskError(UserCodeException)),
    # whose text carries our one-line DataError (the user's own call runs the lazy dataset, not lpm-edge)
    with pytest.raises(Exception, match=r"column 'hypothesis': not text \(missing\); pass skip_bad=True"):
        score_dataset(ds, bundle, batch_size=8, text_column="premise", text_pair_column="hypothesis").take_all()
    gc.collect()  # the failed dataset's actor released with its error
