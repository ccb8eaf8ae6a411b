"""The peers (PyTorch dynamic int8, Optimum's AVX2 dynamic int8 and O2-fused fp32) as candidates, on the tiny BERT."""

import numpy as np
import pytest

from lpm_edge.bench.process import child_source

TEXTS = ["a really great film", "an awful boring plot", "the acting was superb", "dull and poor", ""]


def _check(cand, ref_probs):
    probs = cand.predict(TEXTS)
    assert probs.shape == (len(TEXTS), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (probs.argmax(1) == ref_probs.argmax(1)).mean() >= 0.8  # int8 may flip a near-tie
    feeds = cand.encode(TEXTS)
    assert sum(np.asarray(cand.run(f)).shape[0] for f in feeds) == len(TEXTS)
    ids = np.array([[2, 10, 11, 3]], dtype=np.int64)
    one = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    assert np.asarray(cand.run(cand.from_ids(one))).shape == (1, 2)
    compile(child_source(cand.child), "<child>", "exec")
    assert cand.size["model_bytes"] > 0 and cand.size["total_bytes"] >= cand.size["model_bytes"]


@pytest.fixture(scope="module")
def ref_probs(tiny_checkpoint):
    from lpm_edge.bench.candidates import reference_candidate

    cand, _ = reference_candidate(tiny_checkpoint, threads=1, max_length=32)
    assert cand.info["attention"] in ("sdpa", "eager")
    return cand.predict(TEXTS)


def test_torch_dynamic_int8(tiny_checkpoint, ref_probs):
    from lpm_edge.bench.peers import torch_int8_candidate

    cand = torch_int8_candidate(tiny_checkpoint, threads=1, max_length=32)
    assert cand.kind == "pytorch-int8"
    _check(cand, ref_probs)


def test_optimum_avx2_dynamic_int8(tiny_checkpoint, ref_probs, tmp_path):
    pytest.importorskip("optimum.onnxruntime")
    from lpm_edge.bench.peers import optimum_candidate, optimum_export

    model_dir = optimum_export(tiny_checkpoint, tmp_path)
    cand = optimum_candidate(model_dir, threads=1, max_length=32)
    assert cand.kind == "optimum" and cand.info["providers"] == ["CPUExecutionProvider"]
    _check(cand, ref_probs)


def test_optimum_o2_fused_fp32(tiny_checkpoint, ref_probs, tmp_path):
    pytest.importorskip("optimum.onnxruntime")
    import onnx

    from lpm_edge.bench.peers import OPTIMUM_O2_FILE, optimum_o2_candidate, optimum_o2_export

    model_dir = optimum_o2_export(tiny_checkpoint, tmp_path)
    graph = onnx.load(str(model_dir / OPTIMUM_O2_FILE)).graph
    ops = {n.op_type for n in graph.node}
    assert "SkipLayerNormalization" in ops  # ONNX Runtime's transformer fusions ran
    assert not ops & {"MatMulInteger", "DynamicQuantizeLinear", "QuantizeLinear"}  # fp32, unquantized
    cand = optimum_o2_candidate(model_dir, threads=1, max_length=32)
    assert cand.kind == "optimum" and cand.name == "optimum O2 fused fp32" and "O2" in cand.info["quantization"]
    np.testing.assert_allclose(cand.predict(TEXTS), ref_probs, atol=1e-4)  # fp32: the reference's scores
    _check(cand, ref_probs)
