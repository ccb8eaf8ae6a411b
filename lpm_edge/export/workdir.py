"""What an export keeps so that no finished work is thrown away.

    CHECKPOINT.students/KEY/          a pruned, distilled student (Hugging Face layout + compression.json)
    CHECKPOINT.students/KEY.distill/  the checkpoint of a distillation still running (or interrupted)
    OUT.rejected/                     a bundle that missed its accuracy budget, kept to inspect or accept

KEY hashes what the student depends on (checkpoint, data, prune, distill, max_length), not what
comes after it (vocabulary pruning, fusion, precision, budget, --out), so an export that changes
only those reuses the student in seconds. Students sit beside the checkpoint they come from, so
every export of it shares them, whatever its --out, and deleting a run deletes its students;
LPM_EDGE_STUDENT_CACHE or --student-cache names another folder, and a checkpoint in a read-only
folder keeps them in OUT.work/students beside --out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from ..data import Dataset
    from .recipe import Recipe

log = logging.getLogger("lpm_edge.export")
STUDENT_INFO = "compression.json"
CACHE_ENV = "LPM_EDGE_STUDENT_CACHE"  # a folder for every export's students (CI volumes, read-only checkpoints)


def work_dir(out: str | Path) -> Path:
    """`OUT.work` beside the bundle directory `out`."""
    out = Path(out)
    return out.with_name(out.name + ".work")


def students_dir(out: str | Path) -> Path:
    return work_dir(out) / "students"


def rejected_dir(out: str | Path) -> Path:
    """`OUT.rejected`: where a bundle that missed its accuracy budget is kept."""
    out = Path(out)
    return out.with_name(out.name + ".rejected")


def checkpoint_students(checkpoint: str | Path) -> Path:
    """`CHECKPOINT.students` beside the checkpoint directory: the default student cache."""
    ckpt = Path(checkpoint).resolve()
    return ckpt.with_name(ckpt.name + ".students")


def resolve_cache(out: str | Path, student_cache: str | Path | bool | None,
                  checkpoint: str | Path | None = None) -> Path | None:
    """Where students are kept. A path: that folder; False or None: nowhere; True (the default):
    $LPM_EDGE_STUDENT_CACHE when set, else CHECKPOINT.students when its folder is writable, else
    OUT.work/students."""
    if student_cache is False or student_cache is None:
        return None
    if student_cache is not True:
        return Path(student_cache)
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    if checkpoint is None:
        return students_dir(out)
    shared = checkpoint_students(checkpoint)
    if _writable(shared):
        return shared
    log.info("cannot write beside the checkpoint (%s); keeping students in %s, so only exports to this --out "
             "reuse them (set %s=DIR or pass --student-cache DIR to share them)", shared.parent,
             students_dir(out), CACHE_ENV)
    return students_dir(out)


def _writable(folder: Path) -> bool:
    """Whether files can be created in `folder` (made if absent; an empty one made here is removed)."""
    made = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        return True
    except OSError:
        return False
    finally:
        if made and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def describe(cache: Path) -> str:
    """'FOLDER (N students, M MB)' for the log."""
    n = sum(1 for p in cache.iterdir() if (p / STUDENT_INFO).is_file()) if cache.is_dir() else 0
    return f"{cache} ({n} student{'s' if n != 1 else ''}, {folder_bytes(cache) / 1e6:.1f} MB)"


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).is_dir() else 0


def student_key(ckpt: Path, dataset: "Dataset", recipe: "Recipe", unlabelled: Sequence[str] = ()) -> str:
    from .recipe import DISTILL_ADDED, DistillConfig

    settings = recipe.to_dict()
    # The training texts themselves, not only the dataset's name: --validation/--test files change them.
    train = _texts_hash(dataset.train.texts)
    # Later fields at their defaults change nothing: a student distilled before they existed still matches.
    default = DistillConfig()
    distill = {k: v for k, v in settings["distill"].items()
               if k not in DISTILL_ADDED or v != getattr(default, k)}
    parts: list = [str(ckpt.resolve()), (ckpt / "config.json").stat().st_mtime_ns, dataset.name, train,
                   settings["prune"], distill, recipe.max_length]
    if recipe.distill.eval_every:  # early stopping reads the validation texts and labels
        parts.append(_texts_hash(dataset.validation.texts, dataset.validation.labels))
    if unlabelled:  # --unlabelled texts
        parts.append(["unlabelled", _texts_hash(unlabelled)])
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _texts_hash(texts: Sequence[Any], labels: Sequence[Any] = ()) -> str:
    """sha256 of the texts (a pair as its two texts joined by U+001F, `pairs.key`) and their labels."""
    from ..pairs import key

    h = hashlib.sha256("\x00".join(map(key, texts)).encode())
    h.update(",".join(map(str, labels)).encode())
    return h.hexdigest()


def cached_compress(
    model: Any, tokenizer: Any, dataset: "Dataset", recipe: "Recipe", ckpt: Path, cache: Path,
    task: Any = None,
    unlabelled: Sequence[str] = (),
) -> tuple[Any, dict[str, Any]]:
    """`compress`, keeping the student in `cache` and its distillation checkpoints beside it."""
    import transformers

    from .. import bundle as _bundle
    from ..families import adapter_for
    from .compress import compress

    path = Path(cache) / student_key(ckpt, dataset, recipe, unlabelled)
    log.info("student cache: %s", describe(Path(cache)))
    if (path / STUDENT_INFO).is_file():
        log.info("reusing the pruned, distilled student %s (pass --no-student-cache to distill again)", path)
        student = getattr(transformers, task.model_class if task else "AutoModelForSequenceClassification").from_pretrained(
            path, local_files_only=True, attn_implementation=adapter_for(model.config).attn_implementation).eval()
        student = task.prepare_model(student) if task else student
        return student, json.loads((path / STUDENT_INFO).read_text())
    partial = path.with_name(path.name + ".distill")
    student, info = compress(model, tokenizer, dataset, recipe, resume=partial, task=task, unlabelled=unlabelled)
    with _bundle.atomic_directory(path, force=True) as tmp:
        student.save_pretrained(tmp)
        (tmp / STUDENT_INFO).write_text(json.dumps(info, default=str))
    shutil.rmtree(partial, ignore_errors=True)
    log.info("kept the student in %s (%.1f MB; the folder %s holds %.1f MB, delete it when done, or pass "
             "--no-student-cache)", path, folder_bytes(path) / 1e6, cache, folder_bytes(Path(cache)) / 1e6)
    return student, info
