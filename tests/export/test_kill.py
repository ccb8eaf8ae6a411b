"""Export never loses work: SIGKILL a real `lpm-edge export` at several points, then check that the
previous bundle is intact at its path and that nothing half-written there would load.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

import lpm_edge
from lpm_edge.errors import BundleError

REPO = Path(__file__).resolve().parents[2]


def _start_export(checkpoint: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "lpm_edge.cli", "-q", "export", str(checkpoint), "--out", str(out), "--force"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _scratch(out: Path) -> list[Path]:
    return sorted(p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _wait_for(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> bool:
    """Poll every few milliseconds until `ready()` or the process ends; True if `ready()` came first."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    return False


def _any_scratch(out: Path, suffix: str, inner: str | None = None) -> Callable[[], bool]:
    def ready() -> bool:
        for p in _scratch(out):
            if p.name.endswith(suffix) and (inner is None or (p / inner).exists()):
                return True
        return False

    return ready


def _after(seconds: float) -> Callable[[], bool]:
    start = time.monotonic()
    return lambda: time.monotonic() - start >= seconds


# Kill points: early (imports), at fixed delays, and at the moments the export writes beside its
# destination (work dir made, bundle dir made, model copied, first manifest written).
KILL_POINTS: dict[str, Callable[[Path], Callable[[], bool]]] = {
    "after-0.3s": lambda out: _after(0.3),
    "after-1.5s": lambda out: _after(1.5),
    "work-dir-appears": lambda out: _any_scratch(out, ".work"),
    "bundle-dir-appears": lambda out: _any_scratch(out, ".partial"),
    "model-copied": lambda out: _any_scratch(out, ".partial", "model.onnx"),
    "manifest-written": lambda out: _any_scratch(out, ".partial", "manifest.json"),
    "after-4s": lambda out: _after(4.0),
    "after-6s": lambda out: _after(6.0),
}


@pytest.mark.slow
def test_sigkill_during_export_never_loses_the_previous_bundle(tiny_checkpoint, tiny_bundle, tmp_path):
    out = tmp_path / "deploy" / "bundle"
    out.parent.mkdir()
    shutil.copytree(tiny_bundle, out)
    previous = (out / "manifest.json").read_bytes()
    report = {}
    for label, point in KILL_POINTS.items():
        proc = _start_export(tiny_checkpoint, out)
        hit = _wait_for(proc, point(out))
        proc.send_signal(signal.SIGKILL)  # a no-op if it already ended
        proc.wait(30)
        finished = proc.returncode == 0
        status = "killed" if hit and not finished else f"finished first (rc {proc.returncode})"

        # The destination always holds a whole bundle: the previous one, or a finished new one.
        clf = lpm_edge.load(out, providers="cpu", spin=False)
        assert clf.predict("good").label in ("neg", "pos")
        current = (out / "manifest.json").read_bytes()
        if current != previous:
            assert finished or json.loads(current)["metrics"], f"{label}: an unmeasured bundle was published"
            previous = current
        # Nothing else under the destination's name, only scratch entries named `.bundle.PID.*`.
        others = [p.name for p in out.parent.iterdir() if p != out and not p.name.startswith(".bundle.")]
        assert not others, (label, others)
        leftovers = {}
        for scratch in _scratch(out):
            # A scratch dir killed before its manifest was written cannot be loaded; one killed
            # later holds whole, hash-checked files (load verifies them) but is never at `out`.
            try:
                lpm_edge.load(scratch, providers="cpu", spin=False)
                leftovers[scratch.name.split(".")[-1]] = "loads (complete, unpublished)"
            except BundleError:
                leftovers[scratch.name.split(".")[-1]] = "refused"
        report[label] = (status, leftovers)
    assert sum(status == "killed" for status, _ in report.values()) >= 5, report

    # The next export cleans what the killed ones left and publishes a complete bundle.
    proc = _start_export(tiny_checkpoint, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert _scratch(out) == []
    assert json.loads((out / "manifest.json").read_text())["metrics"]["bundle_accuracy"] >= 0.9
    for label, (status, leftovers) in report.items():
        print(f"kill {label}: {status}; scratch entries left: {leftovers}")


def test_a_previous_version_moved_aside_by_a_killed_run_is_put_back(tiny_bundle, tmp_path):
    from lpm_edge import bundle as _bundle

    out = tmp_path / "bundle"
    # What a run killed between its two renames leaves: no `out`, the old version at `.bundle.PID.old`.
    dead = _dead_pid()
    shutil.copytree(tiny_bundle, tmp_path / f".bundle.{dead}.old")
    (tmp_path / f".bundle.{dead}.abc123.partial").mkdir()
    (tmp_path / f".bundle.{dead}.xyz_9.work").mkdir()
    live = tmp_path / f".bundle.{os.getpid()}.zzz.partial"  # a run still going: left alone
    live.mkdir()
    _bundle.remove_stale(out)
    assert lpm_edge.load(out, providers="cpu").labels == ("neg", "pos")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["bundle", live.name])


def test_remove_stale_leaves_other_destinations_alone(tmp_path):
    from lpm_edge import bundle as _bundle

    dead = _dead_pid()
    keep = [f".b.5.{dead}.abc.partial", f".b.5.{dead}.old", ".b.work", f".b.{dead}", "b.txt"]
    for name in keep:
        (tmp_path / name).mkdir()
    _bundle.remove_stale(tmp_path / "b")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
