"""`score_file`: a file of texts in, the same file with each row's prediction out (the columns the
bundle's task adds: single-label pred_label and pred_score; see Task.columns).

Each chunk is scored, then written as a part file in a work directory beside the output
(`.OUTPUT.work/`), together with a small record of what it held. The output is assembled from the
parts at the end, in a temporary file renamed into place, so a reader never sees half an output.
An interrupted run keeps its finished parts: `resume=True` scores only the chunks not done.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError, DataError, LpmEdgeError
from ..progress import Progress
from .formats import Chunk, Format, format_of, open_format

log = logging.getLogger("lpm_edge.scoring")

CHUNK_ROWS = 4096  # rows per chunk: what each worker scores at once, and the unit of --resume
MAX_CHARS = 100_000  # longer texts are bad rows (the model reads only max_length tokens of them anyway)
SHOWN_BAD = 20  # bad rows logged one by one; the rest only counted

Score = Callable[[list[str]], Any]  # texts -> their records (Classifier.records), or a Future of them


@dataclass(frozen=True)
class ScoreResult:
    output: Path
    rows: int  # rows written, all chunks
    skipped: int  # bad rows skipped, all chunks
    chunks: int
    resumed_chunks: int  # chunks an earlier run had finished
    seconds: float
    workers: int

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "output": str(self.output)}


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def work_dir(output: Path) -> Path:
    return output.with_name(f".{output.name}.work")


def score_file(
    bundle: str | os.PathLike[str],
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    text_column: str = "text",
    workers: int = 1,
    resume: bool = False,
    skip_bad: bool = False,
    force: bool = False,
    chunk_rows: int = CHUNK_ROWS,
    max_chars: int = MAX_CHARS,
    providers: str | Sequence[str] = "auto",
    progress: bool | None = None,
    scorer: Callable[[], tuple[Score, Callable[[], None]]] | None = None,
    text_pair_column: str | None = None,
) -> ScoreResult:
    """Score every row of `input` (CSV, TSV, JSONL or Parquet) into `output` (same format).

    The output holds the input's columns plus the task's (single-label: `pred_label` and `pred_score`;
    multi-label `pred_labels`, `pred_scores`; regression `pred_value`; multi-task each head's own named
    for it: `pred_HEAD`, `pred_HEAD_score(s)`; embedding `pred_embedding`; token classification
    `pred_entities`), rows in input order.
    workers: processes, each with cores // workers ONNX Runtime threads (1 = score in this process).
    resume: continue an interrupted run, scoring only chunks it had not finished.
    skip_bad: skip rows whose text is missing, not text, not UTF-8 or longer than `max_chars`
    (each is logged with its line); otherwise the first such row stops the run with a DataError.
    progress: a bar on a terminal (None = when stderr is one), else a log line every 30 s.
    scorer: opens where chunks are scored, returning (score, close): score(texts) gives their records
    (`Classifier.records`) or a Future of them, at most 2 x `workers` in flight. None: this
    process, or `workers` processes. `lpm_edge.integrations.ray.score_file_ray` passes Ray actors.
    text_pair_column: for a bundle on sentence pairs (required there), the column of each row's second
    text; a row whose second text is missing is a bad row like one without text.
    """
    from .. import bundle as _bundle, tasks as _tasks

    input, output = Path(input), Path(output)
    for name, value in (("workers", workers), ("chunk_rows", chunk_rows), ("max_chars", max_chars)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if format_of(input) != format_of(output):
        raise ConfigError(f"the output {output} must have the input's format ({input.suffix}); "
                          f"name it e.g. {output.with_suffix(input.suffix)}")
    if input.resolve() == output.resolve():
        raise ConfigError(f"--output {output} is the input; choose another path")
    if output.exists() and not force:
        raise ConfigError(f"{output} already exists; pass --force to replace it or choose another --output")
    _bundle.check_writable(output)
    with _bundle.opened(bundle, check_files=False) as (_, manifest):  # a bad bundle fails before any reading
        pass
    task = _tasks.from_manifest(manifest)
    pairs = len(manifest.input_fields) == 2
    if pairs != bool(text_pair_column):
        raise ConfigError(f"{bundle} scores sentence pairs: pass --text-pair-column naming the second text's column"
                          if pairs else f"{bundle} scores one text per row: drop --text-pair-column")
    fmt = open_format(input, text_column, chunk_rows, max_chars, text_pair_column, task.columns())
    work = _prepare_work(work_dir(output), _job(input, bundle, manifest, fmt), resume, force)
    done = {int(p.stem.split("-")[1]) for p in work.glob("part-*.json")}
    if done:
        log.info("resuming: %d chunks of %s already scored", len(done), input)

    start = time.monotonic()
    bar = Progress(None, "scoring", unit="rows", fraction=fmt.progress, bar=progress)
    score, close = scorer() if scorer is not None else _scorer(bundle, workers, providers)
    pending: deque[tuple[Chunk, Any]] = deque()
    skipped = 0
    total_chunks = 0
    try:
        for chunk in fmt.chunks():
            total_chunks += 1
            if chunk.index in done:
                continue
            if chunk.bad:
                _report_bad(input, chunk, skipped)
                if not skip_bad:
                    while pending:  # keep what is already being scored
                        _finish(fmt, work, task, *pending.popleft(), bar)
                    line, reason = chunk.bad[0]
                    raise DataError(
                        f"{input}:{line}: {reason}; pass --skip-bad to skip such rows"
                        + (f" (the scored chunks are kept in {work}: rerun with --resume)" if total_chunks > 1 else "")
                    )
                skipped += len(chunk.bad)
            pending.append((chunk, score(chunk.texts)))
            while len(pending) > 2 * workers - 1 or (pending and not isinstance(pending[0][1], Future)):
                _finish(fmt, work, task, *pending.popleft(), bar)
        while pending:
            _finish(fmt, work, task, *pending.popleft(), bar)
    finally:
        close()
        bar.close()

    records = [json.loads((work / f"part-{i:06d}.json").read_text()) for i in range(total_chunks)]
    tmp = output.with_name(f".{output.name}.partial")
    fmt.join([work / f"part-{i:06d}{fmt.part_suffix}" for i in range(total_chunks)], tmp)
    os.replace(tmp, output)
    shutil.rmtree(work, ignore_errors=True)
    result = ScoreResult(output, sum(r["rows"] for r in records), sum(r["skipped"] for r in records),
                         total_chunks, len(done), round(time.monotonic() - start, 3), workers)
    log.info("scored %d rows into %s in %.1f s (%d bad rows skipped, %d chunks resumed)",
             result.rows, output, result.seconds, result.skipped, result.resumed_chunks)
    return result


def _job(input: Path, bundle: Any, manifest: Any, fmt: Format) -> dict[str, Any]:
    """What an interrupted run must share with the one resuming it."""
    st = input.stat()
    return {"input": str(input.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns,
            "bundle": str(Path(bundle).resolve()), "model_sha256": manifest.files[manifest.model_file].get("sha256"),
            "text_column": fmt.text_column, "chunk_rows": fmt.chunk_rows, "max_chars": fmt.max_chars,
            **({"text_pair_column": fmt.text_pair_column} if fmt.text_pair_column else {})}


def _prepare_work(work: Path, job: dict[str, Any], resume: bool, force: bool) -> Path:
    record = work / "job.json"
    if work.exists() and resume:
        try:
            old = json.loads(record.read_text())
        except (OSError, ValueError):
            old = None
        changed = sorted(k for k in job if not old or old.get(k) != job[k])
        if changed:
            raise ConfigError(f"cannot resume from {work}: {', '.join(changed)} changed since that run; "
                              "rerun without --resume and with --force to start over")
        return work
    if work.exists() and not force:
        n = len(list(work.glob("part-*.json")))
        raise ConfigError(f"{work} holds {n} scored chunks of an interrupted run; pass --resume to continue it "
                          "or --force to start over")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    record.write_text(json.dumps(job, indent=2))
    return work


def _report_bad(input: Path, chunk: Chunk, seen: int) -> None:
    for line, reason in chunk.bad[: max(0, SHOWN_BAD - seen)]:
        log.warning("%s:%d: bad row, %s", input, line, reason)


def _finish(fmt: Format, work: Path, task: Any, chunk: Chunk, scored: Any, bar: Progress) -> None:
    """Write one scored chunk: its part file, then the record that marks it done (each renamed into place)."""
    records = _result(scored)  # one per good row
    part = work / f"part-{chunk.index:06d}{fmt.part_suffix}"
    tmp = part.with_name(part.name + ".tmp")
    fmt.write_part(tmp, chunk.rows, [task.row(r) for r in records])
    os.replace(tmp, part)
    meta = work / f"part-{chunk.index:06d}.json"
    meta.with_suffix(".tmp").write_text(json.dumps({"rows": len(records), "skipped": len(chunk.bad)}))
    os.replace(meta.with_suffix(".tmp"), meta)
    bar.advance(chunk.size)


def _result(scored: Any) -> list[dict[str, Any]]:
    """A chunk's records, waiting for a worker's Future; an LpmEdgeError raised where it was scored (a worker
    process, a Ray actor) comes back as itself, so the CLI gives its one line."""
    if not isinstance(scored, Future):
        return scored
    try:
        return scored.result()
    except Exception as exc:
        cause = original(exc)
        if cause is not exc:
            raise cause from None
        raise


def original(exc: BaseException) -> BaseException:
    """The LpmEdgeError behind an exception Ray raised for an actor's (its `cause`, also when the actor
    died in its constructor), else `exc` itself."""
    seen = 0
    cause: Any = exc
    while cause is not None and seen < 5:
        if isinstance(cause, LpmEdgeError) and not hasattr(cause, "cause"):
            return cause
        cause = getattr(cause, "cause", None)
        seen += 1
    return exc


# -- scoring: in this process, or in worker processes ------------------------------------------
_WORKER: Any = None


def _init_worker(bundle: str, providers: Any, threads: int) -> None:
    global _WORKER
    from ..runtime import load

    try:
        _WORKER = load(bundle, providers=providers, threads=threads)
    except LpmEdgeError as exc:  # an initializer that raises breaks the pool: raise it with each chunk instead
        _WORKER = exc


def _score_in_worker(texts: list[str]) -> list[dict[str, Any]]:
    if isinstance(_WORKER, LpmEdgeError):
        raise _WORKER
    return _WORKER.records(texts)


def _scorer(bundle: Any, workers: int, providers: Any) -> tuple[Score, Callable[[], None]]:
    """(score(texts) -> records or a Future of them, close())."""
    from ..runtime import load

    if workers == 1:
        return load(bundle, providers=providers).records, (lambda: None)
    import multiprocessing

    threads = max(1, available_cores() // workers)
    # spawn, not fork: ONNX Runtime's thread pools do not survive a fork
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(str(bundle), providers, threads))
    log.info("scoring with %d worker processes, %d threads each", workers, threads)
    return (lambda texts: pool.submit(_score_in_worker, texts)), (lambda: pool.shutdown(cancel_futures=True))
