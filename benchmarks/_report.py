"""What the benchmark scripts share: the machine they ran on, in one line; their report written as
JSON (everything) and Markdown; the command line that reproduces them; their log lines on stderr.

A script beside this file imports it as `import _report` (the script's folder is on sys.path).
"""

from __future__ import annotations

import json
import logging
import sys
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
    save(out / name, results, text)
    return text


def save(stem: Path, results: dict[str, Any], markdown: str) -> None:
    """Write STEM.json (`results`; a value JSON has no type for, such as a Path, as its str) and
    STEM.md (`markdown`), each through a temporary file, making the folder if needed."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix, text in ((".json", json.dumps(results, indent=2, default=str)), (".md", markdown)):
        path = stem.with_suffix(suffix)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        tmp.replace(path)


def command() -> str:
    """The command line that ran this script, as a README quotes it: 'PYTHONPATH=. python benchmarks/x.py ...'."""
    return "PYTHONPATH=. python " + " ".join(sys.argv)


def log_to_stderr() -> None:
    """Log lines ('12:00:00 lpm_edge.export: ...') from INFO up on stderr, the figures on stdout."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
