"""`pip install "lpm-edge[cpu]"` into a fresh virtual environment gives a working runtime:
numpy, tokenizers and onnxruntime only, no torch, no transformers.

The wheel is built once from this source tree (no network); installing its dependencies uses
the package registries pip is configured with, and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_cpu_extra_in_a_fresh_venv_runs_a_bundle(tiny_bundle, tmp_path):
    timings = {}
    # Build from a copy: building in the worktree would leave build/ and *.egg-info behind.
    src = tmp_path / "src"
    shutil.copytree(REPO / "lpm_edge", src / "lpm_edge", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    start = time.perf_counter()
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
          str(tmp_path / "dist"), str(src)], cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("lpm_edge-*.whl")
    timings["wheel"] = time.perf_counter() - start

    start = time.perf_counter()
    _run([sys.executable, "-m", "venv", str(tmp_path / "venv")], cwd=tmp_path)
    python = tmp_path / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", f"{wheel}[cpu]"], cwd=tmp_path)
    timings["venv+install"] = time.perf_counter() - start

    bundle = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    code = (
        "import importlib.util, json, sys\n"
        "import lpm_edge\n"
        f"clf = lpm_edge.load({str(bundle)!r})\n"
        "p = clf.predict('good')\n"
        "print(json.dumps({'file': lpm_edge.__file__, 'label': p.label, 'providers': clf.providers,\n"
        "  'missing': {m: importlib.util.find_spec(m) is None for m in ('torch', 'transformers', 'onnx')},\n"
        "  'loaded_heavy': [m for m in ('torch', 'transformers', 'onnx') if m in sys.modules]}))\n"
    )
    start = time.perf_counter()
    r = json.loads(_run([str(python), "-c", code], cwd=tmp_path).stdout)
    timings["import+load+predict"] = time.perf_counter() - start
    assert r["label"] in ("neg", "pos")
    assert Path(r["file"]).is_relative_to(tmp_path / "venv"), r["file"]  # the installed copy, not the source
    assert r["missing"] == {"torch": True, "transformers": True, "onnx": True}, r
    assert r["loaded_heavy"] == []
    assert r["providers"] == ["CPUExecutionProvider"]

    cli = _run([str(tmp_path / "venv" / "bin" / "lpm-edge"), "-q", "predict", str(bundle), "a great film"], cwd=tmp_path)
    assert cli.stdout.split("\t")[0] in ("neg", "pos")
    installed = _run([str(python), "-m", "pip", "list", "--format=json"], cwd=tmp_path).stdout
    names = sorted(p["name"].lower() for p in json.loads(installed))
    print(f"fresh venv: {', '.join(f'{k} {v:.1f} s' for k, v in timings.items())}; installed: {', '.join(names)}")
