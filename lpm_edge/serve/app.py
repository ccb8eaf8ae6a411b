"""The HTTP API on Starlette: POST /predict, GET /health, /ready, /metadata.

Starlette (the ASGI toolkit FastAPI is built on) rather than FastAPI: four routes and hand-checked
JSON do not need pydantic or generated schemas, and two small dependencies (starlette, uvicorn) keep
the `serve` extra light.

Every error is JSON: {"error": {"code": ..., "message": ...}} with a 4xx status for the client's
mistakes (400 bad JSON, 413 too large, 422 wrong shape or type) and 503 while shutting down.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .batcher import Batching, MicroBatcher, Predict

log = logging.getLogger("lpm_edge.serve")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20  # 1 MiB
    max_texts: int = 256  # per request
    max_chars: int = 20_000  # per text (the model reads only max_length tokens of it anyway)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for piece in request.stream():  # a chunked body is cut off at the limit too
        body += piece
        if len(body) > limit:
            raise ApiError(413, "body_too_large", f"the body exceeds the limit of {limit} bytes")
    return bytes(body)


def parse_texts(body: bytes, limits: Limits, pairs: bool = False) -> tuple[list[Any], bool]:
    """The texts of a /predict body and whether it held one "text" (not a "texts" list). For a bundle on
    sentence pairs each text is a [text, text_pair] list of two strings (returned as tuples)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(data, dict) or ("text" in data) == ("texts" in data):
        raise ApiError(422, "invalid_request", 'send a JSON object with "text": "..." or "texts": ["...", ...]')
    single = "text" in data
    texts = [data["text"]] if single else data["texts"]
    if not isinstance(texts, list):
        raise ApiError(422, "invalid_request", f'"texts" must be a list of strings, got {type(texts).__name__}')
    if len(texts) > limits.max_texts:
        raise ApiError(413, "too_many_texts", f"{len(texts)} texts; the limit is {limits.max_texts} per request")
    if pairs:
        return [_pair(t, '"text"' if single else f'"texts"[{i}]', limits) for i, t in enumerate(texts)], single
    for i, t in enumerate(texts):
        _check_text(t, '"text"' if single else f'"texts"[{i}]', limits)
    return texts, single


def _pair(t: Any, where: str, limits: Limits) -> tuple[str, str]:
    if not isinstance(t, list) or len(t) != 2:
        raise ApiError(422, "invalid_text", f"{where} must be a [text, text_pair] list of two strings: this bundle "
                                            "scores sentence pairs")
    _check_text(t[0], f"{where}[0]", limits)
    _check_text(t[1], f"{where}[1]", limits)
    return (t[0], t[1])


def _check_text(t: Any, where: str, limits: Limits) -> None:
    if not isinstance(t, str):
        raise ApiError(422, "invalid_text", f"{where} is {type(t).__name__}, expected a string")
    if len(t) > limits.max_chars:
        raise ApiError(422, "text_too_long", f"{where} has {len(t)} characters; the limit is {limits.max_chars}")
    try:
        t.encode("utf-8")
    except UnicodeEncodeError:  # JSON's \ud800 escapes decode to lone surrogates
        raise ApiError(422, "invalid_text", f"{where} is not valid Unicode (a lone surrogate)") from None


def create_app(predict: Predict, labels: Sequence[str], metadata: Mapping[str, Any] | None = None,
               limits: Limits = Limits(), batching: Batching = Batching(),
               records: Callable[[Any], list[dict[str, Any]]] | None = None, pairs: bool = False) -> Starlette:
    """An ASGI app around `predict` (texts -> one output per text, sliceable), run on the model's thread:
    a loaded bundle's `records` (each text's JSON prediction, whatever the task), or e.g. `predict_proba`.
    records: a request's slice of `predict`'s outputs -> its JSON predictions; None: `predict` gives
    records (dicts) already, else probabilities (n, labels): the label with the highest score, its score
    and every label's score. pairs: each text is a [text, text_pair] list (a bundle on sentence pairs)."""
    labels = list(labels)
    batcher = MicroBatcher(predict, batching)
    state = {"ready": False}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await batcher.start()
        state["ready"] = True
        yield
        # uvicorn has stopped accepting and finished the requests in flight by now
        state["ready"] = False
        await batcher.stop()

    async def predict_route(request: Request) -> JSONResponse:
        if not state["ready"]:
            return _error(503, "shutting_down", "the server is shutting down; retry on another instance")
        batcher.inflight += 1  # one event loop: no lock needed
        try:
            return await _predict(request)
        finally:
            batcher.inflight -= 1

    async def _predict(request: Request) -> JSONResponse:
        try:
            texts, single = parse_texts(await _read_body(request, limits.max_body_bytes), limits, pairs)
        except ApiError as exc:
            return _error(exc.status, exc.code, exc.message)
        except ClientDisconnect:
            return _error(400, "client_disconnected", "the client went away before sending its body")
        if not texts:
            return JSONResponse({"predictions": []})
        outputs = await batcher.submit(texts)
        preds = records(outputs) if records else [
            row if isinstance(row, dict) else _prediction(labels, row) for row in outputs]
        return JSONResponse(preds[0] if single else {"predictions": preds})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    async def meta(request: Request) -> JSONResponse:
        return JSONResponse({**(metadata or {}), "labels": labels, "limits": asdict(limits),
                             "batching": asdict(batching), "model_calls": batcher.calls, "texts": batcher.texts})

    routes = [Route("/predict", predict_route, methods=["POST"]), Route("/health", health, methods=["GET"]),
              Route("/ready", ready, methods=["GET"]), Route("/metadata", meta, methods=["GET"])]
    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: _http_error, Exception: _server_error})


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    status = getattr(exc, "status_code", 500)  # 404 unknown path, 405 wrong method
    return _error(status, "not_found" if status == 404 else "http_error",
                  f"{request.method} {request.url.path}: {getattr(exc, 'detail', '')}; "
                  "the API is POST /predict, GET /health, /ready, /metadata")


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return _error(500, "internal_error", f"{type(exc).__name__}: {str(exc)[:200]}")


def _prediction(labels: Sequence[str], row: np.ndarray) -> dict[str, Any]:
    k = int(row.argmax())
    return {"label": labels[k], "score": float(row[k]), "scores": dict(zip(labels, map(float, row)))}
