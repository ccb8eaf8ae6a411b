"""benchmarks/_report.py, which the benchmark scripts share: the JSON and Markdown pair they write."""

import importlib.util
import json
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "_report.py"


def _report():
    spec = importlib.util.spec_from_file_location("_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_save_writes_json_and_markdown_beside_each_other(tmp_path):
    report = _report()
    report.save(tmp_path / "new" / "figures", {"path": tmp_path, "n": 3}, "| a |\n|---|")
    assert json.loads((tmp_path / "new" / "figures.json").read_text()) == {"path": str(tmp_path), "n": 3}
    assert (tmp_path / "new" / "figures.md").read_text() == "| a |\n|---|\n"
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["figures.json", "figures.md"]  # no .tmp left


def test_write_titles_the_table_with_the_machine_and_command(tmp_path, monkeypatch):
    report = _report()
    monkeypatch.setattr(sys, "argv", ["benchmarks/x.py", "--rows", "5"])
    results = {"machine": {"cpu": {"model": "Some CPU", "cores": 2, "vnni": True}}, "command": report.command()}
    text = report.write(tmp_path, "x", results, "Title", ["a", "b"], [[1, 2]])
    assert text.splitlines()[:3] == ["# Title (Some CPU, 2 cores, VNNI yes)", "",
                                     "`PYTHONPATH=. python benchmarks/x.py --rows 5`"]
    assert "| 1 | 2 |" in text and (tmp_path / "x.md").read_text() == text
    assert json.loads((tmp_path / "x.json").read_text()) == results
