"""The runtime must never import torch or transformers."""

import subprocess
import sys


def test_import_and_predict_do_not_import_torch(tiny_bundle):
    code = (
        "import sys, lpm_edge\n"
        "assert 'torch' not in sys.modules and 'onnxruntime' not in sys.modules\n"
        f"clf = lpm_edge.load({str(tiny_bundle)!r}, providers='cpu')\n"
        "print(clf.predict('a great film').label)\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'onnx', 'optimum') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("neg", "pos")


def test_verbs_stay_callable_after_their_packages_are_imported():
    import lpm_edge
    import lpm_edge.bench
    import lpm_edge.export
    import lpm_edge.train

    for verb in (lpm_edge.train, lpm_edge.export, lpm_edge.bench):
        assert callable(verb), verb
