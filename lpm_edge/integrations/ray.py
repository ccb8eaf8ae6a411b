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
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError, LpmEdgeError, require
from ..scoring.formats import check_text
from ..scoring.run import CHUNK_ROWS, MAX_CHARS, ScoreResult, original

log = logging.getLogger("lpm_edge.integrations.ray")


class BundlePredictor:
    """For `Dataset.map_batches(BundlePredictor, fn_constructor_kwargs={"bundle": ...}, concurrency=N)`.

    Takes batches as dicts of numpy arrays (batch_format "numpy", Ray's default) and returns them
    with the columns of the bundle's task added, as `lpm-edge predict --input` adds them
    (single-label `pred_label`, `pred_score`; a "json" column holds JSON text, a "vector" column a
    (rows, dim) float32 array). A row whose text is missing (None, NaN), not text or longer than
    `max_chars` stops the job with a one-line DataError, or with `skip_bad` is dropped from the
    output and counted (`skipped`, and a warning per batch).
    """

    def __init__(self, bundle: str | os.PathLike[str], text_column: str = "text", threads: int | None = None,
                 providers: str | Sequence[str] = "auto", skip_bad: bool = False, max_chars: int = MAX_CHARS,
                 text_pair_column: str | None = None) -> None:
        from ..runtime import load

        self.text_columns = [text_column, *([text_pair_column] if text_pair_column else [])]
        self.skip_bad, self.max_chars = skip_bad, max_chars
        self.clf = load(bundle, providers=providers, threads=threads)
        if self.clf.task.pairs != bool(text_pair_column):
            raise ConfigError(f"{bundle} scores sentence pairs: pass text_pair_column=" if self.clf.task.pairs
                              else f"{bundle} scores one text per row: drop text_pair_column=")
        self.skipped = 0  # bad rows dropped so far (skip_bad)

    def __call__(self, batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        for column in self.text_columns:
            if column not in batch:
                raise ConfigError(f"the dataset has no column {column!r}; columns are {sorted(batch)}; "
                                  "pass text_column= (and text_pair_column= for pairs)")
        texts, keep, bad = [], [], []
        for i, values in enumerate(zip(*(batch[c] for c in self.text_columns))):
            reason = next((f"column {c!r}: {r}" for c, r in
                           ((c, check_text(_missing(v), self.max_chars)) for c, v in zip(self.text_columns, values))
                           if r), None)
            if reason:
                bad.append((i, reason))
            else:
                texts.append(values[0] if len(values) == 1 else (values[0], values[1]))
            keep.append(reason is None)
        if bad:
            i, reason = bad[0]
            if not self.skip_bad:
                raise DataError(f"row {i} of a batch of {len(keep)}: {reason}; pass skip_bad=True to skip such rows")
            self.skipped += len(bad)
            log.warning("skipped %d bad rows of a batch of %d (row %d: %s); %d so far",
                        len(bad), len(keep), i, reason, self.skipped)
            mask = np.asarray(keep)
            batch = {k: np.asarray(v)[mask] for k, v in batch.items()}
        rows = [self.clf.task.row(r) for r in self.clf.records(texts)]
        added = {name: _column([row[j] for row in rows], kind) for j, (name, kind) in enumerate(self.clf.task.columns())}
        return {**batch, **added}


def _missing(value: Any) -> Any:
    """None for a missing cell (None, or the NaN pandas and numpy put there), else the value."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _column(values: list[Any], kind: str) -> np.ndarray:
    """An added column as a numpy batch holds it (see Task.columns for the kinds)."""
    if kind == "float":
        return np.asarray(values, dtype=np.float32)
    if kind == "vector":
        return np.asarray(values, dtype=np.float32).reshape(len(values), -1)
    if kind == "json":
        values = [json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in values]
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def score_dataset(ds: Any, bundle: str | os.PathLike[str], *, text_column: str = "text", concurrency: int = 1,
                  threads: int = 1, num_cpus: float | None = None, batch_size: int = CHUNK_ROWS,
                  skip_bad: bool = False, text_pair_column: str | None = None) -> Any:
    """`ds` with the task's columns added (single-label `pred_label` and `pred_score`), by `concurrency`
    actors of `threads` ONNX Runtime threads each, each reserving `num_cpus` of Ray's CPUs (default
    `threads`); `skip_bad`: drop rows without text instead of failing (see BundlePredictor);
    `text_pair_column`: each row's second text, for a bundle on sentence pairs."""
    return ds.map_batches(
        BundlePredictor, fn_constructor_kwargs={"bundle": str(Path(bundle).resolve()), "text_column": text_column,
                                                "threads": threads, "skip_bad": skip_bad,
                                                "text_pair_column": text_pair_column},
        concurrency=concurrency, num_cpus=threads if num_cpus is None else num_cpus, batch_size=batch_size,
        batch_format="numpy",
    )


class _ChunkScorer:
    """A Ray actor for `score_file_ray`: loads the bundle once, then scores chunk after chunk."""

    def __init__(self, bundle: str, providers: Any, threads: int) -> None:
        from ..runtime import load

        self.error: LpmEdgeError | None = None
        try:
            self.clf = load(bundle, providers=providers, threads=threads)
        except LpmEdgeError as exc:  # an actor dying in __init__ reaches the caller as Ray's report, not as this
            self.error = exc

    def ready(self) -> bool:
        if self.error is not None:
            raise self.error
        return True

    def score(self, texts: list[Any]) -> list[dict[str, Any]]:
        self.ready()
        return self.clf.records(texts)


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
        try:  # a bundle that fails to load in an actor: its one-line error, not Ray's traceback
            ray.get([a.ready.remote() for a in actors])
        except Exception as exc:
            for a in actors:
                ray.kill(a)
            if started:
                ray.shutdown()
            cause = original(exc)
            if cause is exc:
                raise
            raise cause from None
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
