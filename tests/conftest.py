"""Shared fixtures: a tiny BERT built in the test, a separable synthetic task, a bundle.

No downloads: the vocabulary is made from the test's own texts, the model from a config.
"""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

if TYPE_CHECKING:
    from lpm_edge.train import TrainConfig

POSITIVE = ["good", "great", "fine", "superb", "lovely", "brilliant"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring", "terrible"]
FILLER = ["the", "movie", "film", "plot", "was", "a", "really", "story", "acting", "and", "very", "it"]
LABELS = ("neg", "pos")


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Texts whose label is told by one sentiment word among filler words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = rng.choices(FILLER, k=rng.randint(2, 12))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append((" ".join(words), LABELS[label]))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def make_tiny_model(directory: Path, layers: int = 2, hidden: int = 32, heads: int = 4, ffn: int = 64) -> Path:
    """A randomly initialised BERT classifier with a WordPiece vocabulary of the test words."""
    pytest.importorskip("torch", reason="needs the export extra (torch); runtime-only environment")
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted(set(POSITIVE + NEGATIVE + FILLER))
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = dict.fromkeys(specials + words + list(letters) + [f"##{c}" for c in letters])  # ordered, unique
    vocab = {tok: i for i, tok in enumerate(tokens)}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=512,
    )
    fast.model_input_names = ["input_ids", "token_type_ids", "attention_mask"]
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ffn, max_position_embeddings=128, num_labels=2,
        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)},
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "tiny.csv", synthetic_rows(400))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, tiny_data: Path) -> Path:
    from lpm_edge.train import train

    out = tmp_path_factory.mktemp("ckpt") / "checkpoint"
    return train(tiny_train_config(out, tiny_model, tiny_data))


@pytest.fixture(scope="session")
def tiny_config(tiny_model: Path, tiny_data: Path) -> Callable[..., "TrainConfig"]:
    """tiny_config(out, **changes): the config of `tiny_checkpoint`, writing to `out`."""
    return lambda out, **changes: tiny_train_config(out, **{"model": tiny_model, "data": tiny_data, **changes})


def tiny_train_config(out: Path, model: Path, data: Path, **changes: Any) -> "TrainConfig":
    """The tiny fine-tune of `tiny_checkpoint`. One thread: on 2 shared cores, torch's 2 spinning
    threads make this 15x slower (1 s vs 18 s measured)."""
    from lpm_edge.train import TrainConfig

    settings: dict = dict(out=out, model=model, data=str(data), epochs=4, batch_size=16, learning_rate=3e-3,
                          max_length=32, patience=None, threads=1)
    return TrainConfig(**{**settings, **changes})


# The tiny bundles by fixture name's suffix and recipe; tests/build_tiny_bundles.py builds them ahead
# of time for an environment without torch, which names their directory in LPM_EDGE_PREBUILT_BUNDLES.
PREBUILT = {"int8": "cpu-int8", "fp32": "cpu-fp32"}


def _tiny_bundle(name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    prebuilt = os.environ.get("LPM_EDGE_PREBUILT_BUNDLES")
    if prebuilt:
        return Path(prebuilt) / name
    from lpm_edge.export import export

    checkpoint = request.getfixturevalue("tiny_checkpoint")
    return export(checkpoint, tmp_path_factory.mktemp("bundles") / name, PREBUILT[name])


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return _tiny_bundle("int8", tmp_path_factory, request)


@pytest.fixture(scope="session")
def tiny_fp32_bundle(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    return _tiny_bundle("fp32", tmp_path_factory, request)


@pytest.fixture(autouse=True)
def _restore_logging():
    """`lpm_edge.cli.main` configures the root logger, as a program should; undo it per test."""
    import logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


FAMILIES = ("bert", "roberta", "xlm-roberta", "electra", "distilbert", "mpnet", "deberta-v2", "modernbert")


def make_tiny_family_model(
    directory: Path, model_type: str, layers: int = 2, hidden: int = 32, heads: int = 4, ffn: int = 64,
    vocab_size: int | None = None,
) -> Path:
    """A randomly initialised classifier of `model_type` (one of FAMILIES) with the test words'
    WordPiece vocabulary. Families whose models take no token_type_ids get a tokenizer without them,
    as their own tokenizers are. vocab_size: embedding rows, if more than the tokenizer's (benchmarks)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    make_tiny_model(directory, layers, hidden, heads, ffn)  # the tokenizer, and the bert model
    if model_type == "bert" and vocab_size is None:
        return directory
    tokenizer = AutoTokenizer.from_pretrained(directory)
    ids = {k: tokenizer.convert_tokens_to_ids(t) for k, t in (("pad", "[PAD]"), ("cls", "[CLS]"), ("sep", "[SEP]"))}
    shape: dict[str, Any] = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                 intermediate_size=ffn, max_position_embeddings=128)
    extra: dict[str, Any] = {
        # position ids start after the padding index, as in the released checkpoints
        "roberta": dict(type_vocab_size=1, max_position_embeddings=128 + ids["pad"] + 1),
        "xlm-roberta": dict(type_vocab_size=1, max_position_embeddings=128 + ids["pad"] + 1),
        "bert": {},
        "electra": dict(embedding_size=hidden),
        "distilbert": dict(dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=ffn),
        "mpnet": dict(max_position_embeddings=128 + ids["pad"] + 1),
        # DeBERTa-v3's layout: relative attention with shared keys, no absolute positions, no token types
        "deberta-v2": dict(relative_attention=True, pos_att_type=["p2c", "c2p"], position_buckets=16,
                           max_relative_positions=-1, share_att_key=True, norm_rel_ebd="layer_norm",
                           position_biased_input=False, type_vocab_size=0),
        "modernbert": dict(global_attn_every_n_layers=2, local_attention=8, bos_token_id=ids["cls"],
                           eos_token_id=ids["sep"], cls_token_id=ids["cls"], sep_token_id=ids["sep"]),
    }[model_type]
    config = AutoConfig.for_model(
        model_type, vocab_size=max(vocab_size or 0, tokenizer.vocab_size), pad_token_id=ids["pad"], num_labels=2,
        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)}, **{**shape, **extra},
    )
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    if model_type in ("roberta", "xlm-roberta", "distilbert", "mpnet", "deberta-v2", "modernbert"):
        tokenizer = AutoTokenizer.from_pretrained(directory, model_input_names=["input_ids", "attention_mask"])
        tokenizer.save_pretrained(directory)
    for old in directory.glob("*.safetensors"):
        old.unlink()
    model.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def family_model() -> Callable[..., Path]:
    """make_tiny_family_model, for test modules (they cannot import conftest in importlib mode)."""
    return make_tiny_family_model


# Exports keep their students beside the checkpoint by default; the session's tiny checkpoint is
# shared, so tests keep them in a folder of their own (a test of the default unsets the variable).
@pytest.fixture(scope="session", autouse=True)
def _session_student_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LPM_EDGE_STUDENT_CACHE", str(tmp_path_factory.mktemp("session-students")))
        yield


@pytest.fixture(autouse=True)
def _student_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("LPM_EDGE_STUDENT_CACHE", str(tmp_path_factory.mktemp("students")))
