"""Batch scoring on a Ray cluster with Ray Data.

`BundlePredictor` is the callable class Ray's batch-inference pattern asks for: each actor loads the
bundle once, then scores batch after batch::

    import ray, lpm_edge.integrations.ray as lr
    ds = ray.data.read_parquet("s3://bucket/reviews/")
    scored = ds.map_batches(lr.BundlePredictor, fn_constructor_kwargs={"bundle": "/shared/bundle"},
                            concurrency=8, num_cpus=2, batch_size=4096)
    scored.write_parquet("s3://bucket/scored/")

The bundle path must be readable from every node (a shared file system, or a copy on each).

`score_file_ray` (behind `lpm-edge predict --input F --output F --ray [ADDRESS]`) is `score_file`
with Ray actors in place of worker processes: this process reads and writes the file in chunks,
the actors score them, so resume, skip-bad and the output are those of `score_file`.
"""

from __future__ import annotations

import itertools
import logging
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, require
from ..scoring.formats import LABEL_COLUMN, SCORE_COLUMN
from ..tasks import DEFAULT as DEFAULT_TASK
from ..scoring.run import CHUNK_ROWS, ScoreResult

log = logging.getLogger("lpm_edge.integrations.ray")


class BundlePredictor:
    """For `Dataset.map_batches(BundlePredictor, fn_constructor_kwargs={"bundle": ...}, concurrency=N)`.

    Takes batches as dicts of numpy arrays (batch_format "numpy", Ray's default) and returns them
    with `pred_label` and `pred_score` added.
    """

    def __init__(self, bundle: str | os.PathLike[str], text_column: str = "text", threads: int | None = None,
                 providers: str | Sequence[str] = "auto") -> None:
        from ..runtime import load

        self.text_column = text_column
        self.clf = load(bundle, providers=providers, threads=threads)
        if self.clf.task.kind != DEFAULT_TASK:  # pred_label/pred_score: one label per row
            raise ConfigError(f"{bundle} is a {self.clf.task.kind} bundle; BundlePredictor adds one label and its "
                              f"score per row, which only {DEFAULT_TASK} bundles give")

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.text_column not in batch:
            raise ConfigError(f"the dataset has no column {self.text_column!r}; columns are {sorted(batch)}; "
                              "pass text_column=")
        texts = [str(t) for t in batch[self.text_column]]
        probs = self.clf.predict_proba(texts)  # (rows, labels)
        best = probs.argmax(axis=1)
        labels = np.asarray(self.clf.labels, dtype=object)
        return {**batch, LABEL_COLUMN: labels[best], SCORE_COLUMN: probs[np.arange(len(best)), best]}


def score_dataset(ds: Any, bundle: str | os.PathLike[str], *, text_column: str = "text", concurrency: int = 1,
                  threads: int = 1, num_cpus: float | None = None, batch_size: int = CHUNK_ROWS) -> Any:
    """`ds` with `pred_label` and `pred_score` added, by `concurrency` actors of `threads` ONNX Runtime
    threads each, each reserving `num_cpus` of Ray's CPUs (default `threads`)."""
    return ds.map_batches(
        BundlePredictor, fn_constructor_kwargs={"bundle": str(Path(bundle).resolve()), "text_column": text_column,
                                                "threads": threads},
        concurrency=concurrency, num_cpus=threads if num_cpus is None else num_cpus, batch_size=batch_size,
        batch_format="numpy",
    )


class _ChunkScorer:
    """A Ray actor for `score_file_ray`: loads the bundle once, then scores chunk after chunk."""

    def __init__(self, bundle: str, providers: Any, threads: int) -> None:
        from ..runtime import load

        self.clf = load(bundle, providers=providers, threads=threads)

    def score(self, texts: list[str]) -> np.ndarray:
        return self.clf.predict_proba(texts)


def actor_scorer(bundle: str | os.PathLike[str], *, address: str | None = None, concurrency: int = 1,
                 threads: int | None = None, providers: str | Sequence[str] = "auto") -> Any:
    """For `score_file(..., scorer=)`: opens `concurrency` actors on Ray (a local instance when no
    `address` and none is running) and gives chunks to them in turn; close() ends the actors, and
    the local instance when it started one."""
    require("ray", "ray")
    import ray

    from ..scoring.run import available_cores

    def open_() -> tuple[Any, Any]:
        started = not ray.is_initialized()
        if started:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     **({} if address else {"num_cpus": available_cores()}))
        cpus = ray.cluster_resources().get("CPU", 1.0)
        each = threads or max(1, int(cpus) // concurrency)
        # Actors asking for more CPUs than the cluster has would never start, and their chunks
        # would wait forever: ask for a share of them instead (ONNX Runtime still runs `each` threads).
        actor = ray.remote(num_cpus=min(float(each), cpus / concurrency))(_ChunkScorer)
        actors = [actor.remote(str(Path(bundle).resolve()), providers, each) for _ in range(concurrency)]
        log.info("scoring on Ray: %d actors, %d threads each", concurrency, each)
        turn = itertools.count()

        def score(texts: list[str]) -> Any:
            return actors[next(turn) % concurrency].score.remote(texts).future()

        def close() -> None:
            for a in actors:
                ray.kill(a)
            if started:
                ray.shutdown()

        return score, close

    return open_


def score_file_ray(bundle: str | os.PathLike[str], input: str | os.PathLike[str], output: str | os.PathLike[str],
                   *, address: str | None = None, concurrency: int = 1, threads: int | None = None,
                   providers: str | Sequence[str] = "auto", **options: Any) -> ScoreResult:
    """`score_file` with the chunks scored by `concurrency` Ray actors (`threads` each, default
    cluster CPUs // concurrency): the same output, `resume` and `skip_bad`.

    address: a Ray cluster ("auto", "ray://host:10001"); None starts a local Ray instance (unless
    one is running). This process reads the input and writes the output, as `score_file` does; the
    actors only score texts, so the input need not be on the cluster's nodes, but the bundle must
    (a shared file system, or the same path on each). options: those of `score_file` (text_column,
    resume, skip_bad, force, chunk_rows, max_chars, progress).
    """
    from ..scoring import score_file

    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
    scorer = actor_scorer(bundle, address=address, concurrency=concurrency, threads=threads, providers=providers)
    return score_file(bundle, input, output, workers=concurrency, scorer=scorer, **options)
