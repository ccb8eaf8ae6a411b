"""Sentence embeddings: one text in, one vector out (the encoder's token states pooled as the model
was trained: mean, CLS or max over tokens, optionally L2-normalised).

The pooling comes from the model directory: sentence-transformers' `modules.json` and its pooling
module's `config.json` when present (a `Normalize` module means L2 normalisation), else mean
pooling with normalisation. Pooling and normalisation run inside the ONNX graph, so the graph's
output `embeddings` is (n, dim) and the parity check covers the pooling (pooling the token states
in numpy was measured no slower: see the README).

There are no labels: the reference's vectors are the gold. The budget metric is the mean cosine
between the bundle's and the full model's vectors of each text (`cosine`, a loss of 1.00 point =
0.01 of mean cosine); `recall_at_10` says how many of each text's 10 nearest neighbours in the
evaluation corpus (itself excluded) the bundle finds among the full model's 10, and `decisions`
(agreement) is each text's nearest neighbour.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .base import Task

log = logging.getLogger("lpm_edge.tasks")

POOLINGS = ("cls", "max", "mean", "mean_sqrt_len")  # sentence-transformers' concatenation order
# Pooling config keys of sentence-transformers' Pooling module -> our name; any other mode set true is refused.
_ST_MODES = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
             "pooling_mode_mean_tokens": "mean", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len"}
NEIGHBOURS = 10  # recall@10
_CHUNK = 1024  # query rows per similarity block (bounds memory to CHUNK x n floats)


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def top_k(queries: np.ndarray, corpus: np.ndarray, k: int, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n, k) and scores (n, k) of each query's k highest dot products in `corpus`, best first.
    exclude_self: queries are the corpus itself; row i never returns i."""
    n, m = len(queries), len(corpus)
    k = max(0, min(k, m - (1 if exclude_self else 0)))
    idx = np.zeros((n, k), dtype=np.int64)
    val = np.zeros((n, k), dtype=np.float32)
    if not k:
        return idx, val
    for start in range(0, n, _CHUNK):
        sim = queries[start : start + _CHUNK] @ corpus.T  # (c, m)
        if exclude_self:
            rows = np.arange(len(sim))
            sim[rows, rows + start] = -np.inf
        part = np.argpartition(-sim, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (len(sim), 1))
        scores = np.take_along_axis(sim, part, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")
        idx[start : start + len(sim)] = np.take_along_axis(part, order, axis=1)
        val[start : start + len(sim)] = np.take_along_axis(scores, order, axis=1)
    return idx, val


def neighbour_recall(gold: np.ndarray, outputs: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """Per text: the share of its k nearest neighbours under `gold` (itself excluded) that `outputs` also
    puts among its k nearest (cosine, within the same texts)."""
    g, o = l2_normalize(gold), l2_normalize(outputs)
    want, _ = top_k(g, g, k, exclude_self=True)
    got, _ = top_k(o, o, k, exclude_self=True)
    if not want.shape[1]:
        return np.ones(len(g))
    hits = (want[:, :, None] == got[:, None, :]).any(axis=2).sum(axis=1)
    return hits / want.shape[1]


def read_pooling(model_dir: str | Path) -> dict[str, Any]:
    """{"pooling": [modes], "normalize": bool, "pooling_source": where it came from} for a model directory."""
    model_dir = Path(model_dir)
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return {"pooling": ["mean"], "normalize": True,
                "pooling_source": "default (no sentence-transformers modules.json): mean, L2-normalised"}
    try:
        modules = json.loads(modules_file.read_text())
        kinds = [(str(m["type"]).rsplit(".", 1)[-1], str(m.get("path", ""))) for m in modules]
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{modules_file}: not a sentence-transformers modules list ({exc}); fix or remove it") from None
    pooling, normalize = ["mean"], False
    for kind, path in kinds:
        if kind == "Transformer":
            continue
        if kind == "Pooling":
            pooling = _pooling_modes(model_dir / path / "config.json")
        elif kind == "Normalize":
            normalize = True
        else:
            raise ConfigError(
                f"{modules_file}: module {kind!r} ({path or 'no path'}) is not supported; lpm-edge exports "
                "Transformer + Pooling (+ Normalize) sentence-transformers models"
            )
    return {"pooling": pooling, "normalize": normalize, "pooling_source": "modules.json"}


def _pooling_modes(path: Path) -> list[str]:
    if not path.is_file():
        raise ConfigError(f"{path}: the pooling module's config is missing; the model directory is incomplete")
    try:
        config = json.loads(path.read_text())
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    other = [k for k, v in config.items() if k.startswith("pooling_mode_") and v and k not in _ST_MODES]
    if other:
        raise ConfigError(f"{path}: pooling {', '.join(other)} is not supported; lpm-edge pools cls, max, "
                          "mean or mean_sqrt_len")
    if config.get("include_prompt") is False:
        raise ConfigError(f"{path}: include_prompt = false is not supported")
    modes = [name for key, name in _ST_MODES.items() if config.get(key)]
    if not modes:
        raise ConfigError(f"{path}: no pooling mode is set")
    return sorted(modes, key=POOLINGS.index)


class Embedding(Task):
    kind = "embedding"
    offers = ("embed", "index", "search")
    metric = "cosine"
    model_class = "AutoModel"
    output_name = "embeddings"
    default_data = "rotten-tomatoes"
    gold_dtype: ClassVar[str] = "float32"  # the gold is the full model's vectors (placeholders 0 until then)
    not_trained = ("--task embedding: lpm-edge does not fine-tune embedding models; export the model directory as "
                   "it was trained: lpm-edge export MODEL_DIR --task embedding --out BUNDLE")

    def __repr__(self) -> str:
        return f"Embedding(pooling={self.pooling}, normalize={self.normalize}, dim={self.dim})"

    @property
    def pooling(self) -> list[str]:
        return list(self.info.get("pooling", ["mean"]))

    @property
    def normalize(self) -> bool:
        return bool(self.info.get("normalize", True))

    @property
    def dim(self) -> int:
        return int(self.info.get("dim", 0))

    # -- data: texts only; every row's gold is a placeholder until the reference's vectors replace it
    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], label_column: str) -> tuple[str, ...]:
        return ()

    @classmethod
    def gold(cls, rows: Sequence[tuple[Any, Any, str]], labels: Sequence[str], training: str) -> tuple[Any, ...]:
        return (0,) * len(rows)

    @classmethod
    def dataset(cls, source: str | Path, *, text_column: str = "text", validation: Any = None, test: Any = None,
                seed: int, strict: bool) -> Any:
        """The texts of `source` in train/validation/test splits, with no labels: the built-in
        rotten-tomatoes texts, a text file (one text per line, .txt), or a data file's text column."""
        from dataclasses import replace

        from ..data import BUILTIN, Dataset, _cut, _disjoint, load_dataset
        from ..data_files import text_rows

        if str(source) in BUILTIN:
            ds = load_dataset(source, seed=seed, strict=strict, validation=None, test=None)
            splits = {s: replace(ds.split(s), labels=(0,) * len(ds.split(s))) for s in ("train", "validation", "test")}
            return Dataset(ds.name, (), **splits, dropped=ds.dropped)

        def rows_of(path: Path) -> list[tuple[str, str, str]]:
            return [(t, "", w) for t, w in text_rows(path, text_column)]  # texts only

        path = Path(source)
        if not path.exists():
            raise DataError(f"dataset {str(source)!r} is neither a built-in name ({', '.join(BUILTIN)}) nor a file")
        given = {"validation": rows_of(Path(validation)) if validation else None,
                 "test": rows_of(Path(test)) if test else None}
        parts, sources = _cut(rows_of(path), given, path, seed)
        for s in ("validation", "test"):
            if given[s] is not None:
                sources[s] = str(validation if s == "validation" else test)
        parts, dropped = _disjoint(parts, sources, strict)
        from ..data import Split

        return Dataset(path.stem, (), *(Split(tuple(t for t, _, _ in parts[s]), (0,) * len(parts[s]), s, sources[s])
                                        for s in ("train", "validation", "test")), dropped=dropped)

    # -- record --------------------------------------------------------------------------------
    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str) -> "Embedding":
        if labels:
            raise ConfigError(f"{where}: an embedding task has no labels, got {list(labels)}")
        pooling = info.get("pooling", ["mean"])
        if (not isinstance(pooling, list) or not pooling or any(p not in POOLINGS for p in pooling)
                or len(set(pooling)) != len(pooling)):
            raise ConfigError(f"{where}: pooling must be a list of {', '.join(POOLINGS)}, got {pooling!r}")
        if not isinstance(info.get("normalize", True), bool):
            raise ConfigError(f"{where}: normalize must be true or false, got {info.get('normalize')!r}")
        dim = info.get("dim", 0)
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
            raise ConfigError(f"{where}: dim must be a positive integer, got {dim!r}")
        return cls((), info)

    def for_checkpoint(self, model_dir: str | Path, config: Any) -> "Embedding":
        """This task with the model directory's pooling and the vector width its config gives."""
        info = {**read_pooling(model_dir), **{k: v for k, v in self.info.items() if k in ("pooling", "normalize")}}
        info["dim"] = int(config.hidden_size) * len(info["pooling"])
        return Embedding((), info)

    # -- runtime half ----------------------------------------------------------------------------
    def output_shape(self, n: int) -> tuple[int, ...]:
        return (n, self.dim)

    def predictions(self, outputs: np.ndarray) -> list[Any]:
        return list(self.scores(outputs))

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        return l2_normalize(outputs)

    def records(self, outputs: Any, texts: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """{"embedding": the L2-normalised vector as a list of floats} per example."""
        return [{"embedding": v.tolist()} for v in self.scores(np.asarray(outputs, dtype=np.float32))]

    def columns(self) -> tuple[tuple[str, str], ...]:
        return (("pred_embedding", "vector"),)

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        return (record["embedding"],)

    def line(self, record: Mapping[str, Any]) -> str:
        return " ".join(f"{v:.6f}" for v in record["embedding"])
    def served(self, runner: Any, texts: Sequence[Any]) -> Any:
        """What `embed` returns: the normalised vectors (n, dim)."""
        return self.scores(runner.logits(texts))

    # -- evaluation ------------------------------------------------------------------------------
    def gold_array(self, gold: Sequence[Any]) -> np.ndarray:
        return np.asarray(gold, dtype=np.float32).reshape(len(gold), -1)

    def example_values(self, gold: Sequence[Any], outputs: np.ndarray) -> np.ndarray:
        g = l2_normalize(self.gold_array(gold))
        o = l2_normalize(outputs)
        return (g * o).sum(axis=1).astype(np.float64)

    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        g = self.gold_array(gold)
        if not len(g):
            return {"cosine": float("nan"), "recall_at_10": float("nan")}
        return {"cosine": float(self.example_values(g, outputs).mean()),
                "recall_at_10": float(neighbour_recall(g, np.asarray(outputs)).mean())}

    def decisions(self, outputs: np.ndarray) -> np.ndarray:
        """Each text's nearest neighbour among the others (cosine)."""
        idx, _ = top_k(l2_normalize(outputs), l2_normalize(outputs), 1, exclude_self=True)
        return idx[:, 0] if idx.shape[1] else np.zeros(len(outputs), dtype=np.int64)

    def reference_split(self, split: Any, outputs: np.ndarray) -> Any:
        """The split whose gold is the full model's vectors (the fidelity the budget holds)."""
        from dataclasses import replace

        return replace(split, labels=tuple(np.asarray(outputs, dtype=np.float32)))

    # -- build half --------------------------------------------------------------------------------
    def check_model(self, config: Any, where: str) -> None:
        if not self.dim:
            raise ConfigError(f"{where}: the embedding task's width is unknown; read it with for_checkpoint")

    def prepare_model(self, model: Any) -> Any:
        """The encoder wrapped so that its forward returns the pooled vectors as `.logits` (B, dim):
        what the pipeline, distillation, pruning and the ONNX graph take."""
        if isinstance(model, _pooled_class()):
            return model
        return _pooled_class()(model, self.pooling, self.normalize)

    def graph_output(self, model_output: Any, inputs: Mapping[str, Any]) -> Any:
        return model_output.logits


    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """Mean (1 - cosine) to the teacher's vectors for normalised embeddings; MSE otherwise
        (the raw vectors' scale matters then). No labels, so alpha and temperature do not apply."""
        import torch.nn.functional as F

        if self.normalize:
            return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()
        return F.mse_loss(student, teacher)

    def divergence(self, student: Any, teacher: Any) -> Any:
        import torch.nn.functional as F

        return (1 - F.cosine_similarity(student, teacher, dim=-1)).sum()

    def importance_loss(self, outputs: Any, gold: Any) -> Any:
        """For gradient head/neuron importance without labels: in-batch contrastive loss of the
        vectors against themselves held fixed (each text must stay nearest to its own vector; the
        multiple-negatives ranking loss sentence encoders are trained with)."""
        import torch
        import torch.nn.functional as F

        v = F.normalize(outputs, dim=-1)
        sim = v @ v.detach().T * 20.0  # (B, B), scale 20 as sentence-transformers' default
        return F.cross_entropy(sim, torch.arange(len(v), device=v.device))


_POOLED: Any = None


def _pooled_class() -> Any:
    """The torch module class (built on first use: the runtime never imports torch)."""
    global _POOLED
    if _POOLED is not None:
        return _POOLED
    import inspect
    from types import SimpleNamespace

    import torch
    import torch.nn.functional as F

    class Pooled(torch.nn.Module):
        """An encoder whose forward returns its pooled (and normalised) token states as `.logits`.
        Attributes it lacks (config, base_model, save_pretrained, ...) are the encoder's."""

        def __init__(self, inner: Any, pooling: Sequence[str], normalize: bool) -> None:
            super().__init__()
            self.inner = inner
            self.pooling = tuple(pooling)
            self.normalize = normalize
            self.takes_types = "token_type_ids" in inspect.signature(inner.forward).parameters

        def __getattr__(self, name: str) -> Any:
            try:
                return super().__getattr__(name)
            except AttributeError:
                inner = self.__dict__.get("_modules", {}).get("inner")
                if inner is None or name.startswith("__"):  # half-built (copy, unpickle): no delegation
                    raise
                return getattr(inner, name)

        def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None,
                    output_hidden_states: bool = False) -> Any:
            """`.logits` the pooled vectors; `.hidden_states` the encoder's layer outputs when asked
            (distillation's hidden-state loss)."""
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None and self.takes_types:
                feeds["token_type_ids"] = token_type_ids
            out = self.inner(**feeds, output_hidden_states=output_hidden_states)
            vectors = pool(out.last_hidden_state, attention_mask, self.pooling, self.normalize)  # (B, dim)
            return SimpleNamespace(logits=vectors, hidden_states=out.hidden_states if output_hidden_states else None)

    def pool(hidden: Any, mask: Any, modes: Sequence[str], normalize: bool) -> Any:
        m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        parts = []
        for mode in modes:
            if mode == "cls":
                parts.append(hidden[:, 0])
            elif mode == "max":
                parts.append(hidden.masked_fill(m == 0, -1e9).max(dim=1).values)
            else:
                total, count = (hidden * m).sum(dim=1), m.sum(dim=1).clamp(min=1e-9)  # (B, H), (B, 1)
                parts.append(total / count if mode == "mean" else total / count.sqrt())
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return F.normalize(out, p=2, dim=1) if normalize else out

    _POOLED = Pooled
    return Pooled
