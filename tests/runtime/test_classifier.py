import threading

import numpy as np
import pytest

import lpm_edge
from lpm_edge.errors import ConfigError, ProviderError
from lpm_edge.runtime import providers


@pytest.fixture(scope="module")
def clf(tiny_bundle):
    return lpm_edge.load(tiny_bundle, providers="cpu")


def test_predict_returns_label_score_and_vector(clf):
    preds = clf.predict(["a really great film", "an awful boring plot"])
    assert [p.label for p in preds] == ["pos", "neg"]
    for p in preds:
        assert set(p.scores) == {"neg", "pos"}
        assert p.score == max(p.scores.values())
        assert abs(sum(p.scores.values()) - 1) < 1e-5


def test_single_string_and_empty_inputs(clf):
    one = clf.predict("great")
    assert one.label in clf.labels
    assert clf.predict([]) == []
    assert clf.predict_proba([]).shape == (0, 2)
    assert clf.predict_proba("").shape == (2,)
    assert clf.predict([""])[0].label in clf.labels


@pytest.mark.parametrize("bad, kind", [(None, "NoneType"), (b"bytes", "bytes"), (3, "int")])
def test_non_strings_name_position_and_type(clf, bad, kind):
    with pytest.raises(TypeError, match=rf"texts\[1\] is {kind}"):
        clf.predict(["fine", bad])


def test_long_texts_are_truncated_not_crashing(clf):
    long = "good " * 5000
    assert clf.predict(long).label in clf.labels


BATCHING_TEXTS = [("great " * (i % 7)) + ("awful " * (i % 5)) + "film" for i in range(53)]


def _one_by_one_and_batched(path):
    single = lpm_edge.load(path, providers="cpu", batch_size=1)
    one_by_one = np.stack([single.predict_proba(t) for t in BATCHING_TEXTS])
    batched = lpm_edge.load(path, providers="cpu", batch_size=8).predict_proba(BATCHING_TEXTS)
    return one_by_one, batched


def test_fp32_results_come_back_in_input_order_whatever_the_batching(tiny_fp32_bundle):
    one_by_one, batched = _one_by_one_and_batched(tiny_fp32_bundle)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)  # fp32 has no batch-dependent step


def test_int8_results_move_with_batching_only_within_int8_error(tiny_bundle, tiny_fp32_bundle):
    """Dynamic int8 picks one activation scale per tensor per call: (max - min) / 255 over the whole
    batch, pads included. In a batch a text is quantized with a step no wider than the widest text's
    own step, so its error against the fp32 graph stays of the size of the worst error int8 makes on
    a text alone; the rounding falls differently, so the bound allows that size twice over. The bound
    comes from this CPU's own int8 kernels (VNNI, AVX2-only u8s8 with its saturation, ARM), measured
    here against the fp32 graph, not from one machine's observation."""
    one_by_one, batched = _one_by_one_and_batched(tiny_bundle)
    fp32 = np.stack([lpm_edge.load(tiny_fp32_bundle, providers="cpu").predict_proba(t) for t in BATCHING_TEXTS])
    worst = np.abs(one_by_one - fp32).max()  # int8's worst error at batch 1 on this CPU
    bound = 2 * worst + 1e-4  # 1e-4: below it, scores agree to what a softmax of these logits resolves
    batched_error = np.abs(batched - fp32).max(axis=1)
    figures = f"worst single error {worst:.4f}, batched error {batched_error.max():.4f}, bound {bound:.4f}"
    # The texts' scores spread far wider than the bound, so a result in the wrong place fails here.
    assert np.ptp(fp32[:, 0]) > 3 * bound, figures
    assert (batched_error <= bound).all(), figures
    moved = np.abs(batched - one_by_one).max(axis=1)
    assert (moved <= bound + worst).all(), figures  # follows from the two errors; kept as the property users see
    margin = np.abs(one_by_one[:, 0] - one_by_one[:, 1])
    clear = margin > 2 * (bound + worst)  # away from a near-tie, batching must not flip the label
    assert (batched.argmax(1)[clear] == one_by_one.argmax(1)[clear]).all(), figures


def test_token_budget_bounds_every_batch_and_keeps_results(tiny_fp32_bundle):
    texts = [("great " * (i % 40)) + "film" for i in range(60)] + ["word " * 500]  # the last one truncates
    capped = lpm_edge.load(tiny_fp32_bundle, providers="cpu", max_batch_tokens=64)
    uncapped = lpm_edge.load(tiny_fp32_bundle, providers="cpu", max_batch_tokens=None)
    batches = capped.encode(texts)
    assert sorted(int(r) for rows, _ in batches for r in rows) == list(range(len(texts)))
    for rows, feed in batches:
        b, t = feed["input_ids"].shape
        assert len(rows) == b <= capped.batch_size
        assert b * t <= 64 or b == 1  # a text longer than the budget travels alone
    assert max(feed["input_ids"].shape[1] for _, feed in batches) == capped.max_length
    assert len(batches) > len(uncapped.encode(texts))
    np.testing.assert_allclose(capped.predict_proba(texts), uncapped.predict_proba(texts), atol=1e-5)


def test_token_budget_auto_is_set_for_the_cpu(clf):
    from lpm_edge.runtime.classifier import CPU_BATCH_TOKENS

    assert clf.max_batch_tokens == CPU_BATCH_TOKENS


def test_threads_share_one_classifier(clf):
    texts = [f"the {w} movie" for w in ["good", "bad", "dull", "superb"] * 10]
    expected = clf.predict_proba(texts)
    results, errors = [None] * 8, []

    def work(k):
        try:
            results[k] = clf.predict_proba(texts)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_reports_actual_providers(clf):
    assert clf.providers == ("CPUExecutionProvider",)


def test_bad_options(tiny_bundle):
    with pytest.raises(ConfigError, match="batch_size"):
        lpm_edge.load(tiny_bundle, batch_size=0)
    with pytest.raises(ConfigError, match="threads"):
        lpm_edge.load(tiny_bundle, threads=-1)
    for bad in (0, "many", True, 2.5):
        with pytest.raises(ConfigError, match="max_batch_tokens"):
            lpm_edge.load(tiny_bundle, max_batch_tokens=bad)


def test_cuda_missing_from_runtime_is_an_error():
    with pytest.raises(ProviderError, match=r"lpm-edge\[gpu\]"):
        providers.requested("cuda", ["CPUExecutionProvider"])


def test_auto_prefers_cuda_when_listed():
    assert providers.requested("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == (
        ["CUDAExecutionProvider", "CPUExecutionProvider"], True)
    assert providers.requested("auto", ["CPUExecutionProvider"]) == (["CPUExecutionProvider"], True)


def test_silent_cuda_fallback_is_refused_unless_auto(caplog):
    asked = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(ProviderError, match="could only start CPUExecutionProvider"):
        providers.check_session(asked, ["CPUExecutionProvider"], auto=False)
    with caplog.at_level("INFO", logger="lpm_edge.runtime"):
        providers.check_session(asked, ["CPUExecutionProvider"], auto=True)
    assert "could not start" in caplog.text


def test_length_batches_caps_texts_tokens_and_graph_ranges():
    from lpm_edge.runtime.tokenize import length_batches

    lengths = [5, 30, 3, 12, 12, 40, 7, 100]
    groups = length_batches(lengths, batch_size=3, max_tokens=40, graph_for=lambda n: "a" if n <= 10 else "b")
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        widths = [lengths[i] for i in g]
        assert widths == sorted(widths) and len(g) <= 3
        assert len(g) * max(widths) <= 40 or len(g) == 1
        assert len({w <= 10 for w in widths}) == 1  # never spans both graphs
    assert [lengths[i] for i in groups[0]] == [3, 5, 7]
    assert [[lengths[i] for i in g] for g in length_batches(lengths, 8)] == [sorted(lengths)]


@pytest.fixture
def graph_loaded(tmp_path, monkeypatch):
    """graph_loaded(): the operators of the graph the last ONNX Runtime session opened in the test ran,
    after its load-time optimizations (every session writes it through `optimized_model_filepath`)."""
    onnx = pytest.importorskip("onnx")  # the runtime's own environment (.ci/py310) has none
    import onnxruntime as ort

    written, real_options = tmp_path / "loaded.onnx", ort.SessionOptions

    def options_writing_the_optimized_graph():
        options = real_options()
        options.optimized_model_filepath = str(written)
        return options

    monkeypatch.setattr(ort, "SessionOptions", options_writing_the_optimized_graph)
    return lambda: {node.op_type for node in onnx.load(str(written)).graph.node}


def test_cpu_sessions_keep_residual_adds_apart_from_layer_norm(tiny_fp32_bundle, graph_loaded):
    """ONNX Runtime's load-time optimizer would fold each residual Add and its LayerNormalization
    into SkipLayerNormalization, whose CPU kernel is slower (benchmarks/layernorm_kernels.py); a CPU
    session leaves them apart, while a plain ONNX Runtime session on the same graph does fuse them."""
    import onnxruntime as ort

    def ops_after_load(**kwargs) -> set[str]:
        ort.InferenceSession(str(tiny_fp32_bundle / "model.onnx"), ort.SessionOptions(),
                             providers=["CPUExecutionProvider"], **kwargs)
        return graph_loaded()

    assert "SkipLayerNormalization" in ops_after_load()  # without the runtime's choice, ORT fuses them
    kept = ops_after_load(disabled_optimizers=providers.disabled_optimizers(["CPUExecutionProvider"]))
    assert "SkipLayerNormalization" not in kept and "LayerNormalization" in kept

    lpm_edge.load(tiny_fp32_bundle, providers="cpu")
    ops = graph_loaded()
    assert "SkipLayerNormalization" not in ops and "LayerNormalization" in ops


def test_only_cpu_only_sessions_leave_skip_layer_norm_out():
    assert providers.disabled_optimizers(["CPUExecutionProvider"]) == ["SkipLayerNormFusion"]
    assert providers.disabled_optimizers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == []
    assert providers.disabled_optimizers(["TensorrtExecutionProvider", "CPUExecutionProvider"]) == []


def test_auto_falling_back_to_the_cpu_loads_as_a_cpu_session(tiny_fp32_bundle, graph_loaded, monkeypatch):
    """onnxruntime-gpu lists CUDA on a machine where it cannot start: "auto" then runs on the CPU
    alone, and must get the CPU session's load-time choices (residual norms kept apart)."""
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    clf = lpm_edge.load(tiny_fp32_bundle, providers="auto")
    assert clf.providers == ("CPUExecutionProvider",)
    ops = graph_loaded()
    assert "SkipLayerNormalization" not in ops and "LayerNormalization" in ops
