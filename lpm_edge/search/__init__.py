"""`lpm-edge search`: the fastest bundle within an accuracy budget (heavy: runs exports)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

from .. import tasks
from ..bundle import write_text_atomic
from .pareto import Point, choose, pareto_front
from .run import Cache, SearchBudgetError, SearchResult, check_budget_args, keep_bundle, run_search
from .space import Candidate, default_space, rescue_variants

log = logging.getLogger("lpm_edge.search")

__all__ = ["Candidate", "Point", "SearchBudgetError", "SearchResult", "choose", "default_space", "keep_bundle",
           "pareto_front", "search"]


def search(
    checkpoint: str | Path,
    out: str | Path,
    *,
    data: str | None = None,
    max_accuracy_drop: float = 1.0,
    target: str = "cpu",
    max_minutes: float | None = None,
    space: Sequence[Candidate] | None = None,
    distill_steps: int | Sequence[int] | None = None,
    latency_texts: int = 100,
    grid: dict[str, list] | None = None,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    strict: bool = False,
    unlabelled: str | Path | None = None,
    text_pair_column: str | None = None,
    task: str | None = None,
) -> SearchResult:
    """Explore compression candidates, keep the fastest bundle within the budget in OUT/bundle.

    Accuracy is measured on the validation split while searching; the chosen bundle's accuracy
    is then confirmed on the test split so the choice is not overfit to validation. When no
    candidate meets the budget the most accurate one is kept in OUT/best-effort-bundle and
    SearchBudgetError is raised. Measured candidates are cached in OUT/cache.json. `grid`
    narrows the default space: {"layers": [4, 3], "heads": [0.0, 0.334], "ffn": [0.5]}.
    validation, test, text_column, label_column, strict: the splits, as for `load_dataset`; the
    report names each split's source. unlabelled: a file of texts without labels that every
    candidate's distillation adds to the training texts (as `export`'s). task: the task when the
    checkpoint has no training.json recording it (as `export`'s, e.g. "embedding"); candidates are
    judged on that task's budget metric (embeddings: mean cosine to the full model's vectors).
    distill_steps: the distillation budgets of pruned candidates; None = the cpu-pruned-int8 recipe's.
    Before the first candidate, the search logs an estimate of its distillation time on this
    machine (search/estimate.py: a few steps timed here × the steps of every student).
    """
    from ..export.pipeline import _with_task, checkpoint_dataset
    from ..runtime import int8_pays, load
    from ..sysinfo import cpu_info
    from ..train import read_training_info
    from ..export.recipe import DistillConfig
    from .estimate import announce
    from .evaluate import BundleEvaluator

    check_budget_args(max_accuracy_drop, target)
    if target == "cuda":  # latency is measured on the GPU: refuse now, not after the first export
        import onnxruntime as ort

        from ..runtime.providers import requested

        requested("cuda", ort.get_available_providers())
    ckpt, out = Path(checkpoint), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = _with_task(read_training_info(ckpt), task, ckpt)
    data_args = {"validation": validation, "test": test, "text_column": text_column, "label_column": label_column,
                 "strict": strict, "text_pair_column": text_pair_column}
    dataset = checkpoint_dataset(data, info, **data_args)
    kind = task
    task = _task_for(ckpt, tasks.from_training(info, dataset.labels))
    full_layers = int(json.loads((ckpt / "config.json").read_text())["num_hidden_layers"])
    space = list(space) if space is not None else default_space(
        full_layers, vnni=cpu_info()["vnni"], fp32=not int8_pays(), distill_steps=distill_steps, target=target,
        **(grid or {}))
    val = dataset.validation.texts
    texts = list(val[:: max(1, len(val) // latency_texts)][:latency_texts])
    max_length = Candidate().recipe(target).max_length
    split = _median_tokens(ckpt, list(val), max_length)
    export_args = {**data_args, **({"unlabelled": unlabelled} if unlabelled is not None else {}),
                   **({"task": kind} if kind else {})}
    evaluator = BundleEvaluator(ckpt, out, texts, target=target, data=data, data_args=export_args,
                                task=task,
                                validation=_scored_split(ckpt, dataset.validation, task, max_length)
                                if target != "cpu" else None)
    context = {"checkpoint": str(ckpt.resolve()), "mtime": (ckpt / "config.json").stat().st_mtime_ns,
               "data": dataset.name, "validation": dataset.validation.source, "n": len(dataset.validation),
               "target": target, "latency_texts": len(texts)}
    if unlabelled is not None:  # candidates distilled with other texts are other candidates
        from ..data_files import read_texts
        from ..export.transfer import texts_hash

        context["unlabelled"] = texts_hash(read_texts(unlabelled, text_column or "text"))
    cache = Cache(out / "cache.json", context)
    estimate = announce(ckpt, dataset, task, space, DistillConfig().batch_size, max_length)
    reference_accuracy = _reference_accuracy(ckpt, dataset, task, cache, max_length)
    evaluator.resume_anchor(list(cache.points.values()))
    result = run_search(space, evaluator, reference_accuracy, max_accuracy_drop, cache, full_layers, max_minutes,
                        rescue=lambda c: rescue_variants(c, max_accuracy_drop, max_length, split),
                        step_seconds=estimate.step_seconds if estimate is not None else None)
    if result.chosen is not None:
        result.bundle = keep_bundle(Path(result.chosen.extra["bundle"]), out / "bundle")
    elif result.points:
        best = max(result.points, key=lambda p: (p.accuracy, -p.latency_ms))
        result.bundle = keep_bundle(Path(best.extra["bundle"]), out / "best-effort-bundle")
    result.validation = {"source": dataset.validation.source, "n": len(dataset.validation)}
    result.metric = task.metric
    if result.bundle is not None:
        result.confirmed = _confirm_on_test(ckpt, result.bundle, dataset, task, load, target, max_length)
    _write_report(result, out)
    if result.chosen is None:
        raise SearchBudgetError(
            f"no candidate stayed within {max_accuracy_drop:g} points of the full model's validation {task.metric} "
            f"{reference_accuracy:.4f}; the most accurate one is kept in {result.bundle}. "
            "Raise --max-accuracy-drop, allow more distillation (--distill-steps) or more time (--max-minutes)"
        )
    return result


def _task_for(ckpt: Path, task):  # type: ignore[no-untyped-def]
    """The task completed from the checkpoint (an embedding model's pooling and width), as export does."""
    from transformers import AutoConfig

    return task.for_checkpoint(ckpt, AutoConfig.from_pretrained(ckpt, local_files_only=True))


def _reference(ckpt: Path, task, max_length: int):  # type: ignore[no-untyped-def]
    """The full PyTorch model with the task's head and outputs (per-word logits, pooled vectors)."""
    from ..reference import task_reference

    return task_reference(ckpt, task, max_length=max_length)


def _scored_split(ckpt: Path, split, task, max_length: int):  # type: ignore[no-untyped-def]
    """`split` with the gold a candidate is scored against: the data's, or the full model's outputs
    for tasks whose gold they are (embeddings)."""
    return task.reference_split(split, _reference(ckpt, task, max_length).logits(list(split.texts)))


def _reference_accuracy(ckpt: Path, dataset, task, cache: Cache, max_length: int = 128) -> float:  # type: ignore[no-untyped-def]
    """The full model's validation value of the task's budget metric (cached with the candidates)."""
    point = cache.get("reference")
    if point is not None:
        return point.accuracy
    from ..evaluate import evaluate

    [scores] = evaluate(dataset.validation, [("full model", _reference(ckpt, task, max_length).logits)], task)
    log.info("%s", scores.describe())
    cache.put(Point(key="reference", label="full model", accuracy=scores.value, latency_ms=float("nan"),
                    size_bytes=0))
    return scores.value  # the task's budget metric (accuracy for classifiers)


def _median_tokens(ckpt: Path, texts: list[str], max_length: int) -> int:
    """Median padded-free token count of `texts`: where rescue variants split short from long."""
    from transformers import AutoTokenizer

    from ..export.rejected import median_tokens

    return median_tokens(AutoTokenizer.from_pretrained(ckpt, local_files_only=True), texts, max_length)


def _confirm_on_test(ckpt: Path, bundle: Path, dataset, task, load, target: str,  # type: ignore[no-untyped-def]
                     max_length: int = 128) -> dict:
    """The kept bundle against the full model on the test split (never the validation split the
    search chose on)."""
    from ..evaluate import evaluate

    ref, got = evaluate(dataset.test, [("full model", _reference(ckpt, task, max_length).logits),
                                       ("bundle", load(bundle, providers=target, spin=False).logits)],
                        task)
    return {"split": ref.split, "source": ref.source, "n": ref.n, "metric": task.metric, "reference_accuracy": ref.value,
            "bundle_accuracy": got.value, "accuracy_drop_points": got.loss_points,
            "drop_ci95": list(got.loss_ci95 or (float("nan"), float("nan")))}


def _write_report(result: SearchResult, out: Path) -> None:
    doc = result.to_dict()
    write_text_atomic(out / "search.json", json.dumps(doc, indent=2, default=str) + "\n")
    ref = result.reference_accuracy
    metric = result.metric.replace("_", " ")
    lines = ["# lpm-edge search", "",
             f"Budget: at most {result.max_accuracy_drop:g} points below the full model's validation {metric} "
             f"({ref:.4f}{_on(result.validation)}). Wall time {result.seconds / 60:.1f} min, {len(result.points)} candidates measured.", "",
             f"| candidate | val {metric} | drop (points) | latency ms (batch 1) | size MB | front | chosen |",
             "|---|---|---|---|---|---|---|"]
    front = {p.key for p in result.front}
    for p in sorted(result.points, key=lambda p: p.latency_ms):
        lines.append(f"| {p.label} | {p.accuracy:.4f} | {(ref - p.accuracy) * 100:+.2f} | {p.latency_ms:.2f} | "
                     f"{p.size_bytes / 1e6:.1f} | {'yes' if p.key in front else ''} | "
                     f"{'**yes**' if result.chosen and p.key == result.chosen.key else ''} |")
    if result.confirmed:
        c = result.confirmed
        lines += ["", f"Kept bundle `{result.bundle}`: test {metric} {c['bundle_accuracy']:.4f} vs full model "
                      f"{c['reference_accuracy']:.4f} (drop {c['accuracy_drop_points']:+.2f} points, 95% CI "
                      f"[{c['drop_ci95'][0]:+.2f}, {c['drop_ci95'][1]:+.2f}]) on {c['n']} {c.get('split', 'test')} texts"
                      f"{' of ' + c['source'] if c.get('source') else ''}."]
    if result.skipped:
        lines += ["", "Not measured: " + "; ".join(result.skipped)]
    write_text_atomic(out / "search.md", "\n".join(lines) + "\n")
    _plot(result, out / "front.png")


def _on(validation: dict | None) -> str:
    return f" on {validation['n']:,} validation texts of {validation['source']}" if validation else ""


def _plot(result: SearchResult, path: Path) -> None:
    try:
        from ..bench.plots import figure

        fig = figure((6, 4))
    except ImportError:
        log.info("matplotlib not installed (pip install \"lpm-edge[bench]\"): no front.png")
        return
    ax = fig.add_subplot()
    ax.scatter([p.latency_ms for p in result.points], [p.accuracy * 100 for p in result.points], c="0.6",
               label="candidates")
    ax.plot([p.latency_ms for p in result.front], [p.accuracy * 100 for p in result.front], "o-", label="Pareto front")
    if result.chosen:
        ax.scatter([result.chosen.latency_ms], [result.chosen.accuracy * 100], s=120, facecolors="none",
                   edgecolors="red", label="chosen")
    ax.axhline((result.reference_accuracy * 100) - result.max_accuracy_drop, ls="--", c="red", lw=0.8,
               label="budget")
    ax.set_xlabel("batch-1 latency, ms (end to end)")
    ax.set_ylabel(f"validation {result.metric.replace('_', ' ')}, %")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
