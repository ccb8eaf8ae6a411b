"""Progress off a terminal: log lines with the rate and the time left, as a redirected stderr receives them."""

import subprocess
import sys

SCRIPT = """
import logging, sys, time
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")
from lpm_edge.export.batches import Progress
p = Progress(4, "distill")
p.every_s = 0.0  # a line per step
for _ in range(4):
    time.sleep(0.01)
    p.update(loss=0.25)
p.close()
"""


def test_progress_lines_reach_a_redirected_stderr(tmp_path):
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        subprocess.run([sys.executable, "-c", SCRIPT], stderr=err, check=True, timeout=120)
    text = log.read_text()
    assert "\r" not in text  # no bar drawn into a file
    lines = [line for line in text.splitlines() if line.startswith("lpm_edge.export: distill:")]
    assert len(lines) == 5  # one per step, one on close
    assert "distill: 1/4 steps (25.0%)" in lines[0] and " left" in lines[0] and "loss 0.2500" in lines[0]
    assert "distill: 4/4 steps (100.0%)" in lines[-1] and "elapsed" in lines[-1]


def test_student_cache_flags_contradict(tmp_path, capsys):
    from lpm_edge.cli import main

    code = main(["export", str(tmp_path), "--out", str(tmp_path / "b"), "--student-cache", str(tmp_path / "s"),
                 "--no-student-cache"])
    assert code == 1 and "contradict" in capsys.readouterr().err
