"""Run by test_distill_ddp.py under torchrun: every process distils a copy of the tiny checkpoint into
itself, then writes the sha256 of the student's weights and the record to REPORT/rank{RANK}.json.

Usage: torchrun --nproc_per_node 2 ddp_distill_worker.py CHECKPOINT REPORT
"""

import copy
import hashlib
import json
import os
import sys
from pathlib import Path

from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lpm_edge.data import load_dataset
from lpm_edge.export.distill import distill
from lpm_edge.export.recipe import DistillConfig
from lpm_edge.train import read_training_info


def digest(model) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    ckpt, report = sys.argv[1:3]
    teacher = AutoModelForSequenceClassification.from_pretrained(ckpt).eval()
    tok = AutoTokenizer.from_pretrained(ckpt)
    data = load_dataset(read_training_info(Path(ckpt))["data"]["source"])
    student = copy.deepcopy(teacher)
    config = DistillConfig(steps=4, batch_size=8, learning_rate=1e-3, eval_every=2, eval_samples=8)
    record = distill(student, teacher, tok, data.train, config, 32, "cpu", ["a"], validation=data.validation)
    record.pop("seconds"), record.pop("steps_per_second")
    out = {"digest": digest(student), "record": record, "world_size": os.environ.get("WORLD_SIZE")}
    (Path(report) / f"rank{os.environ['RANK']}.json").write_text(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
