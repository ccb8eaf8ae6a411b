"""`lpm-edge serve` for real: concurrent clients, micro-batching, 4xx answers, graceful shutdown."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

from lpm_edge.serve.app import Limits, parse_texts  # noqa: E402  (needs the serve extra)

from ..conftest import synthetic_rows


def test_concurrent_requests_get_their_own_answers_in_shared_batches(start_server, tiny_fp32_bundle):
    from lpm_edge import load

    server = start_server(tiny_fp32_bundle, "--max-wait-ms", "50")
    texts = [t for t, _ in synthetic_rows(48, seed=5)]
    requests = [{"text": t} for t in texts[:32]] + [{"texts": texts[i : i + 4]} for i in range(32, 48, 4)]
    barrier = threading.Barrier(len(requests))

    def call(body):
        barrier.wait()
        return server.request("POST", "/predict", body)

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(call, requests))
    assert all(status == 200 for status, _ in answers)
    got = [a for _, a in answers[:32]] + [p for _, a in answers[32:] for p in a["predictions"]]
    expected = load(tiny_fp32_bundle, providers="cpu").predict_proba(texts)
    assert [g["label"] for g in got] == [("neg", "pos")[k] for k in expected.argmax(axis=1)]
    assert np.allclose([[g["scores"]["neg"], g["scores"]["pos"]] for g in got], expected, atol=1e-4)
    status, meta = server.request("GET", "/metadata")
    assert status == 200 and meta["labels"] == ["neg", "pos"] and meta["texts"] == 48
    assert meta["model_calls"] < len(requests)  # requests were gathered into shared model calls
    assert server.request("GET", "/health") == (200, {"status": "ok"})


def test_bad_requests_get_4xx_json_errors(start_server, tiny_bundle):
    server = start_server(tiny_bundle, "--max-body-bytes", "2000", "--max-texts", "3", "--max-chars", "100",
                          "--no-batching")
    cases = [
        (b"{not json", 400, "invalid_json"),
        (json.dumps({"texts": "one string"}).encode(), 422, "invalid_request"),
        (json.dumps({"texts": ["ok", 7]}).encode(), 422, "invalid_text"),
        (json.dumps({"comment": "no texts"}).encode(), 422, "invalid_request"),
        (json.dumps({"texts": ["a"] * 4}).encode(), 413, "too_many_texts"),
        (json.dumps({"text": "x" * 101}).encode(), 422, "text_too_long"),
        (json.dumps({"text": "x" * 5000}).encode(), 413, "body_too_large"),
        (b'{"text": "\\ud800"}', 422, "invalid_text"),
    ]
    for raw, status, code in cases:
        got, body = server.request("POST", "/predict", raw=raw)
        assert (got, body["error"]["code"]) == (status, code), raw[:40]
        assert body["error"]["message"]
    assert server.request("GET", "/nowhere")[0] == 404
    assert server.request("GET", "/predict")[0] == 405
    status, one = server.request("POST", "/predict", {"text": "a great film"})
    assert status == 200 and one["label"] in ("neg", "pos") and abs(sum(one["scores"].values()) - 1) < 1e-5
    assert server.request("POST", "/predict", {"texts": []}) == (200, {"predictions": []})


def test_shutdown_finishes_accepted_requests(start_server, tiny_bundle):
    # Requests inside the server when SIGTERM arrives: one whose body is still arriving (sent in
    # two halves around the signal), and several in a long batching window.
    server = start_server(tiny_bundle, "--max-wait-ms", "1500")
    body = json.dumps({"text": "a great film"}).encode()
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    slow.sendall(b"POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body[:10])
    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(server.request, "POST", "/predict", {"text": f"a great film {i}"}) for i in range(6)]
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        slow.sendall(body[10:])
        answers = [f.result() for f in futures]
    reply = slow.recv(65536)
    slow.close()
    assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
    assert [status for status, _ in answers] == [200] * 6
    assert server.proc.wait(timeout=30) == 0


def test_parse_texts_rules():
    limits = Limits(max_texts=2, max_chars=5)
    assert parse_texts(b'{"text": "hi"}', limits) == (["hi"], True)
    assert parse_texts(b'{"texts": ["a", "b"]}', limits) == (["a", "b"], False)
