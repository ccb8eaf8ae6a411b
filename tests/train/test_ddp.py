"""Two CPU processes under torchrun (DDP, gloo): both finish, hold the same weights, one checkpoint."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification

from lpm_edge.train import read_training_info

WORKER = Path(__file__).with_name("ddp_worker.py")
REPO = Path(__file__).resolve().parents[2]


def worker():
    spec = importlib.util.spec_from_file_location("ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_two_gloo_processes_finish_and_agree_on_the_saved_model(tmp_path, tiny_model, tiny_data):
    out = tmp_path / "ckpt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(tiny_model), str(tiny_data), str(out), str(tmp_path)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    log = result.stdout[-3000:] + result.stderr[-5000:]
    assert result.returncode == 0, log

    saves = [line for line in result.stderr.splitlines() if "lpm_edge.train: saved" in line]
    assert len(saves) == 1 and saves[0].startswith("rank 0 "), log  # one writer: rank 0

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == ["2", "2"]
    assert ranks[0]["epochs"] == ranks[1]["epochs"] and len(ranks[0]["epochs"]) == 2, ranks  # in step each epoch
    assert ranks[0]["final"] == ranks[1]["final"], ranks
    assert all(r["checkpoint_complete_on_return"] for r in ranks)

    info = read_training_info(out)
    assert info["world_size"] == 2
    assert info["steps"] == 2 * 20, info  # 320 training texts / (8 per process x 2 processes) = 20 steps an epoch
    assert info["epochs"][-1]["loss"] < info["epochs"][0]["loss"], info["epochs"]
    saved = AutoModelForSequenceClassification.from_pretrained(out, local_files_only=True)
    assert worker().digest(saved) == ranks[0]["final"]  # what rank 0 wrote is what both processes hold
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("."))
    assert leftovers == []  # work dir removed; no half-written copy from a second writer
