"""The models under test, each reduced to a few callables the timers drive.

A `Candidate` has an end-to-end path (texts in, scores out: tokenization included), a model-only
path (`encode` once outside the clock, then time `run`), a way to feed it fixed token ids (for
the sequence-length sweep), and a `ChildSpec`: the code a fresh process runs to import, load and
predict with it (cold start, peak memory). Builders here cover the full PyTorch model and
lpm-edge bundles; `peers.py` adds the other runtimes people compare against.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

if TYPE_CHECKING:
    from ..reference import TorchClassifier
    from ..tasks.base import Task

log = logging.getLogger("lpm_edge.bench")

# Files a checkpoint needs to be served (weights, config, tokenizer); training leftovers excluded.
CHECKPOINT_WEIGHTS = ("*.safetensors", "*.bin")
CHECKPOINT_SERVING = CHECKPOINT_WEIGHTS + ("config.json", "tokenizer*.json", "vocab.txt", "special_tokens_map.json")


@dataclass(frozen=True)
class ChildSpec:
    """Python source a fresh process runs: `imports`, then `load`, then `predict` on a list `texts`.

    `predict` is the body of a function of `texts`; the harness times each stage separately.
    """

    imports: str
    load: str
    predict: str


@dataclass
class Candidate:
    """One model under test. `predict` returns scores (n, labels) in input order; `outputs`, when set,
    the raw outputs the task's metrics take (logits; a regression model's values), else `predict`'s."""

    name: str
    kind: str  # "pytorch", "pytorch-int8", "optimum", "lpm-edge", or a caller's own
    path: str
    predict: Callable[[Sequence[str]], np.ndarray]
    encode: Callable[[Sequence[str]], list[Any]]  # texts -> native inputs, one per model call
    from_ids: Callable[[dict[str, np.ndarray]], Any]  # {input_ids, attention_mask, token_type_ids}: (B, T) int64
    run: Callable[[Any], object]  # one native input -> logits; the model-only path
    size: dict[str, int]  # model_bytes (weights), total_bytes (everything needed to serve)
    child: ChildSpec | None = None
    info: dict[str, Any] = field(default_factory=dict)
    # Its own `tokenizers.Tokenizer`: fixed-length inputs are cut with it (a compressed bundle may
    # ship a trimmed vocabulary, so another model's ids can be out of its range). None = the reference's.
    tokenizer: Any = None
    # The task its outputs are read by when it has its own (a bundle's manifest: multi-label thresholds
    # fitted to its scores at export). None = the reference's.
    task: Any = None
    outputs: Callable[[Sequence[str]], np.ndarray] | None = None


def dir_size(path: Path, patterns: Sequence[str] | None = None) -> int:
    """Bytes of the files under `path` matching `patterns` (all files when None); a file's own size."""
    if path.is_file():
        return path.stat().st_size
    if patterns is None:
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return sum(p.stat().st_size for pat in patterns for p in path.glob(pat) if p.is_file())


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (n, labels) logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def torch_feeds(ref: "TorchClassifier", texts: Sequence[str]) -> list[Any]:
    """The reference's tokenizer output for `texts`, sorted by length and split by its batch size."""
    from ..pairs import chars

    order = np.argsort([chars(t) for t in texts], kind="stable")
    return [ref.encode([texts[i] for i in order[s : s + ref.batch_size]]) for s in range(0, len(order), ref.batch_size)]


def torch_candidate(
    ref: "TorchClassifier", name: str, kind: str, path: str, size: dict[str, int], child: ChildSpec | None
) -> Candidate:
    """Wrap a TorchClassifier: tokenizer + model under torch.inference_mode. A reference that carries
    its task (`ref.task`) is timed on what the task serves (entities, vectors), else on class scores."""
    import torch

    task = getattr(ref, "task", None)

    def run(feed: Any) -> object:
        with torch.inference_mode():
            return ref.model(**feed).logits  # type: ignore[operator]

    def from_ids(batch: dict[str, np.ndarray]) -> dict[str, Any]:
        names = getattr(ref.tokenizer, "model_input_names", list(batch))
        return {k: torch.from_numpy(v) for k, v in batch.items() if k in names}

    return Candidate(
        name=name, kind=kind, path=path,
        predict=(lambda texts: task.served(ref, list(texts))) if task is not None
        else (lambda texts: softmax(ref.logits(list(texts)))),
        outputs=lambda texts: ref.logits(list(texts)),
        encode=lambda texts: torch_feeds(ref, list(texts)), from_ids=from_ids, run=run, size=size, child=child,
        info={"torch_threads": torch.get_num_threads(), "attention": _attention(ref.model),
              "max_length": ref.max_length, "batch_size": ref.batch_size},
        tokenizer=getattr(ref.tokenizer, "backend_tokenizer", None),
    )


def _attention(model: object) -> str | None:
    config = getattr(model, "config", None)
    return getattr(config, "_attn_implementation", None)


def torch_child(checkpoint: Path, max_length: int, threads: int, quantize: bool = False,
                model_class: str = "AutoModelForSequenceClassification") -> ChildSpec:
    """How a PyTorch user loads and runs the checkpoint (optionally with dynamic int8). `model_class`:
    the transformers auto class of the task's head; a model without logits (an encoder whose vectors
    are pooled) returns its last hidden state."""
    load = (
        f"torch.set_num_threads({threads})\n"
        f"tok = AutoTokenizer.from_pretrained({str(checkpoint)!r})\n"
        f"model = {model_class}.from_pretrained({str(checkpoint)!r}).eval()\n"
    )
    if quantize:
        load += "model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)\n"
    return ChildSpec(
        imports=f"import torch\nfrom transformers import {model_class}, AutoTokenizer",
        load=load,
        predict=(
            "with torch.inference_mode():\n"
            "    pairs = [tuple(t) for t in texts if not isinstance(t, str)]  # (text, text_pair), as JSON lists\n"
            "    args = ([a for a, _ in pairs], [b for _, b in pairs]) if pairs else (texts,)\n"
            f"    enc = tok(*args, truncation=True, max_length={max_length}, padding=True, return_tensors='pt')\n"
            "    out = model(**enc)\n"
            "    return (out.logits.softmax(-1) if hasattr(out, 'logits') else out.last_hidden_state).numpy()"
        ),
    )


def reference_candidate(checkpoint: Path, threads: int, max_length: int,
                        task: "Task | None" = None) -> tuple[Candidate, "TorchClassifier"]:
    """The full model served the usual way: fast tokenizer, default attention, eval, inference_mode.
    With `task`, the model has that task's head and outputs (token logits, pooled vectors)."""
    from ..reference import TorchClassifier, task_reference

    if task is None:
        ref = TorchClassifier(checkpoint, threads=threads, max_length=max_length)
    else:
        ref = task_reference(checkpoint, task, threads=threads, max_length=max_length)
    size = {"model_bytes": dir_size(checkpoint, CHECKPOINT_WEIGHTS), "total_bytes": dir_size(checkpoint, CHECKPOINT_SERVING)}
    child = torch_child(checkpoint, max_length, threads,
                        model_class=task.model_class if task is not None else "AutoModelForSequenceClassification")
    cand = torch_candidate(ref, "pytorch fp32", "pytorch", str(checkpoint), size, child)
    return cand, ref


def bundle_candidate(bundle: str | os.PathLike[str], threads: int, name: str | None = None) -> Candidate:
    """An lpm-edge bundle on the CPU provider, ONNX Runtime spinning off (it shares the cores)."""
    from tokenizers import Tokenizer

    from .. import bundle as _bundle
    from ..runtime import load

    clf = load(bundle, providers="cpu", spin=False, threads=threads)
    with _bundle.opened(bundle) as (directory, manifest):
        tokenizer = Tokenizer.from_str(_bundle.read_verified(directory, manifest, manifest.tokenizer_file).decode())
    path = Path(bundle)
    inputs = list(clf.manifest.inputs)
    recipe = clf.manifest.recipe.get("name") or path.name
    return Candidate(
        name=name or f"lpm-edge {recipe}", kind="lpm-edge", path=str(path),
        predict=lambda texts: clf.task.served(clf, list(texts)), outputs=clf.logits,
        encode=lambda texts: [feed for _, feed in clf.encode(list(texts))],
        from_ids=lambda batch: {k: batch[k] for k in inputs}, run=clf.run,
        size={"model_bytes": sum((path / f).stat().st_size for f in _bundle.graphs(clf.manifest))
              if path.is_dir() else path.stat().st_size,
              "total_bytes": dir_size(path)},
        child=ChildSpec(imports="import lpm_edge", load=f"clf = lpm_edge.load({str(path)!r}, providers='cpu')",
                        predict=f"return clf.{clf.task.served_method()}(texts)"),
        info={"providers": list(clf.providers), "ort_threads": threads, "ort_spinning": False,
              "recipe": recipe, "quantize": (clf.manifest.recipe.get("quantize") or {}).get("mode"),
              "max_length": clf.max_length, "batch_size": clf.batch_size,
              "max_batch_tokens": clf.max_batch_tokens},
        tokenizer=tokenizer, task=clf.task,
    )


def unique_names(candidates: Sequence[Candidate]) -> None:
    """Make candidate names unique in place by appending the path's last part (then a counter)."""
    seen: dict[str, int] = {}
    for c in candidates:
        if c.name in seen:
            c.name = f"{c.name} ({Path(c.path).name})"
        while c.name in seen:
            seen[c.name] += 1
            c.name = f"{c.name} #{seen[c.name]}"
        seen[c.name] = 1
