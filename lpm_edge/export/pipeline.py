"""`export`: checkpoint in, verified bundle out.

prune ▸ distill ▸ ONNX ▸ parity ▸ fuse ▸ quantize ▸ bundle ▸ accuracy check, in a temporary
directory beside the destination; the bundle is renamed into place only when it passed.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .. import __version__, bundle as _bundle, sysinfo, tasks
from ..data import Dataset, Split, load_dataset
from ..errors import AccuracyBudgetError, ConfigError, ExportError, ParityError, require
from ..pairs import hf_tokenize
from ..tasks.base import Task
from ..families import Family, adapter_for, check_capabilities
from . import rejected
from .onnx_graph import attention_shape, fuse, input_names, onnx_logits, quantize_dynamic_int8, to_onnx
from .provenance import model_record
from .recipe import Recipe, load_recipe
from .workdir import cached_compress, resolve_cache

log = logging.getLogger("lpm_edge.export")
PARITY_SAMPLE = 64


def preflight(recipe: Recipe) -> None:
    """Refuse known traps before any work, naming the recipe to use instead."""
    from .recipe import validate

    validate(recipe)  # a Recipe built in Python gets the checks a TOML file gets
    q = recipe.quantize.mode
    if recipe.target == "cuda" and q == "dynamic":
        raise ConfigError(
            f"recipe {recipe.name}: dynamic int8 on the CUDA provider runs its int8 kernels on the host; "
            "use the cuda-fp16 recipe (or cuda-int8, static QDQ, for TensorRT)"
        )
    if recipe.target == "cpu" and q == "fp16":
        raise ConfigError(f"recipe {recipe.name}: fp16 has no fast CPU kernels; use cpu-int8 or cpu-fp32")
    if recipe.quantize.auto_exclude and q not in ("dynamic", "static"):
        raise ConfigError(
            f"recipe {recipe.name}: quantize.auto_exclude applies to int8 (mode 'dynamic' or 'static'), "
            f"not {q!r}; remove it"
        )
    if q == "static" and recipe.target == "cuda" and recipe.optimize.fusion:
        raise ConfigError(
            f"recipe {recipe.name}: static int8 for CUDA targets TensorRT, which fuses the QDQ graph itself and "
            "cannot run ONNX Runtime's fused contrib ops; set optimize.fusion = false (as cuda-int8 does)"
        )
    if q == "static" and recipe.target == "cpu" and not sysinfo.cpu_info()["vnni"]:
        log.warning("static int8 on a CPU without VNNI was measured slower than dynamic int8; consider cpu-int8")


def export(
    checkpoint: str | Path,
    out: str | Path,
    recipe: str | Path | Recipe = "cpu-int8",
    *,
    data: str | None = None,
    max_accuracy_drop: float | None = None,
    force: bool = False,
    student_cache: str | Path | bool | None = True,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    strict: bool = False,
    unlabelled: str | Path | None = None,
    text_pair_column: str | None = None,
    task: str | None = None,
) -> Path:
    """Compress and export a fine-tuned checkpoint into a bundle; return the bundle directory.

    student_cache: a directory where pruned, distilled students are kept by (checkpoint, data,
    prune, distill, max_length) so that exports differing only in graph, precision, budget or
    `out` reuse them; True (the default): $LPM_EDGE_STUDENT_CACHE if set, else CHECKPOINT.students
    beside the checkpoint, else (a read-only folder) OUT.work/students beside `out`; False or
    None: keep nothing. An interrupted distillation resumes from its last checkpoint there.

    data: dataset to evaluate on (validation split); default: the one the checkpoint was
    trained on; validation, test, text_column, label_column, strict: as for `load_dataset` (the
    manifest's metrics name the split and its source). max_accuracy_drop: points of accuracy the
    bundle may lose against the checkpoint; overrides the recipe's value. When the bundle loses more,
    it is kept in OUT.rejected (manifest: accepted false), an int8 recipe whose fp32 student met the
    budget is tried again with quantize.auto_exclude, then with an fp32 graph for long, then short,
    batches (quantize.fp32_tokens), and AccuracyBudgetError says what to do next; nothing is
    written to `out`.
    unlabelled: a file of texts without labels (one per line, or CSV/TSV/JSONL with a text column)
    that the teacher labels for distillation, beside the training texts (lpm_edge.export.transfer).
    task: the task kind (lpm_edge.tasks.KINDS) when training.json does not record it, e.g.
    "embedding" for a sentence-embedding model directory.
    """
    job = _Job(Path(checkpoint), Path(out), data=data, max_accuracy_drop=max_accuracy_drop, force=force,
               student_cache=student_cache, task_kind=task,
               splits=dict(validation=validation, test=test, text_column=text_column, label_column=label_column,
                           strict=strict, text_pair_column=text_pair_column),
               unlabelled=tuple(_unlabelled(unlabelled, text_column, recipe)))
    try:
        return _export(job, recipe)
    except _Rejected as miss:
        return _after_budget_miss(miss, job)


@dataclass(frozen=True)
class _Job:
    """What an export was asked for, besides its recipe: the same for every try after a budget miss."""

    checkpoint: Path
    out: Path
    data: str | None = None
    max_accuracy_drop: float | None = None
    force: bool = False
    student_cache: str | Path | bool | None = True
    splits: dict[str, Any] = field(default_factory=dict)  # load_dataset's split options
    unlabelled: Sequence[str] = ()  # --unlabelled texts, read before any work
    task_kind: str | None = None  # --task, when training.json does not record it


def _export(job: _Job, recipe: str | Path | Recipe) -> Path:
    require("torch", "export")
    require("onnx", "export")
    import torch
    import transformers
    from transformers import AutoTokenizer

    from ..reference import TorchClassifier
    from ..train import read_training_info
    from ..train.model_dir import require_safetensors

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    preflight(recipe)
    budget = job.max_accuracy_drop if job.max_accuracy_drop is not None else recipe.check.max_accuracy_drop
    if recipe.quantize.auto_exclude and budget is None:
        raise ConfigError(
            f"recipe {recipe.name}: quantize.auto_exclude needs an accuracy budget; set check.max_accuracy_drop "
            "in the recipe or pass --max-accuracy-drop"
        )
    out, ckpt, force = job.out, job.checkpoint, job.force
    if out.exists() and not force:
        raise ExportError(f"{out} already exists; pass --force to replace it or choose another --out")
    _bundle.check_writable(out)  # fail now, not after minutes of work
    if not (ckpt / "config.json").is_file():
        raise ExportError(f"{ckpt} is not a checkpoint directory (no config.json); train one with `lpm-edge train`")
    require_safetensors(ckpt)
    info = _with_task(read_training_info(ckpt), job.task_kind, ckpt)
    dataset = checkpoint_dataset(job.data, info, **job.splits)
    task = tasks.from_training(info, dataset.labels)
    check_inputs_match(task, dataset, ckpt)

    family = _family(ckpt, recipe)  # before any minutes are spent
    tokenizer = AutoTokenizer.from_pretrained(ckpt, local_files_only=True)
    if recipe.vocab_prune:  # a tokenizer kind it cannot prune fails now, not after distillation
        from .vocab import tokenizer_kind

        tokenizer_kind(tokenizer)
    # The attention implementation whose TorchScript export ONNX Runtime's attention fusion matches.
    model = getattr(transformers, task.model_class).from_pretrained(
        ckpt, local_files_only=True, use_safetensors=True, attn_implementation=family.attn_implementation
    ).eval()
    task = task.for_checkpoint(ckpt, model.config)
    model = task.prepare_model(model)
    task.check_model(model.config, str(ckpt))
    labels = list(task.labels)
    if list(dataset.labels) != labels:
        raise ExportError(f"{ckpt} predicts {labels} but the data has labels {list(dataset.labels)}")
    max_length = min(recipe.max_length, family.max_length(model.config))
    split = dataset.validation
    if recipe.check.eval_samples:
        split = split.head(recipe.check.eval_samples)
    texts = list(split.texts)

    torch.manual_seed(0)
    full = TorchClassifier(model=model, tokenizer=tokenizer, max_length=max_length)
    full_logits = _outputs(full, texts, task)
    split = task.reference_split(split, full_logits)
    student, compression = _compress(job, model, tokenizer, dataset, recipe, task)
    if recipe.vocab_prune:  # from here on, `tokenizer` is the one the bundle ships
        student, tokenizer, compression = _prune_vocab(student, tokenizer, dataset, texts, max_length, compression)
    source = full if student is model else TorchClassifier(model=student, tokenizer=tokenizer, max_length=max_length)
    source_logits = full_logits if student is model else _outputs(source, texts, task)

    names = input_names(student, tokenizer)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=_bundle.scratch_prefix(out), suffix=".work", dir=out.parent) as tmp:
        work = Path(tmp)
        drop_of = _drop_of(source, names, texts, split.labels, full_logits, task) if recipe.quantize.auto_exclude else None
        graph, fp32_graph, stages = _build_graph(student, source, names, texts[:PARITY_SAMPLE], recipe, work,
                                                 calibration=dataset.train.texts, drop_of=drop_of, budget=budget,
                                                 task=task)
        with _bundle.atomic_directory(out, force=force) as bdir:
            shutil.copyfile(graph, bdir / _bundle.MODEL_FILE)
            if recipe.quantize.fp32_tokens:
                shutil.copyfile(fp32_graph, bdir / _bundle.FALLBACK_FILE)
            _save_tokenizer(tokenizer, bdir / _bundle.TOKENIZER_FILE)
            def manifest(own: Task, metrics: dict[str, Any] | None = None) -> _bundle.Manifest:
                return _manifest(bdir, own, max_length, names, recipe, job, info, student, tokenizer, stages,
                                 compression, metrics)

            _bundle.write_manifest(bdir, manifest(task))  # the runtime loads the bundle to measure it
            metrics, own = _measure(bdir, split, task, full_logits, source_logits, dataset.name)
            miss = rejected.budget_miss(metrics, budget)
            metrics.update(rejected.verdict(miss, budget))
            _bundle.write_manifest(bdir, manifest(own, metrics))
            if miss:  # raised inside the block: `out` stays as it was
                log.info("kept the bundle that missed its budget in %s", rejected.keep(bdir, out))
                raise _Rejected(miss, metrics, recipe, budget, max_length,
                                rejected.median_tokens(tokenizer, texts, max_length),
                                (compression.get("vocab") or {}).get("eval_texts_changed", 0))
    log.info("wrote %s: %s %.4f (full model %.4f) on %s", out, task.metric, metrics["bundle_accuracy"],
             metrics["reference_accuracy"], split.describe())
    return out


class _Rejected(Exception):
    """The bundle missed its budget and was kept in OUT.rejected."""

    def __init__(self, reason: str, metrics: dict[str, Any], recipe: Recipe, budget: float | None,
                 max_length: int, split_tokens: int, vocab_changed: int = 0) -> None:
        super().__init__(reason)
        self.reason, self.metrics, self.recipe, self.budget = reason, metrics, recipe, budget
        self.max_length, self.split_tokens = max_length, split_tokens  # where an fp32 fallback may split
        self.vocab_changed = vocab_changed  # evaluation texts whose tokens vocabulary pruning changed


def _after_budget_miss(miss: _Rejected, job: _Job) -> Path:
    """Try the rescues where they can help (the full vocabulary, then int8's), else raise
    AccuracyBudgetError saying what to do next."""
    m, recipe, budget = miss.metrics, miss.recipe, miss.budget
    tried = [f"recipe {recipe.name} as written (drop {m['accuracy_drop_points']:.2f})"]
    out, checkpoint = job.out, job.checkpoint
    cache = resolve_cache(out, job.student_cache, checkpoint)
    cached = cache is not None
    # Without the cache each try would distill again.
    tries = rejected.rescues(recipe, m, budget, miss.max_length, miss.split_tokens, miss.vocab_changed)
    tries = tries if cached or not recipe.distill.steps else []
    last = miss
    for what, better in tries:
        log.warning("%s; trying again with %s", last.reason, what)
        with rejected.best_kept(out):
            try:
                return _export(replace(job, max_accuracy_drop=budget), better)
            except _Rejected as again:
                tried.append(f"{what} (drop {again.metrics['accuracy_drop_points']:.2f})")
                last, miss = again, min(miss, again, key=lambda r: r.metrics["accuracy_drop_points"])  # the one kept
    p = recipe.prune
    compressed = bool(p.heads or p.ffn or p.layers or recipe.distill.steps)
    student_drop = (m["reference_accuracy"] - m["source_accuracy"]) * 100 if compressed else None
    raise AccuracyBudgetError(rejected.error_message(
        miss.reason, out, tried, checkpoint, cache if recipe.distill.steps else None, student_drop, budget))


def _family(ckpt: Path, recipe: Recipe) -> Family:
    """The checkpoint's family adapter, after the capability check (ConfigError for an unknown family)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(ckpt, local_files_only=True)
    check_capabilities(config, recipe)
    return adapter_for(config)


def checkpoint_dataset(
    data: str | None, info: dict[str, Any], *, validation: str | Path | None = None,
    test: str | Path | None = None, text_column: str | None = None, label_column: str | None = None,
    strict: bool = False, text_pair_column: str | None = None,
) -> Dataset:
    """`data` if given, else the dataset (columns, validation and test files) the checkpoint's
    training.json names; `validation`/`test` files replace the recorded ones.

    text_column/label_column: the columns of `data` when it is not the recorded source, and of the
    validation and test files (default: the training file's columns). text_pair_column: the second
    text of every file's rows (default: the checkpoint's, for a checkpoint trained on pairs).
    """
    recorded = info.get("data", {})
    kind = (info.get("task") or {}).get("kind", tasks.DEFAULT)
    source = data or recorded.get("source") or tasks.task_class(kind).default_data
    if not source:
        raise ConfigError("the checkpoint has no training.json naming its dataset; pass --data NAME|PATH")
    same = str(source) == recorded.get("source")
    text = text_column or (recorded.get("text_column", "text") if same else "text")
    label = label_column or (recorded.get("label_column", "label") if same else "label")
    return load_dataset(
        source,
        text_column=recorded.get("text_column", "text") if same else text,
        label_column=recorded.get("label_column", "label") if same else label,
        validation=validation or (recorded.get("validation") if same else None),
        test=test or (recorded.get("test") if same else None),
        eval_columns=(text, label),
        strict=strict,
        task=kind,
        text_pair_column=text_pair_column or recorded.get("text_pair_column"),
    )


def check_inputs_match(task: Task, dataset: Dataset, ckpt: Path) -> None:
    """Refuse data of one text per row for a checkpoint trained on pairs, and the other way round."""
    if tuple(task.input_fields) != tuple(dataset.inputs):
        fix = ("pass --text-pair-column naming the second text's column" if task.pairs
               else "drop --text-pair-column, or pass data of one text per row")
        raise ConfigError(f"{ckpt} was trained on inputs {list(task.input_fields)} but the data gives "
                          f"{list(dataset.inputs)}; {fix}")


def _with_task(info: dict[str, Any], kind: str | None, ckpt: Path) -> dict[str, Any]:
    """training.json's record with the task `kind` asked for (export --task), which must agree with it."""
    if kind is None:
        return info
    recorded = (info.get("task") or {}).get("kind")
    if recorded is not None and recorded != kind:
        raise ConfigError(f"{ckpt}/training.json records the task {recorded!r}, not {kind!r}; drop --task")
    tasks.task_class(kind, "--task")
    return {**info, "task": {**(info.get("task") or {}), "kind": kind}}


def _compress(
    job: _Job, model: Any, tokenizer: Any, dataset: Dataset, recipe: Recipe, task: Task,
) -> tuple[Any, dict[str, Any]]:
    """Structured pruning and distillation (with the job's --unlabelled texts, through its student
    cache); the student is a new model, `model` is untouched."""
    p = recipe.prune
    if not (p.heads or p.ffn or p.layers) and not recipe.distill.steps:
        return model, {}
    from .compress import compress

    cache = resolve_cache(job.out, job.student_cache, job.checkpoint)
    if cache is None:
        return compress(model, tokenizer, dataset, recipe, task=task, unlabelled=job.unlabelled)
    return cached_compress(model, tokenizer, dataset, recipe, job.checkpoint, Path(cache), task=task,
                           unlabelled=job.unlabelled)


def _unlabelled(path: str | Path | None, text_column: str | None, recipe: str | Path | Recipe) -> list[str]:
    """The --unlabelled texts, read before any work; refused for a recipe that does not distill."""
    if path is None:
        return []
    from ..data_files import read_texts

    named = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    if not named.distill.steps:
        raise ConfigError(f"--unlabelled texts are for distillation, and recipe {named.name} does not distill "
                          "(distill.steps = 0); use a recipe that does, e.g. cpu-pruned-int8")
    texts = read_texts(path, text_column or "text")
    log.info("%d unlabelled texts from %s join distillation (the teacher labels them)", len(texts), Path(path).name)
    return texts


def _prune_vocab(
    student: Any, tokenizer: Any, dataset: Dataset, texts: list[str], max_length: int, compression: dict[str, Any]
) -> tuple[Any, Any, dict[str, Any]]:
    """Keep the tokens the training texts need; record how many evaluation texts tokenize differently
    and how many evaluation tokens became [UNK]."""
    from .vocab import changed_texts, prune_vocab, unk_rate

    pruned, pruned_tok, vocab = prune_vocab(student, tokenizer, dataset.train.texts)
    vocab["eval_texts_changed"] = changed_texts(tokenizer, pruned_tok, texts, max_length)
    vocab["eval_texts"] = len(texts)
    vocab["eval_unk_rate_before"] = unk_rate(tokenizer, texts, max_length)
    vocab["eval_unk_rate_after"] = unk_rate(pruned_tok, texts, max_length)
    log.info("evaluation texts tokenized differently: %d of %d; [UNK] share of their tokens: %.4f -> %.4f",
             vocab["eval_texts_changed"], len(texts), vocab["eval_unk_rate_before"], vocab["eval_unk_rate_after"])
    return pruned, pruned_tok, {**compression, "vocab": vocab}


def _build_graph(
    student: Any, source: Any, names: Sequence[str], sample: list[str], recipe: Recipe, work: Path,
    calibration: Sequence[str] = (), drop_of: Callable[[Path], float] | None = None, budget: float | None = None,
    task: Task | None = None,
) -> tuple[Path, Path, dict[str, Any]]:
    """Export, check parity, fuse, quantize; return the final graph, the fp32 graph it came from,
    and what each stage did.

    calibration: training texts; static int8 calibrates on a bounded sample of them.
    drop_of, budget: with quantize.auto_exclude, how a graph's accuracy drop is measured and
    how much is allowed.
    """
    task = task or tasks.from_training({}, source.labels)
    raw = work / "raw.onnx"
    to_onnx(student, names, raw, recipe.opset, task)
    batches = [source.encode(sample[i : i + 16]) for i in range(0, len(sample), 16)]
    feeds = [{n: b[n].numpy() for n in names} for b in batches]
    expected = task.stack([task.graph_output(source.model(**b), b).detach().float().numpy() for b in batches])
    stages: dict[str, Any] = {}
    diffs = {"raw": float(np.abs(task.stack(onnx_logits(raw, feeds, task.output_name)) - expected).max())}
    graph = raw
    if recipe.optimize.fusion:
        fused = work / "fused.onnx"
        family = adapter_for(student.config)
        heads, hidden = attention_shape(student)
        stages["fusion"] = fuse(raw, fused, heads, hidden, family.fusion, skip_layer_norm=recipe.target != "cpu")
        stages["fusion"]["family"] = family.name
        if family.fusion.missing:
            log.info("%s: %s", family.name, family.fusion.missing)
        # Only what the family's fusion is expected to find: attention where ORT has a pattern for it,
        # else the LayerNorms.
        required = [k for k in ("attention", "layernorm") if k in family.fusion.expects][:1]
        absent = [k for k in required if k in stages["fusion"]["not_fused"]]
        if recipe.optimize.require_fusion and absent:
            raise ExportError(
                f"graph fusion fused no {absent[0]} for this {family.name} model ({stages['fusion']['operators']}); "
                "this transformers/onnxruntime pair may have changed the pattern. "
                "Set optimize.require_fusion = false in the recipe to export unfused"
            )
        diffs["fused"] = float(np.abs(task.stack(onnx_logits(fused, feeds, task.output_name)) - expected).max())
        graph = fused
    failed = {k: v for k, v in diffs.items() if v > recipe.check.parity_tolerance}
    if failed:
        raise ParityError(
            "fp32 ONNX graph disagrees with PyTorch: max abs logit diff "
            + ", ".join(f"{k}={v:.2e}" for k, v in diffs.items())
            + f" (tolerance {recipe.check.parity_tolerance:g}); please report this model type"
        )
    stages["fp32_parity_max_abs_diff"] = diffs
    mode, q = recipe.quantize.mode, recipe.quantize
    fp32_graph = graph
    if q.auto_exclude and drop_of is not None and budget is not None:
        graph, stages["int8_auto_exclude"] = _auto_exclude(graph, work, recipe, source, calibration, feeds,
                                                           expected, drop_of, budget, task.output_name)
    elif mode == "dynamic":
        final = work / "int8.onnx"
        quantize_dynamic_int8(graph, final, work, q.per_channel, q.exclude_nodes, q.exclude_op_types,
                              q.reduce_range)
        graph = final
    elif mode != "none":
        from .precision import convert

        graph = convert(graph, work, recipe, student, source, calibration)
    if mode == "static":
        stages["calibration_texts"] = min(len(calibration), q.calibration_samples)
    stages["quantize"] = mode
    return graph, fp32_graph, stages


def _auto_exclude(
    graph: Path, work: Path, recipe: Recipe, source: Any, calibration: Sequence[str], feeds: list[dict],
    expected: np.ndarray, drop_of: Callable[[Path], float], budget: float, output: str = "logits",
) -> tuple[Path, dict[str, Any]]:
    """int8 with the most sensitive layers returned to fp32 until the accuracy budget holds."""
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    from .precision import STATIC_OP_TYPES, static_quantizer
    from .sensitivity import auto_exclude, node_groups

    q = recipe.quantize
    fixed = list(q.exclude_nodes)
    if q.mode == "dynamic":
        op_types = [op for op in IntegerOpsRegistry if op not in set(q.exclude_op_types)]

        def quantize(dst: Path, exclude: Sequence[str]) -> None:
            quantize_dynamic_int8(graph, dst, work, q.per_channel, [*fixed, *exclude], q.exclude_op_types,
                                  q.reduce_range)
    else:
        op_types = [op for op in STATIC_OP_TYPES if op not in set(q.exclude_op_types)]
        static = static_quantizer(graph, work, recipe, source, calibration)

        def quantize(dst: Path, exclude: Sequence[str]) -> None:
            static(dst, [*fixed, *exclude])

    groups = node_groups(graph, op_types)
    return auto_exclude(groups, work, quantize, drop_of, budget, feeds, expected, output)


def _outputs(runner: Any, texts: list[str], task: Task) -> np.ndarray:
    """The outputs the evaluator compares: the task's own reading of per-token outputs, else logits."""
    own = task.outputs_of(runner, texts)
    return runner.logits(texts) if own is None else own


def _drop_of(source: Any, names: Sequence[str], texts: list[str], labels: Sequence[Any],
             full_logits: np.ndarray, task: Task) -> Callable[[Path], float]:
    """A function: ONNX graph -> points of the task's budget metric it loses against the full model on `texts`."""
    from ..runtime.classifier import BATCH_SIZE, CPU_BATCH_TOKENS
    from ..runtime.tokenize import length_batches

    gold = task.gold_array(labels)
    if task.outputs_of(source, []) is not None:  # per-token outputs: measured through the task's windows
        from .graph_runner import task_drop_of

        return task_drop_of(source, names, texts, gold, full_logits, task)
    # Batched as the CPU runtime will batch them: dynamic int8 scales depend on the batch.
    lengths = [len(ids) for ids in hf_tokenize(source.tokenizer, texts, truncation=True,
                                               max_length=source.max_length)["input_ids"]]
    groups = length_batches(lengths, BATCH_SIZE, CPU_BATCH_TOKENS)
    feeds = [{n: b[n].numpy() for n in names} for b in (source.encode([texts[i] for i in g]) for g in groups)]
    rows = np.concatenate(groups) if groups else np.zeros(0, dtype=int)

    def drop_of(graph: Path) -> float:
        outputs = np.zeros_like(full_logits)
        if feeds:
            outputs[rows] = np.concatenate(onnx_logits(graph, feeds, task.output_name))
        return task.fitted_loss(gold, full_logits, outputs)

    return drop_of


def _measure(
    bdir: Path, split: Split, task: Task, full_logits: np.ndarray, source_logits: np.ndarray,
    data_name: str,
) -> tuple[dict[str, Any], Task]:
    """The bundle's figures on `split` against the full model's and its source's, and the task the
    bundle ships: fitted to its own outputs there where the task fits any (multi-label thresholds)."""
    from ..evaluate import compare
    from ..runtime import load

    texts = list(split.texts)
    bundle_logits = load(bdir, providers="cpu", spin=False).logits(texts)
    own = task.fitted(split.labels, bundle_logits)
    ref, src, got = compare(split, [("full model", full_logits), ("source", source_logits), ("bundle", bundle_logits)],
                            task, tasks=[task, task.fitted(split.labels, source_logits), own])
    metrics = {
        "data": data_name,
        "split": split.name,
        "source": split.source_name(),  # file names only: a bundle ships to other machines
        "n": len(texts),
        "metric": task.metric,  # the figures below hold for it; `accuracy` names keep their old meaning for it
        "reference_accuracy": ref.value,
        "source_accuracy": src.value,
        "bundle_accuracy": got.value,
        "accuracy_drop_points": got.loss_points,
        "accuracy_drop_ci95": list(got.loss_ci95) if got.loss_ci95 else None,
        "bundle_metrics": dict(got.all_metrics),  # every metric of the task (embeddings: cosine, recall_at_10)
        "cpu_class": sysinfo.cpu_class(),  # int8 kernels, and so int8 accuracy, differ between CPU classes
        "parity": {
            "max_abs_logit_diff": float(np.abs(bundle_logits - source_logits).max()) if len(texts) else 0.0,
            "argmax_agreement": None if task.decisions(source_logits) is None else  # regression: no decisions
            float((task.decisions(bundle_logits) == task.decisions(source_logits))
                  .reshape(len(texts), -1).all(axis=1).mean()) if len(texts) else 1.0,
        },
    }
    return metrics, own


def _save_tokenizer(tokenizer: Any, path: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    tok.no_padding()
    tok.no_truncation()  # the runtime truncates to the manifest's max_length
    tok.save(str(path))


def _manifest(
    bdir: Path, task: Task, max_length: int, names: Sequence[str], recipe: Recipe, job: _Job,
    info: dict[str, Any], student: Any, tokenizer: Any, stages: dict[str, Any], compression: dict[str, Any],
    metrics: dict[str, Any] | None = None,
) -> _bundle.Manifest:
    fallback = _bundle.FALLBACK_FILE if recipe.quantize.fp32_tokens else None
    files = {n: _bundle.file_entry(bdir / n) for n in (_bundle.MODEL_FILE, _bundle.TOKENIZER_FILE, fallback) if n}
    return _bundle.Manifest(
        fallback_file=fallback,
        fallback_tokens=recipe.quantize.fp32_tokens,
        task=task.kind,
        labels=task.labels,
        task_info=task.section(),
        input_fields=task.input_fields,
        max_length=max_length,
        inputs=tuple(names),
        outputs=(task.output_name,),
        files=files,
        opset=recipe.opset,
        pad_id=int(tokenizer.pad_token_id or 0),
        recipe=recipe.to_dict(),
        source={
            # Names and hashes, never the build machine's paths (a bundle ships to customers).
            "checkpoint": model_record(job.checkpoint),
            "base_model": model_record(info.get("base_model")),
            "architecture": student.config.model_type,
            "parameters": int(sum(p.numel() for p in student.parameters())),
            "training": {k: info[k] for k in ("epochs_run", "steps", "test") if k in info},
            "compression": compression,
        },
        metrics=metrics or {},
        build={
            "lpm_edge": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": sysinfo.machine(),
            "stages": stages,
        },
    )
