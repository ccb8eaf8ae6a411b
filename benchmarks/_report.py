"""What benchmarks/scoring.py and serving.py share: the machine they ran on, in one line, and their
report written as JSON (everything) and Markdown (a title, the command, one table)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence


def machine_line(machine: dict[str, Any]) -> str:
    """'AMD EPYC, 2 cores, VNNI yes'."""
    cpu = machine["cpu"]
    return f"{cpu['model']}, {cpu['cores']} cores, VNNI {'yes' if cpu['vnni'] else 'no'}"


def write(out: Path, name: str, results: dict[str, Any], title: str, header: Sequence[str],
          rows: Sequence[Sequence[Any]]) -> str:
    """Write OUT/NAME.json and OUT/NAME.md ('# TITLE (machine)', the command, the table); the Markdown."""
    lines = [f"# {title} ({machine_line(results['machine'])})", "", f"`{results['command']}`", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out / f"{name}.md").write_text(text)
    return text
