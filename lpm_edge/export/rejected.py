"""A bundle that missed its accuracy budget is kept, not thrown away.

It goes to OUT.rejected with `metrics.accepted = false` and the reason in its manifest, so that the
user can inspect it, bench it on the client, and accept it with `lpm-edge accept` when it is good
enough; the runtime loads it with a warning. Before failing, the export tries the rescue the
search knows for int8 (sensitive layers back to fp32 until the budget holds) when the recipe is
int8 and its fp32 student met the budget.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any, Mapping

from .. import bundle as _bundle
from ..errors import BundleError, ExportError
from .recipe import Recipe
from .workdir import rejected_dir, work_dir

log = logging.getLogger("lpm_edge.export")


def budget_miss(metrics: Mapping[str, Any], budget: float | None) -> str | None:
    """Why the bundle fails its budget (one sentence), or None when it holds."""
    drop = metrics["accuracy_drop_points"]
    if budget is None or drop <= budget:
        return None
    return (f"the bundle's {metrics.get('metric', 'accuracy')} {metrics['bundle_accuracy']:.4f} is {drop:.2f} points "
            "below the full model's "
            f"{metrics['reference_accuracy']:.4f} on {metrics['n']} {metrics.get('split', 'validation')} texts"
            + (f" of {metrics['source']}" if metrics.get("source") else "") + f", over the allowed {budget:g}")


def verdict(reason: str | None, budget: float | None) -> dict[str, Any]:
    """The manifest's metrics entries saying whether the bundle met its budget."""
    return {"accepted": reason is None, "max_accuracy_drop": budget,
            **({"rejected_reason": reason} if reason else {})}


def keep(bdir: Path, out: Path) -> Path:
    """Copy the finished, measured bundle in `bdir` to OUT.rejected (replacing an older one)."""
    dst = rejected_dir(out)
    with _bundle.atomic_directory(dst, force=True) as tmp:
        for f in bdir.iterdir():
            shutil.copy2(f, tmp / f.name)
    return dst


def rescue(recipe: Recipe, metrics: Mapping[str, Any], budget: float | None) -> Recipe | None:
    """The recipe with quantize.auto_exclude when int8 (not the student) broke the budget; else None."""
    q = recipe.quantize
    if budget is None or q.mode not in ("dynamic", "static") or q.auto_exclude:
        return None
    student_drop = (metrics["reference_accuracy"] - metrics["source_accuracy"]) * 100
    if student_drop > budget:  # int8 is not what lost the accuracy: no quantization setting can win it back
        return None
    return recipe.replace(quantize=dataclasses.replace(q, auto_exclude=True),
                          check=dataclasses.replace(recipe.check, max_accuracy_drop=budget))


def error_message(reason: str, out: Path, tried: list[str], checkpoint: Path, student_kept: bool,
                  student_drop: float | None, budget: float | None) -> str:
    """One line: what failed, what was tried, where the best effort is, what to do next."""
    kept = rejected_dir(out)
    steps = [f"accept it as it is with `lpm-edge accept {kept} --out {out}`"]
    if budget is not None:
        steps.append("raise --max-accuracy-drop")
    if student_drop is not None and budget is not None and student_drop > budget:
        steps.append(f"distill longer or prune less (the fp32 student alone already loses {student_drop:.2f} points)")
    steps.append(f"let `lpm-edge search {checkpoint} --max-accuracy-drop {budget:g} --out DIR` find a recipe that fits"
                 if budget is not None else "run `lpm-edge search`")
    student = f"; the distilled student is kept in {work_dir(out)}, so a re-run skips distillation" if student_kept else ""
    return (f"{reason}; no bundle written to {out}. Tried: {'; '.join(tried)}. The best-effort bundle is in {kept} "
            f"(accepted: false; `lpm-edge inspect {kept}` shows its measurements){student}. "
            f"Next: {', or '.join(steps)}")


def accept(rejected: str | Path, out: str | Path, force: bool = False) -> Path:
    """Publish a rejected bundle as `out`, its manifest saying who accepted it over which budget."""
    rejected, out = Path(rejected), Path(out)
    if out.exists() and not force:
        raise ExportError(f"{out} already exists; pass --force to replace it or choose another --out")
    manifest = _bundle.read_manifest(rejected)
    _bundle.verify(rejected, manifest)
    metrics = dict(manifest.metrics)
    if metrics.get("accepted", True):
        raise BundleError(f"{rejected} is not a rejected bundle (its manifest does not say accepted: false); "
                          "it can be used as it is")
    metrics.update(accepted=True, accepted_over_budget=metrics.pop("rejected_reason", ""))
    with _bundle.atomic_directory(out, force=force) as tmp:
        for f in rejected.iterdir():
            if f.name != _bundle.MANIFEST:
                shutil.copy2(f, tmp / f.name)
        _bundle.write_manifest(tmp, dataclasses.replace(manifest, metrics=metrics))
    log.info("accepted %s as %s (%s)", rejected, out, metrics["accepted_over_budget"])
    return out
