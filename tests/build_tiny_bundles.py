"""Build the tests' tiny bundles once, for an environment that cannot build them (no torch).

    python tests/build_tiny_bundles.py DIR

writes DIR/int8 and DIR/fp32, the bundles of the `tiny_bundle` and `tiny_fp32_bundle` fixtures
(tests/conftest.py). With LPM_EDGE_PREBUILT_BUNDLES=DIR, those fixtures use them instead of
training and exporting: `.ci/py310` builds them with the main environment (Python 3.11, torch) and
runs the runtime and bundle tests under Python 3.10, whose environment has no torch.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# This checkout's lpm_edge and tests' conftest, whatever the environment has installed.
sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from conftest import PREBUILT, make_tiny_model, synthetic_rows, tiny_train_config, write_csv  # noqa: E402


def build(out: Path) -> dict[str, Path]:
    from lpm_edge.export import export
    from lpm_edge.train import train

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = write_csv(work / "tiny.csv", synthetic_rows(400))
        model = make_tiny_model(work / "tiny-bert")
        checkpoint = train(tiny_train_config(work / "checkpoint", model, data))
        return {name: export(checkpoint, out / name, recipe, force=True) for name, recipe in PREBUILT.items()}


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for name, path in build(Path(sys.argv[1])).items():
        print(f"{name}: {path}")
