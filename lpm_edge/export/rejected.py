"""A bundle that missed its accuracy budget is kept, not thrown away.

It goes to OUT.rejected with `metrics.accepted = false` and the reason in its manifest, so that the
user can inspect it, bench it on the client, and accept it with `lpm-edge accept` when it is good
enough; the runtime loads it with a warning. Before failing, when the recipe is int8 and its fp32
student met the budget, the export tries the rescues the search knows, in its order: sensitive
layers back to fp32 until the budget holds (quantize.auto_exclude), then an fp32 copy of the graph
for long batches, then for short ones (quantize.fp32_tokens, split at the median token count of
the evaluation texts). OUT.rejected keeps the try that lost the least.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .. import bundle as _bundle
from ..errors import BundleError, ExportError
from .recipe import Recipe
from .workdir import rejected_dir

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


def rescues(recipe: Recipe, metrics: Mapping[str, Any], budget: float | None, max_length: int,
            split_tokens: int, vocab_changed: int = 0) -> list[tuple[str, Recipe]]:
    """(what it is, recipe) for each rescue to try, in order: the full vocabulary when vocabulary
    pruning changed the tokens of `vocab_changed` evaluation texts (words the training texts never
    used; with the student cached this costs one export, no distillation); then, when int8 (not the
    student) broke the budget, the int8 rescues."""
    if budget is None:
        return []
    check = dataclasses.replace(recipe.check, max_accuracy_drop=budget)
    out = []
    if recipe.vocab_prune and vocab_changed:
        out.append((f"the full vocabulary (vocab_prune = false; pruning changed the tokens of {vocab_changed} "
                    "evaluation texts)", recipe.replace(vocab_prune=False, check=check)))
    q = recipe.quantize
    if q.mode not in ("dynamic", "static"):
        return out
    student_drop = (metrics["reference_accuracy"] - metrics["source_accuracy"]) * 100
    if student_drop > budget:  # int8 is not what lost the accuracy: no quantization setting can win it back
        return out
    if not q.auto_exclude:
        out.append(("the most sensitive layers back in fp32 (quantize.auto_exclude)",
                    recipe.replace(quantize=dataclasses.replace(q, auto_exclude=True), check=check)))
    if q.fp32_tokens is None:
        out += [(f"an fp32 graph for batches of {lo}-{hi} tokens (quantize.fp32_tokens)",
                 recipe.replace(quantize=dataclasses.replace(q, fp32_tokens=(lo, hi)), check=check))
                for lo, hi in fp32_token_ranges(max_length, split_tokens)]
    return out


def fp32_token_ranges(max_length: int, split_tokens: int) -> list[tuple[int, int]]:
    """The padded lengths an fp32 fallback graph takes over, in the order tried: the batches longer
    than `split_tokens`, then the others; none when one side would be empty."""
    if not 1 <= split_tokens < max_length:
        return []
    return [(split_tokens + 1, max_length), (0, split_tokens)]


def median_tokens(tokenizer: Any, texts: Sequence[str], max_length: int) -> int:
    """Median token count of `texts` (truncated to max_length): where short batches end and long ones begin."""
    lengths = sorted(len(ids) for ids in tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"])
    return lengths[len(lengths) // 2] if lengths else max_length // 2


@contextlib.contextmanager
def best_kept(out: Path) -> Iterator[None]:
    """Around a rescue: OUT.rejected ends holding whichever bundle lost less accuracy, the one kept
    before or the one the rescue kept (a kill meanwhile leaves a scratch copy the next run removes)."""
    kept = rejected_dir(out)
    if not (kept / _bundle.MANIFEST).is_file():
        yield
        return
    before = (kept / _bundle.MANIFEST).read_text()
    with tempfile.TemporaryDirectory(prefix=_bundle.scratch_prefix(kept), suffix=".partial", dir=kept.parent) as tmp:
        for f in kept.iterdir():
            shutil.copy2(f, Path(tmp) / f.name)
        try:
            yield
        finally:
            now = kept / _bundle.MANIFEST
            if not now.is_file() or (now.read_text() != before and _drop(now.read_text()) >= _drop(before)):
                keep(Path(tmp), out)


def _drop(manifest: str) -> float:
    return float(json.loads(manifest)["metrics"]["accuracy_drop_points"])


def error_message(reason: str, out: Path, tried: list[str], checkpoint: Path, students: Path | None,
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
    student = f"; the distilled student is kept in {students}, so a re-run skips distillation" if students else ""
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
