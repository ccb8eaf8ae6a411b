"""The work directory of a run: the Trainer's epoch checkpoints, kept until the run succeeds.

`OUT` is written once, atomically, at the end. Meanwhile `.OUT.work` beside it holds the epoch
checkpoints (weights, optimizer, scheduler, RNG states, log history) and the run's config, so
that `--resume` continues an interrupted run from its last complete checkpoint.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

from ..errors import ConfigError
from .config import TrainConfig

log = logging.getLogger("lpm_edge.train")
RUN_CONFIG = "lpm_edge_config.json"
# What a resumed run may change: how long it runs, and where and how fast (not what it learns).
# `out` names the work directory itself, so it is the same run whatever its spelling.
MAY_CHANGE_ON_RESUME = frozenset({"epochs", "max_steps", "resume", "force", "device", "precision", "threads", "out"})
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def work_dir(out: Path) -> Path:
    """Where the epoch checkpoints of the run writing `out` live."""
    return out.with_name(f".{out.name}.work")


def last_checkpoint(work: Path) -> Path | None:
    """The complete checkpoint of the highest step in `work`, or None.

    trainer_state.json is the last file the Trainer writes into a checkpoint, so a checkpoint
    without it was cut short (the process was killed while saving) and is skipped.
    """
    if not work.is_dir():
        return None
    found = sorted(
        ((int(m.group(1)), p) for p in work.iterdir() if (m := _CHECKPOINT.match(p.name)) and p.is_dir()),
        reverse=True,
    )
    for step, path in found:
        if (path / "trainer_state.json").is_file():
            return path
        log.warning("skipping %s: incomplete (no trainer_state.json), the run was stopped while saving it", path)
    return None


def plan_resume(config: TrainConfig) -> Path | None:
    """The checkpoint to resume from, or None to start from the beginning.

    Raises ConfigError when `out` exists and is not to be replaced, and when a resumed run would
    change what the interrupted one was learning.
    """
    out = Path(config.out)
    work = work_dir(out)
    if not config.resume:
        if out.exists() and not config.force:
            raise ConfigError(f"{out} already exists; pass --force to replace it or choose another --out")
        return None
    checkpoint = last_checkpoint(work)
    if checkpoint is None:
        if out.exists() and not config.force:
            raise ConfigError(
                f"--resume: nothing to resume, {out} is a finished run (its epoch checkpoints in {work} are "
                f"deleted on success). To train it further start a new run from it (--model {out} --out NEW); "
                "to redo it, pass --force without --resume"
            )
        log.warning("--resume: no checkpoint in %s; starting from the beginning", work)
        return None
    _check_same_run(config, work / RUN_CONFIG)
    return checkpoint


def _check_same_run(config: TrainConfig, saved_file: Path) -> None:
    try:
        saved = json.loads(saved_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        log.warning("%s is missing or unreadable; cannot check that --resume continues the same run", saved_file)
        return
    now = config.to_dict()
    changed = sorted(k for k in now.keys() - MAY_CHANGE_ON_RESUME if k in saved and saved[k] != now[k])
    if changed:
        diffs = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in changed)
        raise ConfigError(
            f"--resume would change the run in {saved_file.parent} ({diffs}); resume with the same settings "
            "(only epochs, max_steps, device, precision and threads may change), or drop --resume "
            "to start over"
        )


def start_work_dir(config: TrainConfig, resuming: bool) -> Path:
    """Create (or, for a fresh run, empty) the work directory and record the run's config.

    Call on one process only (the main one under torchrun).
    """
    work = work_dir(Path(config.out))
    if not resuming and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / RUN_CONFIG).write_text(json.dumps(config.to_dict(), indent=2) + "\n", encoding="utf-8")
    return work
