"""The benchmark report: a versioned JSON document, its Markdown rendering, and its plots.

Schema 3 (`report.json`; 3 renamed accuracy_loss_* to loss_* and added `metric`): top-level keys `schema`, `schema_version`, `created`, `lpm_edge`,
`command`, `data`, `method`, `machine`, `reference`, `candidates`, `plots`. Each candidate has
`name`, `kind`, `path`, `info`, the task's metrics (`accuracy`, `macro_f1` for classifiers),
`metric` (the one the loss is of), `loss_points`, `loss_ci95`, `agreement`, `size`, `latency` (`batch` and `seq_len`, keyed by the value
as a string, each with `end_to_end` and `model_only` summaries in ms), `throughput`, `process`
(cold start and peak RSS of a fresh process, or null) and `vs_reference` (ratios to the
reference, > 1 = better for speed-ups, < 1 = smaller for sizes and memory).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bundle import write_text_atomic
from ..errors import BenchError

SCHEMA = "lpm-edge.bench-report"
REPORT_SCHEMA = 3


@dataclass
class Report:
    """Every figure of one benchmark run, with the machine it came from and how it was measured."""

    data: dict[str, Any]
    candidates: list[dict[str, Any]]
    machine: dict[str, Any]
    method: dict[str, Any]
    created: str
    reference: str = ""
    command: str | None = None
    plots: list[str] = field(default_factory=list)
    schema_version: int = REPORT_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema `lpm-edge.bench-report`, version 2)."""
        from .. import __version__

        return {"schema": SCHEMA, "schema_version": self.schema_version, "created": self.created,
                "lpm_edge": __version__, "command": self.command, "data": self.data, "method": self.method,
                "machine": self.machine, "reference": self.reference or self.candidates[0]["name"],
                "candidates": self.candidates, "plots": self.plots}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> "Report":
        """Read back a report written by `to_dict`; refuses other schemas and versions."""
        if doc.get("schema") != SCHEMA or doc.get("schema_version") != REPORT_SCHEMA:
            raise BenchError(f"not a schema-{REPORT_SCHEMA} bench report (schema {doc.get('schema')!r}, "
                             f"version {doc.get('schema_version')!r}); re-run lpm-edge bench with this version")
        return cls(data=doc["data"], candidates=doc["candidates"], machine=doc["machine"], method=doc["method"],
                   created=doc["created"], reference=doc["reference"], command=doc.get("command"),
                   plots=list(doc.get("plots", [])))

    def write(self, out: Path, plots: bool = True) -> list[Path]:
        """Write report.json, report.md and (with `plots`) the PNGs into `out`; return their paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        if plots:
            from .plots import write_plots

            written = write_plots(self.to_dict(), out)
            self.plots = [p.name for p in written]
        paths = [out / "report.json", out / "report.md"]
        write_text_atomic(paths[0], json.dumps(self.to_dict(), indent=2) + "\n")
        write_text_atomic(paths[1], self.markdown())
        return paths + written

    def markdown(self) -> str:
        """Tables a person reads: accuracy, latency, resources, then how it was measured."""
        from .markdown import render

        return render(self.to_dict())
