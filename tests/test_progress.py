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


def test_progress_by_fraction_counts_rows_with_rate_and_time_left(caplog, monkeypatch):
    """Batch scoring's form: rows counted with no total known, the share from the bytes read."""
    import logging

    from lpm_edge import progress

    clock = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    read = [0.0]
    p = progress.Progress(None, "scoring", unit="rows", fraction=lambda: read[0], bar=False, every_s=0)
    caplog.set_level(logging.INFO, logger="lpm_edge.scoring")
    clock[0], read[0] = 110.0, 0.25
    p.advance(4096)
    assert caplog.messages[-1] == "scoring: 4,096 rows (25.0%), 410 rows/s, 10 s elapsed, ~30 s left"
    clock[0], read[0] = 140.0, 1.0
    p.advance(12_000)
    p.close()
    assert caplog.messages[-1] == "scoring: 16,096 rows (100.0%), 402 rows/s, 40 s elapsed"


def test_scoring_progress_reaches_all_of_the_file(tmp_path):
    from lpm_edge.scoring.formats import open_format

    src = tmp_path / "in.csv"
    src.write_text("id,text\n" + "".join(f"{i},text {i}\n" for i in range(50)))
    fmt = open_format(src, "text", 20, 100)
    assert fmt.progress() == 0.0  # the header read on opening is not progress
    assert sum(c.size for c in fmt.chunks()) == 50 and fmt.progress() == 1.0
