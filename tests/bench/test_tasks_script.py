"""benchmarks/tasks.py without real models: the rows it reads from a bench report, the combined
table it writes, where it finds a bundle (a rejected one included) and the per-head bootstrap."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tasks.py"


@pytest.fixture(scope="module")
def tasks_script():
    spec = importlib.util.spec_from_file_location("tasks_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tasks_script"] = mod  # its dataclass looks its module up there
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("tasks_script", None)


def report_doc():
    def cand(name, value, loss, ci, ms, speed):
        return {"name": name, "metric": "spearman", "spearman": value, "loss_points": loss, "loss_ci95": ci,
                "agreement": None, "size": {"model_bytes": 23_000_000},
                "latency": {"batch": {"1": {"end_to_end": {"median_ms": ms}}}},
                "vs_reference": {"end_to_end_b1_speedup": speed} if speed else None}

    return {"data": {"n": 874}, "candidates": [cand("PyTorch fp32", 0.5, None, None, 10.0, None),
                                                cand("cpu-int8", 0.49, 1.0, [0.2, 1.8], 2.5, 4.0)]}


def test_rows_of_reads_metric_loss_ci_and_speedup(tasks_script):
    rows = tasks_script.rows_of("regression", report_doc(), {})
    assert [r["model"] for r in rows] == ["PyTorch fp32", "cpu-int8"]
    ref, b = rows
    assert ref["loss_points"] is None and ref["b1_speedup"] is None and ref["value"] == 0.5
    assert b["metric"] == "spearman" and b["loss_ci95"] == [0.2, 1.8] and b["b1_speedup"] == 4.0
    assert b["b1_end_to_end_ms"] == 2.5 and b["model_mb"] == 23.0 and b["n"] == 874


def test_markdown_has_a_row_per_task_and_model_and_the_head_table(tasks_script):
    result = {"cpu_class": "x86-64 AVX-512 VNNI", "threads": 2, "command": "python benchmarks/tasks.py --bench",
              "load": {"other_processes_cpu_share": 0.05, "loadavg_start": [0.1, 0, 0], "loadavg_end": [0.2, 0, 0]},
              "rows": tasks_script.rows_of("regression", report_doc(), {}),
              "tasks": {"multi-task": {"about": "debates", "heads": {
                  "n": 104, "pytorch": {"party": 0.6},
                  "bundles": {"cpu-int8": {"party": {"metric": "party/accuracy", "value": 0.59, "loss_points": 1.0,
                                                     "loss_ci95": [-1.0, 3.0]}}}}}}}
    md = tasks_script.markdown(result)
    assert "x86-64 AVX-512 VNNI" in md and "2 thread(s)" in md and "5%" in md
    assert "`python benchmarks/tasks.py --bench`" in md
    assert "| regression | cpu-int8 | spearman (n=874) | 0.4900 | +1.00 [+0.20, +1.80] | — | 2.50 | 4.00× | 23.0 |" in md
    assert "| regression | PyTorch fp32 | spearman (n=874) | 0.5000 | — | — | 10.00 | 1× | 23.0 |" in md
    assert "| cpu-int8 | party | party/accuracy | 0.5900 | +1.00 [-1.00, +3.00] |" in md


def test_bundle_path_falls_back_to_the_rejected_bundle(tasks_script, tmp_path):
    out = tmp_path / "cpu-pruned-int8"
    assert tasks_script.bundle_path(out) is None
    from lpm_edge.export.workdir import rejected_dir

    kept = rejected_dir(out)
    kept.mkdir(parents=True)
    (kept / "manifest.json").write_text("{}")
    assert tasks_script.bundle_path(out) == kept
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    assert tasks_script.bundle_path(out) == out


def test_one_head_bootstrap_sees_only_its_head(tasks_script):
    from lpm_edge import tasks
    from lpm_edge.evaluate import bootstrap_metric_diff_ci

    task = tasks.from_section("multi-task", ["a:x", "a:y", "b:u", "b:v"])
    gold = [[i % 2, i % 2] for i in range(40)]
    right = np.array([[1.0 - g[0], g[0], 1.0 - g[1], g[1]] for g in gold])
    worse_b = right.copy()
    worse_b[:10, 2:] = worse_b[:10, 2:][:, ::-1]  # head b wrong on 10 of 40; head a unchanged
    a = tasks_script._OneHead(task, "a/accuracy")
    b = tasks_script._OneHead(task, "b/accuracy")
    assert a.metric_loss(task.gold_array(gold), right, worse_b) == 0
    assert b.metric_loss(task.gold_array(gold), right, worse_b) == pytest.approx(25.0)
    assert bootstrap_metric_diff_ci(a, gold, right, worse_b, n_boot=50) == (0.0, 0.0)
    lo, hi = bootstrap_metric_diff_ci(b, gold, right, worse_b, n_boot=200)
    assert 0 < lo < 25 < hi


def test_find_key_and_unknown_task(tasks_script):
    assert tasks_script.find_key({"a": [{"b": {"best_step": 300}}]}, "best_step") == 300
    assert tasks_script.find_key({"a": 1}, "best_step") is None
    with pytest.raises(SystemExit):
        tasks_script.main(["--bench", "--tasks", "sentiment"])


def test_every_spec_names_a_known_task_kind(tasks_script):
    from lpm_edge.tasks import task_class

    for spec in tasks_script.SPECS.values():
        task_class(spec.train.get("task", "text-classification"), "task")
        assert spec.max_length > 0 and spec.distill_steps > 0
    assert list(tasks_script.SPECS) == ["regression", "multi-label", "pairs", "multi-task"]
    json.dumps({k: v.train for k, v in tasks_script.SPECS.items()})


@pytest.mark.slow
def test_bench_phase_reads_built_bundles_and_writes_one_table(tasks_script, tiny_checkpoint, tiny_bundle, tmp_path):
    root = tmp_path / "root"
    (root / "pairs").mkdir(parents=True)
    (root / "pairs" / "checkpoint").symlink_to(tiny_checkpoint, target_is_directory=True)
    (root / "pairs" / "cpu-int8").symlink_to(tiny_bundle, target_is_directory=True)
    out = tmp_path / "results"
    result = tasks_script.bench_all(["regression", "pairs"], root, out, "python benchmarks/tasks.py --bench", None)
    assert [r["model"] for r in result["rows"]][1:] == ["lpm-edge cpu-int8"] and len(result["rows"]) == 2
    assert {r["task"] for r in result["rows"]} == {"pairs"}  # regression: nothing built, skipped
    assert result["rows"][1]["b1_speedup"] > 0 and result["rows"][1]["loss_ci95"] is not None
    assert result["tasks"]["pairs"]["heads"] == {}
    doc = json.loads((out / "tasks.json").read_text())
    assert doc["threads"] >= 1 and "other_processes_cpu_share" in doc["load"]
    assert "| pairs | lpm-edge cpu-int8 |" in (out / "tasks.md").read_text()


@pytest.mark.slow
def test_head_losses_give_each_head_its_loss_and_ci(tasks_script, tiny_config, tmp_path):
    from lpm_edge.export import export
    from lpm_edge.train import train

    from ..tasks.test_multitask import multi_rows, write_rows

    data = write_rows(tmp_path / "multi.csv", multi_rows(200))
    ckpt = train(tiny_config(tmp_path / "ckpt", data=str(data), task="multi-task", label_column="sentiment,topic",
                             epochs=4))
    int8 = export(ckpt, tmp_path / "cpu-int8", "cpu-int8", max_accuracy_drop=100.0)
    got = tasks_script.head_losses(ckpt, [int8], max_length=32, n_boot=100)
    assert got["n"] == 20 and set(got["pytorch"]) == {"sentiment", "topic"}
    per = got["bundles"]["cpu-int8"]
    assert per["topic"]["metric"] == "topic/accuracy"
    for h, d in per.items():
        assert d["loss_points"] == pytest.approx((got["pytorch"][h] - d["value"]) * 100)
        assert d["loss_ci95"][0] <= d["loss_points"] <= d["loss_ci95"][1]


def test_distilled_reads_the_steps_that_ran_not_the_recipe(tasks_script, tmp_path):
    manifest = {"recipe": {"distill": {"steps": 1600}}, "metrics": {"accuracy_drop_points": 1.5, "accepted": True},
                "source": {"compression": {"distill": {"steps": 1100, "seconds": 600,
                                                       "early_stopping": {"best_step": 800, "stopped_at": 1100}}}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    d = tasks_script.distilled(tmp_path)
    assert (d["steps"], d["asked"], d["best_step"], d["stopped_at"]) == (1100, 1600, 800, 1100)
    assert d["validation_drop"] == 1.5 and d["accepted"] is True
