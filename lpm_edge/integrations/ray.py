"""Batch scoring on a Ray cluster with Ray Data.

`BundlePredictor` is the callable class Ray's batch-inference pattern asks for: each actor loads the
bundle once, then scores batch after batch::

    import ray, lpm_edge.integrations.ray as lr
    ds = ray.data.read_parquet("s3://bucket/reviews/")
    scored = ds.map_batches(lr.BundlePredictor, fn_constructor_kwargs={"bundle": "/shared/bundle"},
                            concurrency=8, num_cpus=2, batch_size=4096)
    scored.write_parquet("s3://bucket/scored/")

The bundle path must be readable from every node (a shared file system, or a copy on each).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, require
from ..tasks import DEFAULT as DEFAULT_TASK
from ..scoring.formats import LABEL_COLUMN, SCORE_COLUMN, format_of
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
        probs = self.clf.predict_proba(texts) if texts else np.zeros((0, len(self.clf.labels)), np.float32)
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


def _read(path: Path) -> Any:
    import ray.data

    fmt = format_of(path)
    if fmt == "parquet":
        return ray.data.read_parquet(str(path))
    if fmt == "jsonl":
        return ray.data.read_json(str(path), lines=True)
    import pyarrow.csv as pacsv

    parse = pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ",", quote_char=False if fmt == "tsv" else '"')
    return ray.data.read_csv(str(path), parse_options=parse)  # pyarrow infers column types


def _write(batches: Any, fmt: str, out: Path) -> int:
    """Write pyarrow batches, in order, to one file of the format; the rows written."""
    import json

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rows, writer = 0, None
    with open(out, "wb") as f:
        for table in batches:
            rows += table.num_rows
            if fmt == "jsonl":
                f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in table.to_pylist()).encode())
                continue
            if writer is None:
                writer = (pq.ParquetWriter(f, table.schema) if fmt == "parquet" else pacsv.CSVWriter(
                    f, table.schema, write_options=pacsv.WriteOptions(delimiter="\t" if fmt == "tsv" else ",",
                                                                      quoting_style="needed")))
            writer.write_table(table)
        if writer is not None:
            writer.close()
    return rows


def score_file_ray(bundle: str | os.PathLike[str], input: str | os.PathLike[str], output: str | os.PathLike[str],
                   *, address: str | None = None, text_column: str = "text", concurrency: int = 1,
                   threads: int | None = None, batch_size: int = CHUNK_ROWS, force: bool = False) -> ScoreResult:
    """`score_file` on Ray: read with Ray Data, score on `concurrency` actors, write one file here.

    address: a Ray cluster ("auto", "ray://host:10001"); None starts a local Ray instance. Rows keep
    their input order. Bad rows are not skipped here: check the file with `score_file` first.
    """
    require("ray", "ray")
    import ray
    import ray.data

    from ..scoring.run import available_cores

    input, output = Path(input), Path(output)
    if format_of(input) != format_of(output):
        raise ConfigError(f"the output {output} must have the input's format ({input.suffix})")
    if output.exists() and not force:
        raise ConfigError(f"{output} already exists; pass --force to replace it or choose another --output")
    if not input.is_file():
        raise ConfigError(f"input file {input} does not exist")
    start = time.monotonic()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": available_cores()}))
    cpus = ray.cluster_resources().get("CPU", 1.0)
    threads = threads or max(1, int(cpus) // concurrency)
    # Actors that reserved every CPU would leave none for Ray Data's read tasks, and the job would
    # wait forever (seen with 2 actors on a 2-CPU instance): keep one CPU free for them.
    reserve = min(float(threads), max(0.1, (cpus - 1) / concurrency))
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True  # output rows in input order
    ds = score_dataset(_read(input), bundle, text_column=text_column, concurrency=concurrency, threads=threads,
                       num_cpus=reserve, batch_size=batch_size)
    tmp = output.with_name(f".{output.name}.partial")
    rows = _write(ds.iter_batches(batch_format="pyarrow", batch_size=None), format_of(output), tmp)
    os.replace(tmp, output)
    seconds = round(time.monotonic() - start, 3)
    log.info("scored %d rows into %s on Ray in %.1f s (%d actors)", rows, output, seconds, concurrency)
    return ScoreResult(output, rows, 0, 0, 0, seconds, concurrency)
