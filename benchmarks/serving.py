"""`lpm-edge serve` under load on the loopback: requests/s and p50/p99 latency at concurrency 1, 8, 32,
micro-batching on and off, against a plain transformers pipeline behind the same server.

    PYTHONPATH=. .venv/bin/python benchmarks/serving.py runs/bundle --checkpoint runs/ckpt \
        [--concurrency 1,8,32] [--seconds 8] [--out benchmarks/results]

Each server is a fresh process (uvicorn, one worker); the client is this process: N threads, each
with a keep-alive connection, sending one real Rotten Tomatoes text per request, closed loop (a
thread sends its next request when the last one is answered), for `--seconds` after a warm-up.
Client and server share the machine's cores, as on a one-box deployment. Writes serving.json/.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

import _report  # benchmarks/_report.py, beside this script

# A transformers pipeline behind the same Starlette app and micro-batcher as the bundle.
PIPELINE_SERVER = r'''
import json, sys
import numpy as np, torch, uvicorn
from transformers import pipeline
from lpm_edge.serve import Batching, create_app
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
pipe = pipeline("text-classification", model=cfg["checkpoint"], device=-1)
labels = [pipe.model.config.id2label[i] for i in range(pipe.model.config.num_labels)]
def predict(texts):
    with torch.inference_mode():
        out = pipe(list(texts), top_k=None, truncation=True, max_length=128, batch_size=len(texts))
    return np.array([[{d["label"]: d["score"] for d in row}[l] for l in labels] for row in out], np.float32)
app = create_app(predict, labels, {"backend": "transformers pipeline"}, batching=Batching(**cfg["batching"]))
uvicorn.run(app, host="127.0.0.1", port=cfg["port"], log_level="warning")
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(backend: str, bundle: Path, checkpoint: Path | None, batching: bool, cores: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    if backend == "lpm-edge":
        cmd = [sys.executable, "-m", "lpm_edge.cli", "-q", "serve", str(bundle), "--port", str(port)]
        cmd += [] if batching else ["--no-batching"]
    else:
        cfg = {"checkpoint": str(checkpoint), "port": port, "threads": cores,
               "batching": {"enabled": batching}}
        cmd = [sys.executable, "-c", PIPELINE_SERVER, json.dumps(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{backend} server exited: {proc.stderr.read()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit(f"{backend} server not ready in 180 s")


def load(port: int, texts: list[str], concurrency: int, seconds: float, warmup: float = 3.0) -> dict:
    latencies: list[float] = []
    errors = [0]
    stop_at = [0.0]
    begin = time.monotonic() + warmup
    stop_at[0] = begin + seconds
    lock = threading.Lock()

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        i = k
        while True:
            t = time.monotonic()
            if t >= stop_at[0]:
                break
            body = json.dumps({"text": texts[i % len(texts)]})
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            done = time.monotonic()
            i += concurrency
            if t >= begin:  # requests sent during the warm-up are not counted
                with lock:
                    if resp.status == 200:
                        latencies.append(done - t)
                    else:
                        errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    lat = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(lat), "errors": errors[0],
            "requests_per_s": round(len(lat) / seconds, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 1) if len(lat) else None}


def metadata(port: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/metadata")
    return json.loads(conn.getresponse().read())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("bundle", type=Path)
    p.add_argument("--checkpoint", type=Path, default=None, help="the checkpoint, for the transformers pipeline")
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = p.parse_args()
    from lpm_edge.data import rotten_tomatoes
    from lpm_edge.scoring.run import available_cores
    from lpm_edge.sysinfo import machine

    cores = available_cores()
    texts = list(rotten_tomatoes().test.texts)
    levels = [int(c) for c in a.concurrency.split(",")]
    backends = ["lpm-edge"] + (["transformers"] if a.checkpoint else [])
    results: dict = {"machine": machine(), "command": " ".join(sys.argv), "seconds": a.seconds, "runs": []}
    for backend in backends:
        for batching in (True, False):
            proc, port = start(backend, a.bundle, a.checkpoint, batching, cores)
            try:
                for c in levels:
                    before = metadata(port)
                    r = {"backend": backend, "batching": batching, **load(port, texts, c, a.seconds)}
                    after = metadata(port)
                    r["texts_per_model_call"] = round((after["texts"] - before["texts"])
                                                      / max(1, after["model_calls"] - before["model_calls"]), 2)
                    print(json.dumps(r), flush=True)
                    results["runs"].append(r)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    rows = [[r["backend"], "on" if r["batching"] else "off", r["concurrency"], r["requests_per_s"], r["p50_ms"],
             r["p99_ms"], r["texts_per_model_call"]] for r in results["runs"]]
    print(_report.write(a.out, "serving", results, "Serving on the loopback",
                        ["backend", "micro-batching", "concurrency", "requests/s", "p50 ms", "p99 ms",
                         "texts per model call"], rows))


if __name__ == "__main__":
    main()
