"""Distillation under torchrun: two CPU processes (DDP, gloo) share the steps and end with one student."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("ddp_distill_worker.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_gloo_processes_distil_the_same_student(tiny_checkpoint, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(tiny_checkpoint), str(tmp_path)]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == ["2", "2"]
    assert ranks[0]["digest"] == ranks[1]["digest"]  # DDP kept the two copies of the student in step
    record = ranks[0]["record"]
    assert record["processes"] == 2 and record["steps"] == 4
    assert record["early_stopping"]["curve"] == ranks[1]["record"]["early_stopping"]["curve"]
