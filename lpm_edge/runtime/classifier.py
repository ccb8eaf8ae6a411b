"""The object a client application embeds: bundle in, predictions out. No torch here.

The bundle's task (lpm_edge/tasks/) turns the graph's outputs into what the user gets and says which
methods this bundle offers (`predict` for classifiers, ...); asking for another is a clear error.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence, overload

import numpy as np

from .. import bundle as _bundle
from .. import tasks as _tasks
from ..errors import BundleError, ConfigError, InferenceError, MissingDependencyError, brief
from ..tasks.single_label import Prediction
from . import providers as _providers
from .caveats import warn_about
from .embedder import Embeds
from .tokenize import PROBE, check_texts, encode_batch, largest_id, length_batches, load_tokenizer, pad_batch

log = logging.getLogger("lpm_edge.runtime")

# Tokens (texts × padded length) per model call on the CPU. Activation memory grows with the
# tokens in a batch; past a few hundred, CPU throughput does not (measured on the MiniLM int8
# bundle: 256 tokens a call gave the same texts/s as batches of 32 texts, with 52 MB less peak
# memory). On CUDA larger batches do pay, so "auto" leaves them at `batch_size` texts there.
CPU_BATCH_TOKENS = 256
BATCH_SIZE = 32  # texts per model call by default
# The longest input run at load to check the graph takes the manifest's max_length; BERT-family
# encoders have 512 positions, and longer probes would make loading slow.
PROBE_LENGTH = 512


class Classifier(Embeds):
    """A loaded bundle. Thread-safe: share one instance between the threads of a process."""

    def __init__(
        self,
        bundle: str | os.PathLike[str],
        providers: str | Sequence[str] = "auto",
        threads: int | None = None,
        batch_size: int = BATCH_SIZE,
        spin: bool = True,
        max_batch_tokens: int | str | None = "auto",
        exact_int8: bool = False,
    ) -> None:
        try:
            import onnxruntime as ort  # the runtime's one heavy import, kept out of `import lpm_edge`
        except ImportError:
            raise MissingDependencyError(
                "onnxruntime (the runtime's inference engine)",
                'pip install "lpm-edge[cpu]"  (or "lpm-edge[gpu]" for CUDA)',
            ) from None

        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if max_batch_tokens not in ("auto", None) and (
            not isinstance(max_batch_tokens, int) or isinstance(max_batch_tokens, bool) or max_batch_tokens < 1
        ):
            raise ConfigError(
                f"max_batch_tokens must be a positive integer, 'auto' or None (no limit), got {max_batch_tokens!r}"
            )
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigError(f"threads must be a positive integer or None, got {threads!r}")
        self.path = Path(bundle)
        private = tempfile.TemporaryDirectory(prefix="lpm-edge-model-")
        with private, _bundle.opened(bundle, check_files=False) as (directory, manifest):
            # The graph is copied (and hashed while copying) into a private directory holding
            # nothing else, and ONNX Runtime loads that copy: the bytes checked are the bytes used,
            # they are never all held in Python (their size again at load), and a graph that refers
            # to external data finds none. Each file is hashed once, as it is read.
            graphs = _bundle.graphs(manifest)
            self._sessions = {}
            for name in graphs:  # an fp32 fallback graph, when the bundle has one, loads the same way
                path = _bundle.copy_verified(directory, manifest, name, Path(private.name))
                self._sessions[name] = self._open_session(ort, path, name, providers, threads, spin, exact_int8)
            tok_bytes = _bundle.read_verified(directory, manifest, manifest.tokenizer_file)
            _bundle.verify(directory, manifest, skip={*graphs, manifest.tokenizer_file})
        self._session = self._sessions[manifest.model_file]
        self.manifest = manifest
        self.task = _tasks.from_manifest(manifest)
        self.labels: tuple[str, ...] = manifest.labels
        self.max_length = manifest.max_length
        self.batch_size = batch_size
        self._tokenizer = load_tokenizer(tok_bytes, manifest.max_length, f"{self.path}/{manifest.tokenizer_file}",
                                         pairs=self.task.pairs)
        # Every id the tokenizer can emit, and the padding id, must index the graph's embedding table.
        self._largest_id = max(largest_id(self._tokenizer), manifest.pad_id)

        self.providers: tuple[str, ...] = tuple(self._session.get_providers())
        if max_batch_tokens == "auto":
            max_batch_tokens = None if self.providers[0] != "CPUExecutionProvider" else CPU_BATCH_TOKENS
        self.max_batch_tokens: int | None = max_batch_tokens  # type: ignore[assignment]
        names = [i.name for i in self._session.get_inputs()]
        if sorted(names) != sorted(manifest.inputs):
            raise BundleError(
                f"{self.path}: model inputs {names} differ from the manifest's {list(manifest.inputs)}"
            )
        self._inputs = names
        self._output = manifest.outputs[0]
        # The probes below expect failures from a bad bundle: ONNX Runtime should not also log them.
        self._quiet = ort.RunOptions()
        self._quiet.log_severity_level = 4  # fatal only
        self._check_model()
        warn_about(self.path, manifest)

    def _open_session(
        self, ort: Any, model_path: Path, name: str, providers: str | Sequence[str], threads: int | None, spin: bool,
        exact_int8: bool = False,
    ) -> Any:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or 0  # 0 = one per physical core
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Spinning threads buy a little latency but burn idle cores; off when sharing them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        if exact_int8:  # u8u8 instead of u8s8 int8 products on x86 CPUs without VNNI: no 16-bit saturation
            options.add_session_config_entry("session.x64quantprecision", "1")
        asked, auto = _providers.requested(providers, ort.get_available_providers())

        def open_on(names: list[str]) -> Any:
            try:
                return ort.InferenceSession(str(model_path), sess_options=options, providers=names,
                                            disabled_optimizers=_providers.disabled_optimizers(names))
            except Exception as exc:  # ORT raises its own pybind types (InvalidProtobuf, Fail, ...)
                raise BundleError(
                    f"{self.path}/{name}: ONNX Runtime cannot load it ({str(exc).strip()[:300]}); "
                    "a bundle's graph must hold all its weights (no external data)"
                ) from None

        session = open_on(asked)
        got = list(session.get_providers())
        _providers.check_session(asked, got, auto)
        if _providers.disabled_optimizers(got) != _providers.disabled_optimizers(asked):
            session = open_on(got)  # "auto" fell back to the CPU alone: load it as a CPU session is loaded
        return session

    def _check_model(self) -> None:
        for name, session in self._sessions.items():
            self._check_graph(name, session)

    def _check_graph(self, name: str, session: Any) -> None:
        """Refuse, at load, a graph that cannot serve this manifest: wrong types, names or width."""
        where = f"{self.path}/{name}"
        if [i.name for i in session.get_inputs()] != self._inputs or tuple(session.get_providers()) != self.providers:
            raise BundleError(f"{where}: its inputs or providers differ from {self.manifest.model_file}'s; "
                              "re-export the bundle")
        odd = [f"{i.name}: {i.type}" for i in session.get_inputs() if i.type != "tensor(int64)"]
        if odd:
            raise BundleError(
                f"{where}: inputs must be int64 token tensors, got {', '.join(odd)}; re-export the bundle"
            )
        outputs = [o.name for o in session.get_outputs()]
        if self._output not in outputs:
            raise BundleError(
                f"{where}: the manifest's output {self._output!r} is not among the model's outputs {outputs}; "
                "re-export the bundle"
            )
        # One tiny batch through tokenizer and graph: a bundle that cannot predict fails here, at
        # load, as a BundleError, rather than inside some later request.
        try:
            (_, feed), = self.encode([(PROBE, PROBE)] if self.task.pairs else [PROBE])
            shape = session.run([self._output], feed, self._quiet)[0].shape
        except Exception as exc:  # tokenizers and ORT raise their own exception types
            raise BundleError(
                f"{where}: fails on a probe input ({brief(exc)}); re-export the bundle"
            ) from None
        expected = self.task.output_shape(1)
        if not self.task.output_fits(tuple(shape), 1):
            raise BundleError(
                f"{where}: gives output of shape {list(shape)} for one text; expected {list(expected)} "
                f"for the manifest's {self.task.kind} task with {len(self.labels)} labels; re-export the bundle"
            )
        # The probe text is short and uses a few ids: a tokenizer with ids past the graph's vocabulary,
        # or a max_length past its positions, would pass it and fail later, on the first text holding
        # such an id or that many tokens. Run the largest id the tokenizer can emit, then the longest
        # input the manifest allows (up to PROBE_LENGTH tokens, to keep loading cheap).
        if "input_ids" in feed:
            top = {**feed, "input_ids": np.full_like(feed["input_ids"], self._largest_id)}
            self._probe(session, top, where, f"the tokenizer can emit token id {self._largest_id} but the graph "
                        "fails on it ({error}); its vocabulary is smaller than the tokenizer's. Ship the tokenizer "
                        "the model was exported with (re-export the bundle)")
        width = min(self.max_length, PROBE_LENGTH)
        if width > next(iter(feed.values())).shape[1]:
            long = {k: np.resize(v, (1, width)) for k, v in feed.items()}  # the probe's tokens, repeated
            if "attention_mask" in long:
                long["attention_mask"] = np.ones_like(long["attention_mask"])
            self._probe(session, long, where, f"fails on an input of {width} tokens ({{error}}), which the "
                        f"manifest's max_length {self.max_length} allows; the graph takes fewer positions. "
                        "Re-export the bundle with a max_length the model supports")

    def _probe(self, session: Any, feed: Mapping[str, np.ndarray], where: str, message: str) -> None:
        try:
            session.run([self._output], dict(feed), self._quiet)
        except Exception as exc:  # ORT raises its own pybind types
            raise BundleError(f"{where}: " + message.format(error=brief(exc, 200))) from None

    def __repr__(self) -> str:
        return f"Classifier({str(self.path)!r}, labels={list(self.labels)}, providers={list(self.providers)})"

    # -- model side ---------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> list[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Tokenize and batch: [(row indices, feed)], texts sorted by length so padding is minimal.

        A batch holds at most `batch_size` texts and, when `max_batch_tokens` is set, at most that
        many tokens once padded (a single longer text still gets a batch of its own).
        """
        try:
            encodings = encode_batch(self._tokenizer, list(texts))
        except InferenceError as exc:
            raise InferenceError(f"{self.path}: {exc}") from None
        groups = length_batches([len(e.ids) for e in encodings], self.batch_size, self.max_batch_tokens,
                                self.manifest.graph_for if self.manifest.fallback_file else None)
        return [
            (np.asarray(rows), pad_batch([encodings[i] for i in rows], self._inputs, self.manifest.pad_id))
            for rows in groups
        ]

    def run(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        """Model only: one padded batch in, logits (B, labels) out (on the graph for its length)."""
        shape = next(iter(feed.values())).shape
        name = self.manifest.graph_for(shape[1])
        try:
            return self._sessions[name].run([self._output], dict(feed))[0]
        except Exception as exc:  # ORT raises its own pybind types (InvalidArgument, Fail, ...)
            raise InferenceError(
                f"{self.path}/{name}: ONNX Runtime failed on a batch of {shape[0]} texts x {shape[1]} tokens "
                f"({brief(exc)}); when the batch came from this classifier's own tokenizer, the "
                "bundle is at fault: re-export it"
            ) from None

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The graph's raw outputs in input order (for classifiers: logits (n, labels))."""
        texts = check_texts(_as_list(texts), self.task.pairs)
        own = self.task.outputs_of(self, texts)  # tasks that read per-token outputs themselves
        if own is not None:
            return own
        out = np.empty(self.task.output_shape(len(texts)), dtype=np.float32)
        for rows, feed in self.encode(texts):
            out[rows] = self.run(feed)
        return out

    # -- user side ----------------------------------------------------------------------------
    def _offers(self, method: str) -> None:
        if method not in self.task.offers:
            raise ConfigError(
                f"{self.path} is a {self.task.kind} bundle: it offers {', '.join(f'{m}()' for m in self.task.offers)}, "
                f"not {method}()"
            )

    def predict_proba(self, texts: str | Sequence[str]) -> np.ndarray:
        """Per-label scores, shape (n, labels), in input order (shape (labels,) for one string): class
        probabilities for a single-label classifier."""
        self._offers("predict_proba")
        single = self._single(texts)
        p = self.task.scores(self.logits([texts] if single else texts))  # type: ignore[list-item]
        return p[0] if single else p

    @overload
    def predict(self, texts: str) -> Prediction: ...
    @overload
    def predict(self, texts: Sequence[str]) -> list[Prediction]: ...

    def predict(self, texts: str | Sequence[str]) -> Prediction | list[Prediction]:
        """The task's prediction per text, in input order: for a single-label classifier the label,
        its score and every label's score."""
        self._offers("predict")
        single = self._single(texts)
        preds = self.task.predictions(self.logits([texts] if single else texts))  # type: ignore[list-item]
        return preds[0] if single else preds

    def records(self, texts: Sequence[Any]) -> list[dict[str, Any]]:
        """Each text's prediction as a JSON-ready dict, in input order, whatever the bundle's task:
        what `lpm-edge predict`, file scoring, Ray and the server give (the task's `records`)."""
        texts = check_texts(_as_list(texts), self.task.pairs)
        return self.task.records(self.task.record_outputs(self, texts), texts)

    def _single(self, texts: Any) -> bool:
        """True for one example: a str, or for a bundle on pairs one (text, text_pair) tuple."""
        if not self.task.pairs:
            return isinstance(texts, str)
        if isinstance(texts, str):
            raise TypeError("this bundle scores sentence pairs: pass a (text, text_pair) tuple or a list of them, "
                            f"not a str ({texts[:40]!r})")
        return isinstance(texts, tuple) and len(texts) == 2 and all(isinstance(t, str) for t in texts)

    def rank(self, query: str, passages: Sequence[str]) -> list[Ranked]:
        """`passages` ordered by their relevance to `query`, most relevant first: each with its score
        (the task's relevance: for a binary classifier on pairs, the probability of its last label)
        and its index in `passages`. The model scores each (query, passage) pair."""
        self._offers("rank")
        if not isinstance(query, str):
            raise TypeError(f"query must be a str, got {type(query).__name__}")
        passages = _as_list(passages)
        scores = self.task.relevance(self.logits([(query, p) for p in passages]))
        order = np.argsort(-scores, kind="stable")
        return [Ranked(passages[i], float(scores[i]), int(i)) for i in order]


    def entities(self, texts: str | Sequence[str], aggregation: str = "first") -> Any:
        """Token classification: the entities in each text (label, score, start and end character
        offsets in the text), a list per text in input order (one list for one string)."""
        self._offers("entities")
        return self.task.entities(self, texts, aggregation)  # type: ignore[attr-defined]

@dataclass(frozen=True)
class Ranked:
    """One passage of `rank`'s answer: the passage, its relevance score and its index in the input."""

    text: str
    score: float
    index: int


def _as_list(texts: Sequence[str]) -> list:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"texts must be a list of str, got {type(texts).__name__}")
    try:
        return list(texts)
    except TypeError:
        raise TypeError(f"texts must be a list of str, got {type(texts).__name__}") from None


def load(
    bundle: str | os.PathLike[str],
    providers: str | Sequence[str] = "auto",
    threads: int | None = None,
    batch_size: int = BATCH_SIZE,
    spin: bool = True,
    max_batch_tokens: int | str | None = "auto",
    exact_int8: bool = False,
) -> Classifier:
    """Load a bundle (directory or .zip) and return a ready, thread-safe classifier.

    providers: "auto" (CUDA when onnxruntime-gpu sees a GPU, else CPU), "cpu", "cuda",
    or a list of ONNX Runtime provider names. Asking for CUDA where it cannot run raises
    ProviderError instead of silently running on the CPU.
    threads: intra-op threads (None = one per physical core).
    batch_size: at most this many texts per model call; inputs are sorted by length into batches.
    max_batch_tokens: at most this many tokens (texts × padded length) per model call, which bounds
    activation memory; "auto" = 256 on the CPU and no limit on CUDA; None = no limit.
    spin: let idle ONNX Runtime threads spin (lower latency); turn off when sharing cores.
    exact_int8: on x86 CPUs without VNNI (AVX2 only), ONNX Runtime's fast u8s8 int8 kernels add
    pairs of products in 16 bits, which can saturate; True runs them as u8u8 (its
    session.x64quantprecision option): slower, no saturation. No effect on CPUs with VNNI.
    Texts longer than the bundle's max_length are truncated.
    A bundle that is damaged, or whose parts do not fit together, raises BundleError here; a failure
    of ONNX Runtime or tokenizers on some later input raises InferenceError (a BundleError).
    """
    return Classifier(bundle, providers=providers, threads=threads, batch_size=batch_size, spin=spin,
                      max_batch_tokens=max_batch_tokens, exact_int8=exact_int8)
