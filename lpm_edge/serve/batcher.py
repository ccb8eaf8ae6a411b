"""Dynamic micro-batching: texts of concurrent requests gathered into one model call.

One model call runs at a time, on one thread (ONNX Runtime spreads it over its own intra-op
threads). While it runs, new requests queue; the next call takes everything queued, and then waits
up to `max_wait_ms` for more, until it holds `max_batch` texts, but only while other requests are
inside the server (being read or parsed) and so may join: a lone request never waits (at
concurrency 1 a fixed wait measured 141 requests/s against 250 without batching; see
benchmarks/results/serving.md). With batching off, each request is
its own call, still one at a time: two concurrent ONNX Runtime calls on the same cores only
fight over them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Sequence


Predict = Callable[[Sequence[str]], Any]  # texts -> one output per text, sliceable (records, or probabilities)


@dataclass(frozen=True)
class Batching:
    enabled: bool = True
    max_wait_ms: float = 2.0  # how long a batch waits for more requests once it has one
    max_batch: int = 64  # texts per model call at most (a larger request still runs whole)


class MicroBatcher:
    def __init__(self, predict: Predict, batching: Batching) -> None:
        self.predict, self.batching = predict, batching
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="lpm-edge-model")
        self._queue: asyncio.Queue[tuple[list[str], asyncio.Future]] | None = None
        self._task: asyncio.Task | None = None
        self.inflight = 0  # requests inside the server, counted by the app from arrival to answer
        self.calls = 0  # model calls made (for /metadata and the tests)
        self.texts = 0

    async def start(self) -> None:
        if self.batching.enabled:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._loop(self._queue))

    async def stop(self) -> None:
        """Finish what is queued, then stop (the server has stopped taking requests by now)."""
        if self._task is not None and self._queue is not None:
            while not self._queue.empty():
                await asyncio.sleep(0.001)
            self._task.cancel()
        self._executor.shutdown(wait=True)

    async def submit(self, texts: list[str]) -> Any:
        if self._queue is None:
            return await self._call(texts)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((texts, future))
        return await future

    async def _call(self, texts: list[str]) -> Any:
        self.calls += 1
        self.texts += len(texts)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.predict, texts)

    async def _loop(self, queue: asyncio.Queue[tuple[list[str], asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            n = len(batch[0][0])
            deadline = loop.time() + self.batching.max_wait_ms / 1000
            while n < self.batching.max_batch:
                if queue.empty():
                    timeout = deadline - loop.time()
                    if timeout <= 0 or self.inflight <= len(batch):  # nobody else who could join
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout)
                    except asyncio.TimeoutError:
                        break
                else:
                    item = queue.get_nowait()
                batch.append(item)
                n += len(item[0])
            texts = [t for item, _ in batch for t in item]
            try:
                probs = await self._call(texts)
            except Exception as exc:  # the model's error goes to every request of the batch
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for item, future in batch:
                if not future.done():  # a client that went away cancelled its future
                    future.set_result(probs[start : start + len(item)])
                start += len(item)
