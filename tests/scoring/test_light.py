"""Scoring and the Ray integration import neither torch nor their optional extras until used."""

import subprocess
import sys


def test_scoring_imports_stay_light():
    code = (
        "import sys, lpm_edge, lpm_edge.scoring, lpm_edge.integrations.ray\n"
        "assert callable(lpm_edge.score_file)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'ray', 'pyarrow', 'pandas', 'starlette', 'onnxruntime')"
        " if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
