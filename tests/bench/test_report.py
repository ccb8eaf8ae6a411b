import json

import numpy as np
import pytest

from lpm_edge.bench import BenchConfig, Report, measure
from lpm_edge.bench.plots import pareto_front
from lpm_edge.errors import BenchError, ConfigError

TOP_KEYS = {"schema", "schema_version", "created", "lpm_edge", "command", "data", "method", "machine",
            "reference", "candidates", "plots"}
CANDIDATE_KEYS = {"name", "kind", "path", "info", "accuracy", "macro_f1", "metric", "accuracy_pass_s",
                  "loss_points", "loss_ci95", "agreement", "size", "latency", "throughput",
                  "process", "vs_reference"}
SUMMARY_KEYS = {"median_ms", "p90_ms", "p95_ms", "p99_ms", "mean_ms", "min_ms", "n"}
RATIO_KEYS = {"end_to_end_b1_speedup", "model_only_b1_speedup", "throughput_ratio", "peak_rss_ratio",
              "cold_start_ratio", "model_size_ratio", "loss_points"}
METHOD_KEYS = {"isolation", "reference_serving", "interleaving", "clock", "cores", "warmup_rounds", "batch_sizes",
               "rounds_by_batch", "seq_lengths", "seq_lengths_skipped", "seq_len_rounds", "latency_pool",
               "latency_pool_seed", "throughput_rounds", "predict_batch", "process_runs", "process_workload_texts",
               "bootstrap_resamples", "bootstrap_seed", "confidence", "machine_load", "quick", "config"}

TEXTS = [f"the movie was {'good' if i % 2 else 'bad'} and the plot was really very good" for i in range(40)]
LABELS = [i % 2 for i in range(40)]


@pytest.fixture
def report(make_fake, call_log, word_tokenizer):
    right = lambda texts: np.array([int("good and" in t) for t in texts])  # noqa: E731
    wrong_sometimes = lambda texts: np.array([int("good and" in t) if i % 4 != 1 else 0 for i, t in enumerate(texts)])  # noqa: E731
    cands = [make_fake("ref", call_log, right), make_fake("fast", call_log, wrong_sometimes),
             make_fake("fast", call_log, right)]
    config = BenchConfig(batch_sizes=(1, 4), seq_lengths=(8, 16, 512), repeats=6, min_repeats=2, seq_repeats=3,
                         warmup=1, pool=10, throughput_rounds=2, subprocess=False, plots=False, bootstrap=200)
    return measure(cands, TEXTS, LABELS, ("neg", "pos"), config=config, tokenizer=word_tokenizer, max_positions=64,
                   data={"name": "fake", "source": "fake", "split": "test"}, command="lpm-edge bench x")


def test_report_json_golden_keys(report):
    doc = json.loads(json.dumps(report.to_dict()))
    assert set(doc) == TOP_KEYS
    assert doc["schema"] == "lpm-edge.bench-report" and doc["schema_version"] == 3
    assert set(doc["method"]) == METHOD_KEYS
    assert set(doc["machine"]) == {"cpu", "platform", "python", "libraries"}
    assert set(doc["machine"]["cpu"]) == {"model", "class", "cores", "flags", "vnni"}
    assert [c["name"] for c in doc["candidates"]] == ["ref", "fast", "fast (fast)"]
    for c in doc["candidates"]:
        assert set(c) == CANDIDATE_KEYS
        assert set(c["latency"]) == {"batch", "seq_len"}
        assert set(c["latency"]["batch"]) == {"1", "4"}
        assert set(c["latency"]["seq_len"]) == {"8", "16"}  # 512 > the model's 64 positions
        for cell in c["latency"]["batch"].values():
            assert set(cell) == {"end_to_end", "model_only"}
            assert set(cell["end_to_end"]) == SUMMARY_KEYS
        assert set(c["latency"]["seq_len"]["8"]) == {"end_to_end", "model_only", "text_tokens"}
        assert set(c["throughput"]) == {"texts_per_s", "seconds", "rounds", "texts"}
        assert set(c["vs_reference"]) == RATIO_KEYS
        assert set(c["size"]) == {"model_bytes", "total_bytes"}
    assert doc["method"]["seq_lengths_skipped"] == [512]
    load = doc["method"]["machine_load"]
    assert set(load) == {"other_processes_cpu_share", "cpus", "seconds", "loadavg_start", "loadavg_end", "busy",
                         "by_stage"}
    assert list(load["by_stage"])[0] == "accuracy on 40 texts"
    assert doc["method"]["rounds_by_batch"] == [6, 2]


def test_accuracy_loss_agreement_and_ratios(report):
    ref, lossy, same = report.candidates
    assert ref["accuracy"] == 1.0 and ref["loss_points"] is None and ref["agreement"] is None
    assert lossy["accuracy"] == pytest.approx(0.75)  # texts 1, 5, 9, ... (all "good") forced to "neg"
    assert lossy["loss_points"] == pytest.approx(25)
    lo, hi = lossy["loss_ci95"]
    assert 0 <= lo <= 25 <= hi
    assert lossy["agreement"] == pytest.approx(0.75)
    assert same["loss_points"] == 0 and same["loss_ci95"] == [0.0, 0.0]
    assert ref["vs_reference"]["model_size_ratio"] == 1.0
    assert ref["vs_reference"]["peak_rss_ratio"] is None  # no fresh processes in this run


def test_markdown_has_every_section_and_candidate(report):
    md = report.markdown()
    for heading in ("## Accuracy", "## Latency on real texts", "## Latency by sequence length",
                    "## Throughput, start-up, memory, size", "## How this was measured"):
        assert heading in md
    assert "| fast (fast) |" in md and "Command: `lpm-edge bench x`" in md
    assert "VNNI" in md
    from lpm_edge.sysinfo import cpu_class

    assert f"Machine: CPU class {cpu_class()}: " in md  # the figures say which CPU class they hold on
    assert "40 texts of fake (labels" in md  # the split and its source


def test_markdown_warns_when_int8_ran_without_vnni(report):
    from lpm_edge.bench.markdown import render

    doc = json.loads(json.dumps(report.to_dict()))
    doc["candidates"][1]["info"] = {"quantize": "dynamic"}
    doc["machine"]["cpu"].update(vnni=False, **{"class": "x86-64 AVX2 (no VNNI)"})
    assert "**int8 on a CPU without VNNI** (x86-64 AVX2 (no VNNI)): fast ran" in render(doc)
    doc["machine"]["cpu"]["vnni"] = True
    assert "without VNNI**" not in render(doc)
    doc["machine"]["cpu"]["vnni"] = False
    doc["candidates"][1]["info"] = {"quantize": "none"}
    assert "without VNNI**" not in render(doc)


def test_report_round_trips_and_refuses_other_schemas(report):
    doc = report.to_dict()
    assert Report.from_dict(json.loads(json.dumps(doc))).to_dict() == doc
    with pytest.raises(BenchError, match="re-run lpm-edge bench"):
        Report.from_dict({**doc, "schema_version": 1})


def test_write_makes_json_markdown_and_plots(report, tmp_path):
    pytest.importorskip("matplotlib")
    paths = report.write(tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["accuracy_vs_latency.png", "latency_by_length.png", "report.json", "report.md"]
    for p in paths:
        assert p.stat().st_size > 0
    assert json.loads((tmp_path / "report.json").read_text())["plots"] == ["accuracy_vs_latency.png",
                                                                         "latency_by_length.png"]


def test_pareto_front():
    pts = [(10.0, 80.0), (5.0, 79.0), (20.0, 81.0), (12.0, 79.5), (5.0, 78.0)]
    assert pareto_front(pts) == [1, 0, 2]


def test_config_is_checked():
    with pytest.raises(ConfigError, match="repeats"):
        BenchConfig(repeats=0)
    with pytest.raises(ConfigError, match="batch sizes"):
        BenchConfig(batch_sizes=())
    assert BenchConfig(repeats=200, min_repeats=30).rounds(32) == 30
    assert BenchConfig.for_quick().quick


def test_fresh_process_reports_its_own_peak_memory_not_the_parents(tmp_path):
    import numpy as np

    from lpm_edge.bench.candidates import ChildSpec
    from lpm_edge.bench.process import run_child

    job = tmp_path / "job.json"
    job.write_text(json.dumps({"first": "a", "workload": ["a", "b", "c"], "batch": 2}))
    parent = np.ones(300 * 2**20 // 8)  # this process holds 300 MiB
    small = run_child(ChildSpec("import json", "x = 1", "return len(texts)"), job)
    big = run_child(ChildSpec("import json", "x = bytearray(120 * 2**20)", "return len(texts)"), job)
    assert small["peak_rss_bytes"] < 100 * 2**20 < 120 * 2**20 < big["peak_rss_bytes"]
    assert small["cold_start_s"] >= 0 and small["process_wall_s"] > 0
    del parent


def test_failing_fresh_process_names_the_fix(tmp_path):
    from lpm_edge.bench.candidates import ChildSpec
    from lpm_edge.bench.process import run_child

    job = tmp_path / "job.json"
    job.write_text(json.dumps({"first": "a", "workload": [], "batch": 2}))
    with pytest.raises(BenchError, match="no_such_module.*--no-subprocess"):
        run_child(ChildSpec("import no_such_module", "", "return texts"), job)


def test_machine_load_share_of_other_processes():
    from lpm_edge.bench.load import CpuSnapshot, others_share

    a = CpuSnapshot(wall=0.0, machine_busy=100.0, own=10.0, loadavg=(1.0, 1.0, 1.0))
    b = CpuSnapshot(wall=10.0, machine_busy=115.0, own=20.0, loadavg=(2.0, 1.0, 1.0))
    out = others_share(a, b, cpus=2)  # 15 s busy, 10 s ours: others used 5 of 20 CPU-seconds
    assert out["other_processes_cpu_share"] == pytest.approx(0.25) and out["busy"]
    quiet = others_share(a, CpuSnapshot(10.0, 110.0, 20.0, None), cpus=2)
    assert quiet["other_processes_cpu_share"] == 0.0 and not quiet["busy"]


def test_fixed_length_inputs_use_each_candidates_own_tokenizer(make_fake, call_log, word_tokenizer):
    # A compressed bundle may ship a trimmed vocabulary: its ids must come from its own tokenizer.
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad"])}
    small = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    small.pre_tokenizer = pre_tokenizers.Whitespace()
    small.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    seen: dict[str, int] = {}
    cands = [make_fake("ref", call_log), make_fake("trimmed", call_log)]
    cands[1].tokenizer = small
    for c in cands:
        c.from_ids = lambda batch, name=c.name: seen.__setitem__(name, max(seen.get(name, 0),
                                                                           int(batch["input_ids"].max()))) or batch
    config = BenchConfig(batch_sizes=(1,), seq_lengths=(8,), repeats=2, min_repeats=1, seq_repeats=1, warmup=0,
                         pool=10, throughput_rounds=1, subprocess=False, plots=False, bootstrap=50)
    measure(cands, TEXTS, LABELS, ("neg", "pos"), config=config, tokenizer=word_tokenizer, max_positions=64,
            data={"name": "fake", "source": "fake", "split": "test"})
    assert seen["trimmed"] < len(vocab) < seen["ref"]
