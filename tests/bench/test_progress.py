import io
import logging

from lpm_edge.bench.progress import Progress


def test_bar_on_a_terminal_redraws_one_line():
    stream = io.StringIO()
    p = Progress(10, stream=stream, bar=True)
    p.stage("latency, batch 1")
    p.advance(10)
    p.close()
    text = stream.getvalue()
    assert text.startswith("\r[") and "100.0%" in text and "latency, batch 1" in text
    assert text.endswith("\n") and text.count("\n") == 1


def test_without_a_terminal_stages_are_log_lines(caplog):
    stream = io.StringIO()  # StringIO is not a TTY
    p = Progress(5, stream=stream)
    assert not p.bar
    with caplog.at_level(logging.INFO, logger="lpm_edge.bench"):
        p.stage("accuracy on 40 texts")
        p.advance(99)
        p.close()
    assert stream.getvalue() == ""
    assert "bench: accuracy on 40 texts" in caplog.text
    assert p.done == 5
