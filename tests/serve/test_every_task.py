"""`lpm-edge serve` for every task: POST /predict answers each text's record (vectors for embeddings,
entities for token classification), GET /metadata names the task. A real server on the loopback."""

from __future__ import annotations

import pytest

import lpm_edge

from ..task_bundles import KINDS, TEXTS, task_bundle
from .conftest import Server


def _close(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) < 1e-5
    return a == b


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_predict_answers_every_tasks_records(kind, tmp_path_factory, request):
    bundle = task_bundle(kind, tmp_path_factory, request)
    want = lpm_edge.load(bundle).records(TEXTS)
    server = Server(bundle)
    try:
        status, body = server.request("POST", "/predict", {"texts": TEXTS})
        one_status, one = server.request("POST", "/predict", {"text": TEXTS[2]})
        meta_status, meta = server.request("GET", "/metadata")
        bad_status, bad = server.request("POST", "/predict", {"texts": [TEXTS[0], 3]})
    finally:
        server.stop()
    assert (status, one_status, meta_status) == (200, 200, 200), (body, one, meta)
    assert _close(body["predictions"], want) and _close(one, want[2])
    assert meta["task"] == kind and meta["columns"] == [n for n, _ in lpm_edge.load(bundle).task.columns()]
    assert bad_status == 422 and bad["error"]["code"] == "invalid_text"
    if kind == "embedding":
        assert len(one["embedding"]) == lpm_edge.load(bundle).task.dim
    if kind == "token-classification":
        assert all(TEXTS[2][e["start"]:e["end"]] == e["text"] for e in one["entities"])
