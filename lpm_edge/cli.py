"""`lpm-edge` command line: train, export, accept, predict, inspect, pack, bench, search, demo, serve.

Exit codes: 0 ok, 1 a known error (one line on stderr; traceback with --debug), 2 usage.
Results go to stdout (--json for machines); logs and progress go to stderr.
"""

from __future__ import annotations

import argparse
import errno
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .errors import ConfigError, DataError, LpmEdgeError
from .tasks import DEFAULT as DEFAULT_TASK, KINDS

log = logging.getLogger("lpm_edge")


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return n


def _int_list(value: str) -> tuple[int, ...]:
    try:
        items = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of integers, e.g. 1,8,32") from None
    if not items or min(items) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} must list positive integers, e.g. 1,8,32")
    return items


def _float_list(value: str) -> list[float]:
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of numbers") from None
    if not out or any(not 0 <= v < 1 for v in out):
        raise argparse.ArgumentTypeError(f"{value!r}: each fraction must be in [0, 1)")
    return out


def _add_data(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--data", default=default, help="built-in dataset name (rotten-tomatoes; pairs: rotten-tomatoes-pairs, "
                   "rotten-tomatoes-plot-sentences; "
                   "multi-task: presidential-debates-2016) "
                   "or a data file: "
                   "CSV/TSV/JSONL, Parquet, Arrow, or a folder saved with datasets' save_to_disk")


def _add_splits(p: argparse.ArgumentParser, columns: bool = True) -> None:
    """--validation, --test, --strict (and the column flags) of every command that reads data."""
    if columns:
        p.add_argument("--text-column", default=None,
                       help="text column of --data (when it is not the checkpoint's) and of --validation/--test "
                            "(default: the checkpoint's, else 'text')")
        p.add_argument("--label-column", default=None, help="label column, as --text-column")
        p.add_argument("--text-pair-column", default=None,
                       help="second text column, for a checkpoint trained on sentence pairs (default: the checkpoint's)")
        p.add_argument("--validation", type=Path, default=None,
                       help="validation file (default: the checkpoint's, else a 10%% cut of --data)")
    # train (columns=False) has no checkpoint yet to take a test file from
    default = "the checkpoint's, else a 10%% cut of --data" if columns else "a 10%% cut of --data"
    p.add_argument("--test", type=Path, default=None, help=f"test file, every row of it evaluated (default: {default})")
    p.add_argument("--strict", action="store_true",
                   help="refuse data where a text is in two splits (default: drop it from validation/test, warning)")


def _split_args(a: argparse.Namespace) -> dict[str, Any]:
    return {"validation": a.validation, "test": a.test, "text_column": a.text_column,
            "label_column": a.label_column, "strict": a.strict, "text_pair_column": a.text_pair_column}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lpm-edge", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"lpm-edge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="fine-tune a model directory on labelled text")
    p.add_argument("--model", type=Path, default=None, help="local Hugging Face model dir (default: built-in MiniLM-L6)")
    _add_data(p, "rotten-tomatoes")
    p.add_argument("--out", type=Path, default=Path("runs/checkpoint"))
    p.add_argument("--task", default="text-classification", choices=list(KINDS),
                   help="what the model learns from the label column (default: text-classification, one label per text)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label",
                   help="label column (regression: the numeric target's; multi-task: several, comma-separated, "
                        "e.g. sentiment,topic,stars:regression,tags:multi-label, one head each)")
    p.add_argument("--text-pair-column", default=None,
                   help="second text of each row: the model reads (text, text_pair) pairs (NLI, re-ranking); "
                        "the built-in pair sets rotten-tomatoes-pairs and rotten-tomatoes-plot-sentences have them")
    p.add_argument("--head", action="append", default=None, metavar="NAME=FILE[:regression|:multi-label]",
                   help="multi-task from several files, one per head (repeat): FILE's label column is NAME, else "
                        "'label'; texts merge across files, a text without a head's label is left out of that "
                        "head's loss and metrics (replaces --data; implies --task multi-task)")
    p.add_argument("--validation", type=Path, default=None, help="separate validation file (else a 10%% cut of --data)")
    _add_splits(p, columns=False)
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--grad-accum", type=_positive_int, default=1)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-length", type=_positive_int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    p.add_argument("--metric", choices=["accuracy", "macro_f1", "loss", "spearman", "pearson", "mse", "mae", "entity_f1"],
                   default="accuracy", help="best-checkpoint metric (accuracy means the task's budget metric where it "
                                            "has no accuracy: regression spearman, token classification entity_f1; or "
                                            "macro_f1, pearson, mse, mae, entity_f1, loss)")
    p.add_argument("--patience", type=int, default=2, help="epochs without improvement before stopping (0 = never)")
    p.add_argument("--freeze-embeddings", action="store_true")
    p.add_argument("--no-group-by-length", action="store_true", help="do not batch texts of similar length together")
    p.add_argument("--limit-train", type=_positive_int, default=None, help="use only the first N training texts")
    p.add_argument("--threads", type=_positive_int, default=None, help="CPU threads for training (default: torch's)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its last epoch checkpoint (kept in .OUT.work beside --out)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("pretrain", help="continue masked-LM training of a model on unlabelled text (before train)")
    p.add_argument("--model", type=Path, default=None, help="local Hugging Face model dir (default: built-in MiniLM-L6)")
    p.add_argument("--text", required=True,
                   help="unlabelled text: a file (one text per line, or CSV/TSV/JSONL/Parquet with --text-column), "
                        "rotten-tomatoes-plots (the built-in file's plot summaries) or rotten-tomatoes (its "
                        "training texts); built-in texts leave out the validation and test movies'")
    p.add_argument("--text-column", default="text")
    p.add_argument("--out", type=Path, required=True, help="the model directory to write (for train --model)")
    p.add_argument("--epochs", type=float, default=3.0)
    p.add_argument("--max-steps", type=int, default=-1)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--mlm-probability", type=float, default=0.15, help="share of tokens masked (default 0.15)")
    p.add_argument("--max-length", type=_positive_int, default=128)
    p.add_argument("--limit", type=_positive_int, default=None, help="use only the first N texts")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto")
    p.add_argument("--threads", type=_positive_int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("export", help="compress a checkpoint into an ONNX bundle")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--recipe", default="cpu-int8",
                   help="built-in recipe name, a .toml file, or auto (run `search` with its defaults; "
                        "its work and report go to OUT.search)")
    p.add_argument("--target", choices=["cpu", "cuda"], default="cpu", help="with --recipe auto: what to search for")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--task", default=None, choices=list(KINDS),
                   help="the task when the checkpoint has no training.json recording it, e.g. embedding for a "
                        "sentence-embedding model directory (its data: --data texts, default rotten-tomatoes)")
    _add_data(p, None)
    _add_splits(p)
    p.add_argument("--max-accuracy-drop", "--max-metric-drop", dest="max_accuracy_drop", type=float, default=None,
                   metavar="POINTS",
                   help="fail if the bundle loses more of the task's metric (classifiers: accuracy; regression: "
                        "Spearman's rho x 100) than this, writing nothing to --out (the bundle is kept in "
                        "OUT.rejected; `lpm-edge accept` publishes it) "
                        "(--recipe auto: the search's budget, default 1.0)")
    p.add_argument("--zip", action="store_true", help="also pack the bundle as OUT.zip")
    p.add_argument("--student-cache", type=Path, default=None, metavar="DIR",
                   help="keep pruned, distilled students here and reuse them across exports "
                        "(default: $LPM_EDGE_STUDENT_CACHE, else CHECKPOINT.students beside the checkpoint, "
                        "shared by every --out; OUT.work/students when the checkpoint's folder is read-only)")
    p.add_argument("--no-student-cache", action="store_true",
                   help="keep no student (by default they are kept so that a re-run does not distill again)")
    _add_unlabelled(p)
    p.add_argument("--force", action="store_true", help="replace an existing --out")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("accept", help="publish a bundle that missed its accuracy budget (OUT.rejected) as OUT")
    p.add_argument("rejected", type=Path, help="the OUT.rejected folder a failed export kept")
    p.add_argument("--out", type=Path, default=None, help="where to publish it (default: the name without .rejected)")
    p.add_argument("--force", action="store_true", help="replace an existing --out")

    p = sub.add_parser("predict", help="classify texts with a bundle")
    p.add_argument("bundle", type=Path)
    p.add_argument("texts", nargs="*", help="texts to classify (default: one per line on stdin); for a bundle on "
                   "sentence pairs each is TEXT<TAB>TEXT_PAIR")
    p.add_argument("--providers", default="auto", help="auto, cpu, cuda, or a comma-separated list")
    p.add_argument("--json", action="store_true")
    _add_scoring(p)

    p = sub.add_parser("inspect", help="summarize a bundle's manifest")
    p.add_argument("bundle", type=Path)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("pack", help="pack a bundle directory into one .zip file")
    p.add_argument("bundle", type=Path)
    p.add_argument("out", type=Path)

    p = sub.add_parser("bench", help="accuracy and latency of bundles against the full model")
    p.add_argument("bundles", type=Path, nargs="+")
    p.add_argument("--reference", type=Path, required=True, help="the checkpoint the bundles came from")
    _add_data(p, None)
    _add_splits(p)
    p.add_argument("--split", choices=["train", "validation", "test"], default="test",
                   help="the split to measure accuracy on (with --test FILE: every row of FILE)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--quick", action="store_true", help="a short run: same grid, fewer repetitions")
    p.add_argument("--batch-sizes", type=_int_list, default=(1, 8, 32), metavar="1,8,32")
    p.add_argument("--seq-lengths", type=_int_list, default=(16, 64, 128, 256), metavar="16,64,128,256")
    p.add_argument("--repeats", type=_positive_int, default=None, help="timed rounds at batch 1 (default 200, quick 30)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    p.add_argument("--no-subprocess", action="store_true", help="skip cold start and peak memory (fresh processes)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("search", help="the fastest bundle within an accuracy budget")
    p.add_argument("checkpoint", type=Path)
    _add_data(p, None)
    _add_splits(p)
    p.add_argument("--max-accuracy-drop", "--max-metric-drop", dest="max_accuracy_drop", type=float, default=1.0,
                   metavar="POINTS", help="points of the task's metric a candidate may lose (classifiers: accuracy; "
                                          "regression: Spearman's rho x 100)")
    p.add_argument("--target", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--task", default=None, choices=list(KINDS),
                   help="the task when the checkpoint has no training.json recording it (e.g. embedding)")
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--distill-steps", type=_int_list, default=None, metavar="1600[,3200]",
                   help="distillation budgets for pruned candidates (default: the cpu-pruned-int8 recipe's, 1600); "
                        "a longer one is tried only where a shorter one broke the accuracy budget")
    p.add_argument("--layers", type=_int_list, default=None,
                   help="layers to keep, e.g. 4,3 (default, with no --heads/--ffn either: a ladder of three "
                        "architectures, see README; else all, 2/3, 1/2)")
    p.add_argument("--heads", type=_float_list, default=None,
                   help="fractions of heads to remove, e.g. 0,0.334,0.5 (default: as --layers; else 0, 1/3, 1/2)")
    p.add_argument("--ffn", type=_float_list, default=None,
                   help="fractions of FFN width to remove, e.g. 0,0.5,0.75 (default: as --layers; else 0, 1/2, 3/4)")
    _add_unlabelled(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("serve", help="serve a bundle over HTTP (POST /predict) with micro-batching")
    p.add_argument("bundle", type=Path)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=_positive_int, default=1, help="processes, each with its own model")
    p.add_argument("--threads", type=_positive_int, default=None, help="ONNX Runtime threads per worker "
                                                                      "(default: cores // workers)")
    p.add_argument("--providers", default="auto")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="how long a batch waits for more requests")
    p.add_argument("--max-batch", type=_positive_int, default=64, help="texts per model call at most")
    p.add_argument("--no-batching", action="store_true", help="one model call per request")
    p.add_argument("--max-texts", type=_positive_int, default=256, help="texts per request at most")
    p.add_argument("--max-chars", type=_positive_int, default=20_000, help="characters per text at most")
    p.add_argument("--max-body-bytes", type=_positive_int, default=1 << 20)

    p = sub.add_parser("demo", help="the whole path on built-in defaults: train, export, predict, bench")
    p.add_argument("--out", type=Path, default=Path("runs/demo"))
    p.add_argument("--epochs", type=float, default=3.0, help="at most this many epochs (early stopping)")
    p.add_argument("--recipe", default="cpu-int8")
    p.add_argument("--limit-train", type=_positive_int, default=None)
    p.add_argument("--quick", action="store_true", help="a short bench (for smoke runs)")
    return parser


def _add_scoring(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("batch scoring of a file (--input)")
    g.add_argument("--input", type=Path, default=None, help="a .csv, .tsv, .jsonl or .parquet file to score")
    g.add_argument("--output", type=Path, default=None, help="where to write it, same format, with pred_label "
                                                            "and pred_score added")
    g.add_argument("--text-column", default="text")
    g.add_argument("--text-pair-column", default=None, help="second text of each row, for a bundle on sentence pairs")
    g.add_argument("--workers", type=_positive_int, default=1, help="processes, each with cores // N threads")
    g.add_argument("--resume", action="store_true", help="continue an interrupted run (its finished chunks are kept "
                                                         "in .OUTPUT.work beside --output)")
    g.add_argument("--skip-bad", action="store_true", help="skip (and count) rows without usable text instead of stopping")
    g.add_argument("--max-chars", type=_positive_int, default=100_000, help="longer texts are bad rows")
    g.add_argument("--chunk-rows", type=_positive_int, default=4096, help="rows scored at once; the unit of --resume")
    g.add_argument("--force", action="store_true", help="replace an existing --output")
    g.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                   help="score on a Ray cluster (a local one without ADDRESS) with --workers actors; "
                        "needs lpm-edge[ray]")


def _predict_file(a: argparse.Namespace) -> int:
    if a.texts:
        raise ConfigError("give texts or --input, not both")
    if a.output is None:
        raise ConfigError("--input needs --output FILE (same format as the input)")
    providers = a.providers.split(",") if "," in a.providers else a.providers
    if a.ray is not None:
        from .integrations.ray import score_file_ray

        result = score_file_ray(a.bundle, a.input, a.output, address=None if a.ray == "local" else a.ray,
                                concurrency=a.workers, providers=providers, text_column=a.text_column,
                                resume=a.resume, skip_bad=a.skip_bad, force=a.force, chunk_rows=a.chunk_rows,
                                max_chars=a.max_chars, text_pair_column=a.text_pair_column)
    else:
        from .scoring import score_file

        result = score_file(a.bundle, a.input, a.output, text_column=a.text_column, workers=a.workers,
                            resume=a.resume, skip_bad=a.skip_bad, force=a.force, chunk_rows=a.chunk_rows,
                            max_chars=a.max_chars, providers=providers, text_pair_column=a.text_pair_column)
    if a.json:
        _print_json(result.to_dict())
    else:
        print(f"{result.output}: {result.rows:,} rows scored in {result.seconds:.1f} s"
              + (f", {result.skipped:,} bad rows skipped" if result.skipped else ""))
    return 0


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_train(a: argparse.Namespace) -> int:
    from .train import TrainConfig, read_training_info, train

    if a.head:  # several files, one per head: the data string multi-task reads (see tasks/multitask_files.py)
        if a.task not in (DEFAULT_TASK, "multi-task"):
            raise ConfigError(f"--head trains a multi-task model; drop --task {a.task}")
        a.data, a.task = ",".join(a.head), "multi-task"
    config = TrainConfig(
        out=a.out, model=a.model, data=a.data, task=a.task, text_column=a.text_column, label_column=a.label_column,
        text_pair_column=a.text_pair_column,
        validation=a.validation, test=a.test, strict=a.strict, epochs=a.epochs, max_steps=a.max_steps, batch_size=a.batch_size,
        grad_accum=a.grad_accum, learning_rate=a.lr, max_length=a.max_length, seed=a.seed, device=a.device,
        precision=a.precision, metric=a.metric, patience=a.patience or None,
        freeze_embeddings=a.freeze_embeddings, group_by_length=not a.no_group_by_length,
        limit_train=a.limit_train, threads=a.threads, resume=a.resume, force=a.force,
    )
    out = train(config)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, one result line: the main process's
        return 0
    info = read_training_info(out)
    if a.json:
        _print_json({"checkpoint": str(out), **info})
    else:
        t, where = info.get("test", {}), info.get("test_split", {})
        from .tasks import from_training

        metric = from_training(info, info.get("labels", ())).metric  # the instance's (mixed multi-task heads)
        also = f", macro-F1 {t['macro_f1']:.4f}" if "macro_f1" in t and metric != "macro_f1" else ""  # classifiers'
        print(f"{out}: test {metric} {t.get(metric, float('nan')):.4f}{also} "
              f"on {where.get('n', '?')} test texts of {where.get('source', '?')}; "
              f"{info.get('epochs_run')} epochs in {info.get('train_seconds')} s on {info.get('device')}")
    return 0


def cmd_pretrain(a: argparse.Namespace) -> int:
    from .train.pretrain import PRETRAINING_JSON, PretrainConfig, pretrain

    config = PretrainConfig(
        out=a.out, text=a.text, model=a.model, text_column=a.text_column, epochs=a.epochs, max_steps=a.max_steps,
        batch_size=a.batch_size, learning_rate=a.lr, mlm_probability=a.mlm_probability, max_length=a.max_length,
        limit=a.limit, seed=a.seed, device=a.device, precision=a.precision, threads=a.threads, force=a.force,
    )
    out = pretrain(config)
    info = json.loads((out / PRETRAINING_JSON).read_text())
    if a.json:
        _print_json({"model": str(out), **info})
    else:
        loss = info["held_out_mlm_loss"]
        print(f"{out}: held-out masked-LM loss {loss['before']:.4f} -> {loss['after']:.4f} on "
              f"{info['sizes']['held_out']} texts; {info['steps']} steps in {info['train_seconds']} s on "
              f"{info['device']}; next: lpm-edge train --model {out}")
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from .bundle import pack_zip, read_manifest
    from .export import export

    if a.recipe == "auto":
        out = _export_auto(a)
    elif a.target != "cpu":
        raise ConfigError(f"--target {a.target} chooses what --recipe auto searches for; a named recipe "
                          "carries its own target (e.g. --recipe cuda-fp16)")
    else:
        out = export(a.checkpoint, a.out, a.recipe, data=a.data, max_accuracy_drop=a.max_accuracy_drop,
                     force=a.force, student_cache=_student_cache(a), unlabelled=a.unlabelled, **_split_args(a),
                     **({"task": a.task} if getattr(a, "task", None) else {}))
    manifest = read_manifest(out)
    packed = pack_zip(out, out.with_suffix(".zip")) if a.zip else None
    if a.json:
        _print_json({"bundle": str(out), "zip": str(packed) if packed else None, "metrics": manifest.metrics})
    else:
        m = manifest.metrics
        print(f"{out}: {m.get('metric', 'accuracy')} {m['bundle_accuracy']:.4f} vs full model {m['reference_accuracy']:.4f} "
              f"(drop {m['accuracy_drop_points']:+.2f} points) on {m['n']} {m.get('split')} texts of {m.get('source')}; "
              f"agreement with the source model {_num(m['parity']['argmax_agreement'], '.1f', 100)}%"
              + (f"; packed {packed}" if packed else ""))
    return 0


def _add_unlabelled(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unlabelled", type=Path, default=None, metavar="FILE",
                   help="texts without labels for distillation, labelled by the teacher: one per line, or "
                        "CSV/TSV/JSONL with a text column (--text-column, default text)")


def _student_cache(a: argparse.Namespace) -> Path | bool:
    if a.no_student_cache and a.student_cache is not None:
        raise ConfigError("--student-cache and --no-student-cache contradict each other; pass one")
    return False if a.no_student_cache else (a.student_cache or True)


def _export_auto(a: argparse.Namespace) -> Path:
    """`export --recipe auto`: search with the default space, keep the chosen bundle in OUT."""
    from .bundle import check_writable
    from .errors import ExportError
    from .search import keep_bundle, search

    out: Path = a.out
    if a.student_cache is not None:
        raise ConfigError("--student-cache applies to a named recipe; --recipe auto keeps its students in OUT.search")
    if out.exists() and not a.force:
        raise ExportError(f"{out} already exists; pass --force to replace it or choose another --out")
    check_writable(out)
    work = out.with_name(out.name + ".search")
    budget = 1.0 if a.max_accuracy_drop is None else a.max_accuracy_drop
    result = search(a.checkpoint, work, data=a.data, max_accuracy_drop=budget, target=a.target,
                    unlabelled=a.unlabelled, **_split_args(a), **({"task": a.task} if a.task else {}))
    log.info("search chose %s; its report is %s", result.chosen.label if result.chosen else None, work / "search.md")
    return keep_bundle(work / "bundle", out)


def _split_pairs(texts: Sequence[str]) -> list[Any]:
    """TEXT<TAB>TEXT_PAIR lines as (text, text_pair) tuples; DataError naming the first line without one tab."""
    pairs = []
    for i, text in enumerate(texts, start=1):
        parts = text.split("\t")
        if len(parts) != 2 or not all(p.strip() for p in parts):
            raise DataError(f"text {i}: this bundle scores sentence pairs: give each as TEXT<TAB>TEXT_PAIR (one tab, "
                            f"two non-empty texts), got {text[:60]!r}")
        pairs.append((parts[0], parts[1]))
    return pairs


def _read_texts(args: Sequence[str]) -> list[str]:
    """Texts from the command line, else one per line on stdin; UTF-8 whatever the locale."""
    for i, text in enumerate(args):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(f"text argument {i + 1} is not valid UTF-8; pass UTF-8 text") from None
    if args:
        return list(args)
    if sys.stdin is None:  # stdin closed
        return []
    data = sys.stdin.buffer.read()
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"stdin is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "convert it first, e.g. with iconv -t UTF-8"
        ) from None
    return [line.rstrip("\n") for line in io.StringIO(decoded, newline=None)]


def cmd_predict(a: argparse.Namespace) -> int:
    from .runtime import load

    if a.input is not None:
        return _predict_file(a)
    if a.output is not None or a.ray is not None:
        raise ConfigError("--output and --ray score a file: give it with --input FILE")

    providers = a.providers.split(",") if "," in a.providers else a.providers
    clf = load(a.bundle, providers=providers)  # before reading stdin: a bad bundle fails at once
    texts = _read_texts(a.texts)
    if clf.task.pairs:  # a bundle on sentence pairs: each text is TEXT<TAB>TEXT_PAIR
        texts = _split_pairs(texts)
    records = clf.records(texts)  # the task's JSON per text, as the server answers
    if a.json:
        _print_json([{"text": t, **r} for t, r in zip(texts, records)])
    else:
        for t, r in zip(texts, records):
            print(f"{clf.task.line(r)}\t{t if isinstance(t, str) else chr(9).join(t)}")
    return 0


def _dig(obj: Any, *keys: str) -> Any:
    """obj[k1][k2]..., or None where a level is missing or not an object: manifests are untrusted."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _num(value: Any, spec: str, scale: float = 1.0) -> str:
    """`value * scale` formatted with `spec` when `value` is a number, else '?'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value * scale if scale != 1.0 else value, spec)
    return "?"


def inspect_summary(bundle: Path) -> dict[str, Any]:
    from .bundle import opened

    with opened(bundle) as (directory, manifest):
        sizes = {name: entry.get("bytes") for name, entry in manifest.files.items()}
    return {
        "bundle": str(bundle), "schema_version": manifest.schema_version, "task": manifest.task,
        "task_info": dict(manifest.task_info),
        "labels": list(manifest.labels), "max_length": manifest.max_length, "inputs": list(manifest.inputs),
        "recipe": _dig(manifest.recipe, "name"), "quantize": _dig(manifest.recipe, "quantize", "mode"),
        "fp32_fallback": ({"file": manifest.fallback_file, "tokens": list(manifest.fallback_tokens or ())}
                          if manifest.fallback_file else None),
        "files_bytes": sizes,
        "total_bytes": sum(v for v in sizes.values() if isinstance(v, int) and not isinstance(v, bool)),
        "source": _dig(manifest.source, "checkpoint", "name") or _dig(manifest.source, "checkpoint"), "parameters": _dig(manifest.source, "parameters"),
        "fusion": _dig(manifest.build, "stages", "fusion", "counts"), "metrics": dict(manifest.metrics),
        "fused_ops": _dig(manifest.build, "stages", "fusion", "operators") or {},
        "family": _dig(manifest.build, "stages", "fusion", "family"),
        "unfused": _dig(manifest.build, "stages", "fusion", "unfused") or "",
        "compression": _dig(manifest.source, "compression") or {},
        "created": _dig(manifest.build, "created"), "lpm_edge": _dig(manifest.build, "lpm_edge"),
        "this_cpu": _int8_here(_dig(manifest.recipe, "quantize", "mode")),
    }


def _int8_here(mode: Any) -> dict[str, Any] | None:
    """For an int8 bundle: this CPU's class and whether int8 pays on it (None for other bundles)."""
    from .runtime.caveats import INT8_MODES, int8_pays
    from .sysinfo import cpu_class

    if mode not in INT8_MODES:
        return None
    here = cpu_class()
    return {"class": here, "int8_pays": int8_pays(here)}


def cmd_inspect(a: argparse.Namespace) -> int:
    s = inspect_summary(a.bundle)
    if a.json:
        _print_json(s)
        return 0
    m = s["metrics"]
    print(f"bundle      {s['bundle']} (schema {s['schema_version']}, lpm-edge {s['lpm_edge']}, {s['created']})")
    if s["task"] != DEFAULT_TASK or s["task_info"]:  # e.g. multi-label: its per-label thresholds
        print(f"task        {s['task']}" + "".join(f", {k} {v}" for k, v in s["task_info"].items()))
    print(f"labels      {', '.join(s['labels']) or '-'}   max length {s['max_length']}   inputs {', '.join(s['inputs'])}")
    print(f"recipe      {s['recipe']} (quantize: {s['quantize']}), fused: {s['fusion']}")
    if s["fused_ops"]:
        family = f" ({s['family']} family)" if s["family"] else ""
        print("fusions     " + ", ".join(f"{op} {n}" for op, n in sorted(s["fused_ops"].items())) + family)
    if s["unfused"]:
        print(f"unfused     {s['unfused']}")
    if m.get("accepted") is False:
        print(f"status      REJECTED: {m.get('rejected_reason', '?')}; publish it anyway with `lpm-edge accept`")
    if s["this_cpu"]:
        cpu = s["this_cpu"]
        print(f"this CPU    {cpu['class']}: " + ("int8 pays here (int8 dot-product instructions)" if cpu["int8_pays"]
              else "int8 adds little to fusion here (no int8 dot-product instructions); a fused fp32 "
                   "bundle (recipe cpu-fp32, or what `lpm-edge search` picks) may be as fast"))
    if s["fp32_fallback"]:
        lo, hi = s["fp32_fallback"]["tokens"]
        print(f"fallback    batches of {lo}..{hi} tokens run {s['fp32_fallback']['file']} (fp32)")
    print("size        " + ", ".join(f"{k} {_num(v, '.1f', 1e-6)} MB" for k, v in s["files_bytes"].items())
          + f" (total {s['total_bytes']/1e6:.1f} MB)")
    params = _num(s["parameters"], ",")
    print(f"source      {s['source']}" + (f" ({params} parameters)" if params != "?" else ""))
    c = s["compression"] if isinstance(s["compression"], dict) else {}
    parts = [f"{k} {_num(_dig(c, k, 'before'), ',')}→{_num(_dig(c, k, 'after'), ',')}"
             for k in ("layers", "heads", "ffn", "vocab") if isinstance(c.get(k), dict)]
    if isinstance(c.get("distill"), dict):
        d = c["distill"]
        parts.append(f"distilled {d.get('steps')} steps (KL {_num(d.get('kl_before'), '.4f')}→"
                     f"{_num(d.get('kl_after'), '.4f')})")
    if parts:
        print("compressed  " + ", ".join(parts))
    if m:
        print(f"{m.get('metric') or 'accuracy':<12}{_num(m.get('bundle_accuracy'), '.4f')} "
              f"(full model {_num(m.get('reference_accuracy'), '.4f')}, "
              f"drop {_num(m.get('accuracy_drop_points'), '+.2f')} points) on {m.get('n')} {m.get('split')} texts "
              f"of {m.get('source') or m.get('data')}" + (f", on a {m['cpu_class']} CPU" if m.get("cpu_class") else ""))
        if isinstance(m.get("bundle_metrics"), dict) and set(m["bundle_metrics"]) - {m.get("metric")}:
            print("metrics     " + ", ".join(f"{k} {_num(v, '.4f')}" for k, v in m["bundle_metrics"].items()))
        print(f"parity      max |Δlogit| {_num(_dig(m, 'parity', 'max_abs_logit_diff'), '.4f')}, "
              f"agreement with the source model {_num(_dig(m, 'parity', 'argmax_agreement'), '.2f', 100)}%")
    return 0


def cmd_accept(a: argparse.Namespace) -> int:
    from .export.rejected import accept

    rejected: Path = a.rejected
    out = a.out or (rejected.with_name(rejected.name[: -len(".rejected")]) if rejected.name.endswith(".rejected")
                    else None)
    if out is None:
        raise ConfigError(f"{rejected} does not end in .rejected; pass --out to say where to publish it")
    from .bundle import read_manifest

    accept(rejected, out, force=a.force)
    print(f"{out}: accepted over its budget ({read_manifest(out).metrics.get('accepted_over_budget', '')})")
    return 0


def cmd_pack(a: argparse.Namespace) -> int:
    from .bundle import pack_zip

    print(pack_zip(a.bundle, a.out))
    return 0


def cmd_bench(a: argparse.Namespace) -> int:
    from .bench import BenchConfig, bench

    grid = {"batch_sizes": a.batch_sizes, "seq_lengths": a.seq_lengths, "plots": not a.no_plots,
            "subprocess": not a.no_subprocess, **({"repeats": a.repeats} if a.repeats else {})}
    config = BenchConfig.for_quick(**grid) if a.quick else BenchConfig(**grid)
    flags = []
    for key, value in _split_args(a).items():
        flag = "--" + key.replace("_", "-")
        flags += [flag] if value is True else [flag, str(value)] if value not in (None, False) else []
    command = " ".join(["lpm-edge", "bench", *map(str, a.bundles), "--reference", str(a.reference), "--split", a.split,
                        "--out", str(a.out), *(["--data", a.data] if a.data else []), *flags,
                        *(["--quick"] if a.quick else [])])
    report = bench(a.bundles, a.reference, a.out, data=a.data, split=a.split, config=config,
                   command=command, **_split_args(a))
    if a.json:
        _print_json(report.to_dict())
    else:
        print(report.markdown())
        print("written: " + ", ".join(str(a.out / f) for f in ["report.md", "report.json", *report.plots]))
    return 0


def cmd_search(a: argparse.Namespace) -> int:
    from .search import search

    result = search(a.checkpoint, a.out, data=a.data, max_accuracy_drop=a.max_accuracy_drop, target=a.target,
                    max_minutes=a.max_minutes, distill_steps=a.distill_steps, unlabelled=a.unlabelled,
                    **_split_args(a), **({"task": a.task} if a.task else {}),
                    grid={k: v for k, v in (("layers", a.layers), ("heads", a.heads), ("ffn", a.ffn)) if v})
    if a.json:
        _print_json(result.to_dict())
    else:
        print((a.out / "search.md").read_text())
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    import time

    from .bench import bench
    from .export import export
    from .runtime import load
    from .train import TrainConfig, train

    start = time.perf_counter()
    out: Path = a.out
    log.info("1/4 train: built-in MiniLM-L6 on rotten-tomatoes, %s epochs", a.epochs)
    ckpt = train(TrainConfig(out=out / "checkpoint", epochs=a.epochs, limit_train=a.limit_train, force=True))
    log.info("2/4 export: recipe %s", a.recipe)
    bdir = export(ckpt, out / f"bundle-{Path(a.recipe).stem}", a.recipe, force=True)
    log.info("3/4 runtime: predictions from the bundle")
    clf = load(bdir)
    for text in ("A warm, funny and beautifully acted film.", "Tedious, overlong and badly written."):
        p = clf.predict(text)
        print(f"{p.label:>7} {p.score:.3f}  {text}")
    log.info("4/4 bench: bundle against the full model on the test split")
    report = bench([bdir], ckpt, out / "report", quick=a.quick)
    print(report.markdown())
    print(f"demo finished in {(time.perf_counter() - start) / 60:.1f} min; report: {out / 'report' / 'report.md'}")
    return 0


def cmd_serve(a: argparse.Namespace) -> int:
    from .serve import Batching, Limits, ServeConfig, serve

    if a.max_wait_ms < 0:
        raise ConfigError(f"--max-wait-ms must be 0 or more, got {a.max_wait_ms}")
    serve(ServeConfig(
        bundle=str(a.bundle), host=a.host, port=a.port, workers=a.workers, threads=a.threads, providers=a.providers,
        batching=Batching(enabled=not a.no_batching, max_wait_ms=a.max_wait_ms, max_batch=a.max_batch),
        limits=Limits(max_body_bytes=a.max_body_bytes, max_texts=a.max_texts, max_chars=a.max_chars),
    ))
    return 0


_OS_FIXES = {
    errno.ENOSPC: "free some disk space or write to another disk",
    errno.EDQUOT: "free some space within your quota or write elsewhere",
    errno.EACCES: "choose a path you may write to, or fix its permissions",
    errno.EPERM: "choose a path you may write to, or fix its permissions",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a directory; check the path",
}


def _message(exc: BaseException) -> str:
    """What failed and the fix, for the one line the CLI prints."""
    if isinstance(exc, LpmEdgeError):
        return str(exc)
    if isinstance(exc, FileExistsError) and exc.errno is None:  # raised by atomic_directory
        return f"{exc} already exists; pass --force to replace it or choose another --out"
    if isinstance(exc, OSError) and exc.errno is not None:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}; {_OS_FIXES.get(exc.errno, 'check the path and try again')}"
    return f"{type(exc).__name__}: {exc}"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is when a record is emitted (callers and tests swap it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(debug: bool, quiet: bool) -> None:
    """Our INFO lines on stderr; other libraries' only from WARNING (ONNX Runtime's quantizer
    logs hundreds of INFO lines on the root logger)."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
    if not debug:
        handler.addFilter(lambda r: r.name.startswith("lpm_edge") or r.levelno >= logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


COMMANDS = {"train": cmd_train, "pretrain": cmd_pretrain, "export": cmd_export, "predict": cmd_predict, "inspect": cmd_inspect,
            "pack": cmd_pack, "accept": cmd_accept, "bench": cmd_bench, "search": cmd_search, "demo": cmd_demo,
            "serve": cmd_serve}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.debug, args.quiet)
    try:
        return COMMANDS[args.command](args)
    except (LpmEdgeError, OSError, TypeError) as exc:
        if args.debug:
            raise
        message = " ".join(_message(exc).split())  # one line, whatever the exception held
        print(f"lpm-edge {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lpm-edge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
