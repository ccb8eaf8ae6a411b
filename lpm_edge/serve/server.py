"""Run the API under uvicorn, one process or several (`workers`), each with its own model."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, require
from .app import Limits, create_app
from .batcher import Batching

log = logging.getLogger("lpm_edge.serve")

_ENV = "LPM_EDGE_SERVE_CONFIG"  # how worker processes started by uvicorn get the config


@dataclass(frozen=True)
class ServeConfig:
    bundle: str
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    threads: int | None = None  # ONNX Runtime threads per worker (None: cores // workers)
    providers: str = "auto"
    batching: Batching = field(default_factory=Batching)
    limits: Limits = field(default_factory=Limits)
    graceful_seconds: float = 30.0  # how long shutdown waits for requests in flight

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeConfig":
        data = json.loads(text)
        return cls(**{**data, "batching": Batching(**data["batching"]), "limits": Limits(**data["limits"])})


def app_for_bundle(config: ServeConfig) -> Any:
    """Load the bundle and build its app (raises BundleError and friends at once, not per request)."""
    from ..runtime import load
    from ..scoring.run import available_cores

    threads = config.threads or max(1, available_cores() // config.workers)
    # no spinning: between requests the threads would burn the cores the HTTP side needs
    clf = load(config.bundle, providers=config.providers, threads=threads, spin=False)
    m = clf.manifest
    metadata = {"bundle": str(Path(config.bundle).name), "task": m.task, "max_length": m.max_length,
                "recipe": (m.recipe or {}).get("name"), "metrics": dict(m.metrics),
                "providers": list(clf.providers), "threads": threads, "workers": config.workers}
    metadata["inputs"] = list(clf.task.input_fields)  # ["text", "text_pair"]: send [text, text_pair] lists
    metadata["columns"] = [name for name, _ in clf.task.columns()]  # what `predict --input` adds per row
    # records on the model's thread (token entities take some Python work): the event loop only sends them
    return create_app(clf.records, clf.labels, metadata, config.limits, config.batching, pairs=clf.task.pairs)


def app_from_env() -> Any:
    """uvicorn's factory in each worker process when `workers` > 1."""
    return app_for_bundle(ServeConfig.from_json(os.environ[_ENV]))


def serve(config: ServeConfig) -> None:
    """Serve until SIGINT/SIGTERM; shutdown stops accepting, finishes requests in flight, then exits."""
    require("uvicorn", "serve")
    require("starlette", "serve")
    import uvicorn

    if config.workers < 1:
        raise ConfigError(f"workers must be at least 1, got {config.workers}")
    common = dict(host=config.host, port=config.port, log_level="warning",
                  timeout_graceful_shutdown=config.graceful_seconds)
    log.info("serving %s on http://%s:%d (%d worker%s, micro-batching %s)", config.bundle, config.host, config.port,
             config.workers, "s" if config.workers > 1 else "",
             f"{config.batching.max_wait_ms} ms / {config.batching.max_batch} texts" if config.batching.enabled
             else "off")
    # uvicorn raises the signal that stopped it again once it has shut down; for SIGTERM that would
    # make a graceful stop look like a kill (exit -15). Ignoring that second SIGTERM lets serve return.
    import signal

    signal.signal(signal.SIGTERM, lambda *_: None)
    if config.workers == 1:
        uvicorn.run(app_for_bundle(config), **common)
        return
    app_for_bundle(ServeConfig(**{**asdict(config), "workers": 1, "threads": 1,  # a bad bundle fails here, once
                                  "batching": config.batching, "limits": config.limits}))
    os.environ[_ENV] = config.to_json()
    uvicorn.run("lpm_edge.serve.server:app_from_env", factory=True, workers=config.workers, **common)
