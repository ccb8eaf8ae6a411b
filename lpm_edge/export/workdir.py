"""What an export keeps beside `--out` so that no finished work is thrown away.

    OUT.work/students/KEY/          a pruned, distilled student (Hugging Face layout + compression.json)
    OUT.work/students/KEY.distill/  the checkpoint of a distillation still running (or interrupted)
    OUT.rejected/                   a bundle that missed its accuracy budget, kept to inspect or accept

KEY hashes what the student depends on (checkpoint, data, prune, distill, max_length), not what
comes after it (vocabulary pruning, fusion, precision, budget), so an export that changes only
those reuses the student in seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..data import Dataset
    from .recipe import Recipe

log = logging.getLogger("lpm_edge.export")
STUDENT_INFO = "compression.json"


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


def resolve_cache(out: str | Path, student_cache: str | Path | bool | None) -> Path | None:
    """True: OUT.work/students; a path: that folder; False or None: no cache."""
    if student_cache is True:
        return students_dir(out)
    if student_cache is False or student_cache is None:
        return None
    return Path(student_cache)


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def student_key(ckpt: Path, dataset: "Dataset", recipe: "Recipe") -> str:
    settings = recipe.to_dict()
    # The training texts themselves, not only the dataset's name: --validation/--test files change them.
    train = hashlib.sha256("\x00".join(dataset.train.texts).encode()).hexdigest()
    blob = json.dumps([str(ckpt.resolve()), (ckpt / "config.json").stat().st_mtime_ns, dataset.name, train,
                       settings["prune"], settings["distill"], recipe.max_length], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_compress(
    model: Any, tokenizer: Any, dataset: "Dataset", recipe: "Recipe", ckpt: Path, cache: Path,
    task: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """`compress`, keeping the student in `cache` and its distillation checkpoints beside it."""
    import transformers

    from .. import bundle as _bundle
    from ..families import adapter_for
    from .compress import compress

    path = Path(cache) / student_key(ckpt, dataset, recipe)
    if (path / STUDENT_INFO).is_file():
        log.info("reusing the pruned, distilled student %s (pass --no-student-cache to distill again)", path)
        student = getattr(transformers, task.model_class if task else "AutoModelForSequenceClassification").from_pretrained(
            path, local_files_only=True, attn_implementation=adapter_for(model.config).attn_implementation).eval()
        student = task.prepare_model(student) if task else student
        return student, json.loads((path / STUDENT_INFO).read_text())
    partial = path.with_name(path.name + ".distill")
    student, info = compress(model, tokenizer, dataset, recipe, resume=partial, task=task)
    with _bundle.atomic_directory(path, force=True) as tmp:
        student.save_pretrained(tmp)
        (tmp / STUDENT_INFO).write_text(json.dumps(info, default=str))
    shutil.rmtree(partial, ignore_errors=True)
    log.info("kept the student in %s (%.1f MB; the folder %s holds %.1f MB, delete it when done, or pass "
             "--no-student-cache)", path, folder_bytes(path) / 1e6, cache, folder_bytes(Path(cache)) / 1e6)
    return student, info
