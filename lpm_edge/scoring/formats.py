"""Streaming readers and writers for batch scoring: CSV, TSV, JSONL (stdlib) and Parquet (pyarrow).

A reader yields `Chunk`s of at most `chunk_rows` input rows, so memory stays bounded whatever
the file size. Chunk boundaries depend only on the file and `chunk_rows`, which is what lets an
interrupted run resume by chunk index. Each format keeps its rows in its own form (CSV: lists of
fields, JSONL: dicts, Parquet: a RecordBatch) and writes them back with the bundle's task's columns
added (single-label: pred_label, pred_score; see Task.columns), so every other column passes through
untouched.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from ..errors import ConfigError, DataError, require

LABEL_COLUMN = "pred_label"
SCORE_COLUMN = "pred_score"
# The columns scoring adds, as (name, type): a task's `columns()`; these are a single-label bundle's.
Columns = Sequence[tuple[str, str]]
DEFAULT_COLUMNS: Columns = ((LABEL_COLUMN, "string"), (SCORE_COLUMN, "float"))

SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class Chunk:
    index: int
    texts: list[Any]  # the text of every good row, in input order ((text, text_pair) for pairs)
    rows: Any  # the good rows in the format's own form
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line or row number, reason)
    size: int = 0  # input rows read, good and bad


def format_of(path: Path) -> str:
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"{path}: unknown file type {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
    return fmt


def cell(value: Any, kind: str) -> Any:
    """A value of a column of `kind` as a CSV/TSV field (str)."""
    if kind == "float":
        return f"{value:.6f}"
    if kind in ("json", "vector"):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return value


def json_value(value: Any, kind: str) -> Any:
    """A value of a column of `kind` as JSONL writes it (floats to 6 decimals; JSON cells native)."""
    if kind == "float":
        return round(float(value), 6)
    return value


def check_text(text: object, max_chars: int) -> str | None:
    """Why `text` cannot be scored, or None when it can."""
    if not isinstance(text, str):
        return f"not text ({'missing' if text is None else type(text).__name__})"
    if len(text) > max_chars:
        return f"too long ({len(text):,} characters, limit {max_chars:,}; raise --max-chars)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8, kept by errors="surrogateescape"
        return "not UTF-8 text"
    return None


class Format:
    """One file format: `chunks()` reads, `write_part()` and `join()` write."""

    name = ""
    part_suffix = ""

    def __init__(self, path: Path, text_column: str, chunk_rows: int, max_chars: int,
                 text_pair_column: str | None = None, columns: Columns = DEFAULT_COLUMNS) -> None:
        self.path, self.text_column, self.chunk_rows, self.max_chars = path, text_column, chunk_rows, max_chars
        self.text_pair_column = text_pair_column  # a bundle on sentence pairs: each row's second text
        self.added = tuple(columns)  # the (name, type) columns scoring adds
        self.added_names = [name for name, _ in self.added]
        self._keys: list[Any] = self._columns()  # where a row holds its texts: keys (JSONL), indices (CSV)

    def _columns(self) -> list[str]:
        return [self.text_column, *([self.text_pair_column] if self.text_pair_column else [])]

    def _example(self, values: Sequence[Any]) -> tuple[str | None, Any]:
        """(why the row cannot be scored or None, its text or (text, text_pair)) from its column values."""
        for column, value in zip(self._columns(), values):
            reason = check_text(value, self.max_chars)
            if not reason and column == self.text_pair_column and not value.strip():
                reason = "empty"
            if reason:
                return (f"second text (column {column!r}): {reason}" if column == self.text_pair_column
                        else reason), None
        return None, (values[0] if len(values) == 1 else (values[0], values[1]))

    def chunks(self) -> Iterator[Chunk]:
        raise NotImplementedError

    def _chunked(self, rows: Iterable[tuple[int, str | None, Any]]) -> Iterator[Chunk]:
        """Chunks of `chunk_rows` input rows from (line, why the row is bad or None, row) triples; a row
        not bad yet is judged by its texts (`_example`)."""
        chunk = Chunk(0, [], [])
        for line, reason, row in rows:
            chunk.size += 1
            example = None
            if not reason:
                reason, example = self._example([row[k] for k in self._keys])
            if reason:
                chunk.bad.append((line, reason))
            else:
                chunk.texts.append(example)
                chunk.rows.append(row)
            if chunk.size == self.chunk_rows:
                yield chunk
                chunk = Chunk(chunk.index + 1, [], [])
        if chunk.size:
            yield chunk

    def progress(self) -> float:
        """Fraction of the input read so far (for the ETA)."""
        raise NotImplementedError

    def write_part(self, path: Path, rows: Any, values: Sequence[Sequence[Any]]) -> None:
        """Write the good rows of a chunk with the added columns' `values` (a tuple per row)."""
        raise NotImplementedError

    def _taken(self, names: Iterable[str]) -> list[str]:
        return sorted(set(self.added_names) & set(names))

    def join(self, parts: Sequence[Path], out: Path) -> None:
        """Concatenate the parts, in order, into `out` (the header once, where there is one)."""
        with open(out, "wb") as f:
            f.write(self._head())
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 20)

    def _head(self) -> bytes:
        return b""


class _Bytes:
    """A binary file that counts how far it was read (for the progress fraction)."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "rb")
        self.total = max(1, path.stat().st_size)

    def fraction(self) -> float:
        return 1.0 if self.f.closed else self.f.tell() / self.total  # closed: read to the end


class CsvFormat(Format):
    name = "csv"
    part_suffix = ".csv"
    delimiter = ","

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.header: list[str] = []
        self._src: _Bytes | None = None
        # TSV files (GLUE and most exports) do not quote fields: a '"' in a text is just a character
        self.quoting = csv.QUOTE_NONE if self.delimiter == "\t" else csv.QUOTE_MINIMAL
        self._read_header()

    def _open(self) -> Any:
        self._src = _Bytes(self.path)
        import io

        # surrogateescape: a field that is not UTF-8 becomes a bad row (for the text column) or
        # passes through byte for byte (for the other columns) instead of stopping the run.
        text = io.TextIOWrapper(self._src.f, encoding="utf-8-sig", errors="surrogateescape", newline="")
        return text, csv.reader(text, delimiter=self.delimiter, **self._dialect())

    def _dialect(self) -> dict[str, Any]:
        # A TSV field read without quoting holds no tab and no line break: it writes back as it came.
        return {"quoting": csv.QUOTE_NONE, "quotechar": None} if self.quoting == csv.QUOTE_NONE else {}

    def _read_header(self) -> None:
        text, reader = self._open()
        with text:
            try:
                self.header = next(reader)
            except StopIteration:
                raise DataError(f"{self.path}: empty file, expected a header row") from None
        self._src = None  # the header alone is not progress
        for column in self._columns():
            if column not in self.header:
                raise DataError(f"{self.path}:1: no column {column!r} in the header; columns are "
                                f"{self.header}. Choose with --text-column" + (" / --text-pair-column"
                                                                               if self.text_pair_column else ""))
        taken = self._taken(self.header)
        if taken:
            raise DataError(f"{self.path}:1: the input already has column(s) {sorted(taken)}, which scoring adds; "
                            "rename them first")
        self._keys = [self.header.index(c) for c in self._columns()]

    def chunks(self) -> Iterator[Chunk]:
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long fields are judged by --max-chars, per row
        text, reader = self._open()
        with text:
            next(reader)
            yield from self._chunked(self._rows(reader))

    def _rows(self, reader: Any) -> Iterator[tuple[int, str | None, list[str]]]:
        width = len(self.header)
        line = reader.line_num
        while True:
            start = line + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. a quote never closed: the rest of the file is one field
                raise DataError(f"{self.path}:{start}: malformed CSV ({exc}); fix the file") from None
            line = reader.line_num
            yield start, (f"{len(row)} fields, the header has {width}" if len(row) != width else None), row

    def progress(self) -> float:
        return self._src.fraction() if self._src else 0.0

    def _writer(self, f: Any) -> Any:
        return csv.writer(f, delimiter=self.delimiter, lineterminator="\n", **self._dialect())

    def write_part(self, path: Path, rows: Any, values: Sequence[Sequence[Any]]) -> None:
        kinds = [kind for _, kind in self.added]
        with open(path, "w", encoding="utf-8", errors="surrogateescape", newline="") as f:
            w = self._writer(f)
            for row, vals in zip(rows, values):
                w.writerow([*row, *(self._field(cell(v, k)) for v, k in zip(vals, kinds))])

    def _field(self, text: str) -> str:
        """An added field as written: TSV without quoting cannot hold a tab or line break (JSON cells escape
        theirs; labels come from the bundle), so any left become spaces."""
        if self.quoting == csv.QUOTE_NONE and isinstance(text, str):
            return text.replace("\t", " ").replace("\n", " ").replace("\r", " ")
        return text

    def _head(self) -> bytes:
        import io

        buf = io.StringIO()
        self._writer(buf).writerow([*self.header, *self.added_names])
        return buf.getvalue().encode("utf-8", errors="surrogateescape")


class TsvFormat(CsvFormat):
    name = "tsv"
    part_suffix = ".tsv"
    delimiter = "\t"


class JsonlFormat(Format):
    name = "jsonl"
    part_suffix = ".jsonl"
    _src: _Bytes | None = None

    def chunks(self) -> Iterator[Chunk]:
        self._src = _Bytes(self.path)
        with self._src.f as f:
            yield from self._chunked((n, *self._parse(raw)) for n, raw in enumerate(f, start=1) if raw.strip())

    def _parse(self, raw: bytes) -> tuple[str | None, Any]:
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return "not UTF-8 text", None
        except json.JSONDecodeError as exc:
            return f"not valid JSON ({exc.msg})", None
        if not isinstance(record, dict):
            return f"expected a JSON object, got {type(record).__name__}", None
        for column in self._columns():
            if column not in record:
                flag = "--text-pair-column" if column == self.text_pair_column else "--text-column"
                return f"no key {column!r} (keys: {sorted(record)[:10]}); choose with {flag}", None
        taken = self._taken(record)
        if taken:
            return f"already has {' or '.join(map(repr, taken))}, which scoring adds", None
        return None, record

    def progress(self) -> float:
        return self._src.fraction() if self._src else 0.0

    def write_part(self, path: Path, rows: Any, values: Sequence[Sequence[Any]]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for record, vals in zip(rows, values):
                added = {name: json_value(v, kind) for (name, kind), v in zip(self.added, vals)}
                f.write(json.dumps({**record, **added}, ensure_ascii=False) + "\n")


class ParquetFormat(Format):
    name = "parquet"
    part_suffix = ".parquet"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        require("pyarrow", "batch")
        import pyarrow.parquet as pq

        try:
            self._file = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises ArrowInvalid and friends
            raise DataError(f"{self.path}: not a readable Parquet file ({str(exc)[:200]})") from None
        schema = self._file.schema_arrow
        for column in self._columns():
            flag = "--text-pair-column" if column == self.text_pair_column else "--text-column"
            if column not in schema.names:
                raise DataError(f"{self.path}: no column {column!r}; columns are {schema.names}. "
                                f"Choose with {flag}")
            kind = str(schema.field(column).type)
            if kind not in ("string", "large_string", "string_view"):
                raise DataError(f"{self.path}: column {column!r} holds {kind}, not text; choose the text "
                                f"column with {flag}")
        taken = self._taken(schema.names)
        if taken:
            raise DataError(f"{self.path}: the input already has column(s) {sorted(taken)}, which scoring adds; "
                            "rename them first")
        self._read = 0

    def chunks(self) -> Iterator[Chunk]:
        import pyarrow as pa

        first = 0
        for index, batch in enumerate(self._file.iter_batches(batch_size=self.chunk_rows)):
            columns = [batch.column(c).to_pylist() for c in self._columns()]
            good, bad, keep = [], [], []
            for i, values in enumerate(zip(*columns)):
                reason, example = self._example(values)
                if reason:
                    bad.append((first + i + 1, reason))  # a 1-based row number
                else:
                    good.append(example)
                keep.append(reason is None)
            rows = batch if not bad else batch.filter(pa.array(keep))
            first += batch.num_rows
            self._read = first
            yield Chunk(index, good, rows, bad, batch.num_rows)

    def progress(self) -> float:
        return self._read / max(1, self._file.metadata.num_rows)

    def _types(self) -> list[Any]:
        import pyarrow as pa

        arrow = {"string": pa.string(), "float": pa.float32(), "json": pa.string(), "vector": pa.list_(pa.float32())}
        return [arrow[kind] for _, kind in self.added]

    def write_part(self, path: Path, rows: Any, values: Sequence[Sequence[Any]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_batches([rows])
        columns = list(zip(*values)) if len(values) else [() for _ in self.added]
        for (name, kind), kind_type, column in zip(self.added, self._types(), columns):
            cells = [json.dumps(v, ensure_ascii=False, separators=(",", ":")) for v in column] if kind == "json" \
                else list(column)
            table = table.append_column(name, pa.array(cells, kind_type))
        pq.write_table(table, path)

    def join(self, parts: Sequence[Path], out: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._file.schema_arrow
        for (name, _), kind_type in zip(self.added, self._types()):
            schema = schema.append(pa.field(name, kind_type))
        with pq.ParquetWriter(out, schema) as writer:
            for part in parts:  # one part in memory at a time
                writer.write_table(pq.read_table(part, schema=schema))


FORMATS: dict[str, type[Format]] = {"csv": CsvFormat, "tsv": TsvFormat, "jsonl": JsonlFormat, "parquet": ParquetFormat}


def open_format(path: Path, text_column: str, chunk_rows: int, max_chars: int,
                text_pair_column: str | None = None, columns: Columns = DEFAULT_COLUMNS) -> Format:
    if not path.is_file():
        raise DataError(f"input file {path} does not exist")
    return FORMATS[format_of(path)](path, text_column, chunk_rows, max_chars, text_pair_column, columns)
