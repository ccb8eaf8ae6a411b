"""Run by test_ddp.py under torchrun: every process fine-tunes the tiny model, then writes the sha256
of its weights after each epoch and at the end to REPORT/rank{RANK}.json.

Usage: torchrun --nproc_per_node 2 ddp_worker.py MODEL DATA OUT REPORT
"""

import hashlib
import json
import logging
import os
import sys
from pathlib import Path

from transformers import TrainerCallback

from lpm_edge.train import TrainConfig, train


def digest(model) -> str:
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class WeightHashes(TrainerCallback):
    def __init__(self) -> None:
        self.epochs: dict[int, str] = {}
        self.final = ""

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self.epochs[round(state.epoch)] = digest(model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.final = digest(model)  # after the best checkpoint is loaded back


def main() -> None:
    model, data, out, report = sys.argv[1:5]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"rank {os.environ['RANK']} %(name)s: %(message)s"))
    logging.getLogger("lpm_edge").addHandler(handler)
    logging.getLogger("lpm_edge").setLevel(logging.INFO)
    hashes = WeightHashes()
    config = TrainConfig(out=Path(out), model=Path(model), data=data, epochs=2, batch_size=8, learning_rate=3e-3,
                         max_length=32, patience=None, threads=1)
    returned = train(config, callbacks=[hashes])
    # every rank returns only once rank 0 has written the checkpoint
    complete = (returned / "training.json").is_file() and (returned / "model.safetensors").is_file()
    record = {"epochs": hashes.epochs, "final": hashes.final, "world_size": os.environ["WORLD_SIZE"],
              "checkpoint_complete_on_return": complete}
    Path(report, f"rank{os.environ['RANK']}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main()
