"""`lpm-edge serve` for every task: POST /predict answers each text's record (vectors for embeddings,
entities for token classification), GET /metadata names the task. A real server on the loopback."""

from __future__ import annotations

import pytest

import lpm_edge

from ..task_bundles import KINDS, TEXTS, close, task_bundle
from .conftest import Server


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
    assert close(body["predictions"], want) and close(one, want[2])
    assert meta["task"] == kind and meta["columns"] == [n for n, _ in lpm_edge.load(bundle).task.columns()]
    assert bad_status == 422 and bad["error"]["code"] == "invalid_text"
    if kind == "embedding":
        assert len(one["embedding"]) == lpm_edge.load(bundle).task.dim
    if kind == "token-classification":
        assert all(TEXTS[2][e["start"]:e["end"]] == e["text"] for e in one["entities"])


@pytest.mark.slow
def test_a_pair_bundle_takes_text_and_text_pair_lists(tmp_path_factory, request):
    bundle = task_bundle("pairs", tmp_path_factory, request)
    pairs = [("the plot was dull", "a superb film"), ("a great story", "it was awful")]
    want = lpm_edge.load(bundle).records(pairs)
    server = Server(bundle)
    try:
        status, body = server.request("POST", "/predict", {"texts": [list(p) for p in pairs]})
        bad_status, bad = server.request("POST", "/predict", {"text": "one text"})
        meta = server.request("GET", "/metadata")[1]
    finally:
        server.stop()
    assert status == 200 and close(body["predictions"], want)
    assert bad_status == 422 and "[text, text_pair]" in bad["error"]["message"]
    assert meta["inputs"] == ["text", "text_pair"]


def test_parse_texts_takes_pairs():
    from lpm_edge.serve.app import ApiError, Limits, parse_texts

    assert parse_texts(b'{"texts": [["a", "b"]]}', Limits(), pairs=True) == ([("a", "b")], False)
    assert parse_texts(b'{"text": ["a", "b"]}', Limits(), pairs=True) == ([("a", "b")], True)
    for body in (b'{"text": "a"}', b'{"texts": [["a"]]}', b'{"texts": [["a", 3]]}'):
        with pytest.raises(ApiError):
            parse_texts(body, Limits(), pairs=True)
