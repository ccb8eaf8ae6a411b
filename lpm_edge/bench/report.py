"""The benchmark report: a versioned JSON document and its Markdown rendering."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_SCHEMA = 1


@dataclass
class Report:
    """Every figure of one `bench` run, with the machine it came from."""

    data: dict[str, Any]
    candidates: list[dict[str, Any]]
    machine: dict[str, Any]
    method: dict[str, Any]
    created: str
    schema_version: int = REPORT_SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "created": self.created, "data": self.data,
                "method": self.method, "machine": self.machine, "candidates": self.candidates, **self.extra}

    def write(self, out: Path) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "report.json", out / "report.md"]
        _write_atomic(paths[0], json.dumps(self.to_dict(), indent=2) + "\n")
        _write_atomic(paths[1], self.markdown())
        return paths

    def markdown(self) -> str:
        ref = self.candidates[0]
        cpu = self.machine["cpu"]
        lines = [
            "# lpm-edge benchmark",
            "",
            f"Data: {self.data['name']} ({self.data['split']} split, {self.data['n']} texts). "
            f"Machine: {cpu['model']}, {cpu['cores']} cores, flags "
            + ", ".join(k for k, v in cpu["flags"].items() if v) + ".",
            f"Latency: batch 1, end to end (tokenization included), real texts, "
            f"{self.method['latency_texts']} texts × {self.method['repeats']} rounds, candidates interleaved; "
            f"{self.method['isolation']}.",
            "",
            "| model | accuracy | macro-F1 | loss (points, 95% CI) | agreement | median ms | p95 ms | speed-up | size MB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for c in self.candidates:
            lat = c["latency"]["batch1"]
            loss = c.get("accuracy_loss_points")
            ci = c.get("accuracy_loss_ci95")
            loss_s = "—" if loss is None else f"{loss:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"
            agree = c.get("agreement")
            lines.append(
                f"| {c['name']} | {c['accuracy']*100:.2f}% | {c['macro_f1']:.4f} | {loss_s} | "
                f"{'—' if agree is None else f'{agree*100:.1f}%'} | {lat['median_ms']:.2f} | {lat['p95_ms']:.2f} | "
                f"{ref['latency']['batch1']['median_ms'] / lat['median_ms']:.2f}× | {c['size_bytes']/1e6:.1f} |"
            )
        lines += ["", "Accuracy loss is the reference's accuracy minus the candidate's, in points (positive = worse).",
                  "Speed-up is the reference's median batch-1 latency over the candidate's.", ""]
        return "\n".join(lines)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
