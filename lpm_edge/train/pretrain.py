"""`pretrain`: continued masked-LM training on unlabelled in-domain text, before fine-tuning.

The output is a model directory `train(TrainConfig(model=OUT))` fine-tunes like any other: the
encoder as the masked-LM objective left it, the base model's pooler carried over unchanged (the
masked-LM model has none, and a classifier would otherwise start from a random one), the
masked-LM head (so that pretraining can continue from it), the tokenizer, and `pretraining.json`
(config, texts, held-out masked-LM loss before and after, time).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import bundle as _bundle
from ..errors import ConfigError, DataError, require
from .config import check_run

log = logging.getLogger("lpm_edge.train")
PRETRAINING_JSON = "pretraining.json"
HELD_OUT = 0.05  # share of the texts kept out of training to measure the masked-LM loss on (at most MAX_HELD_OUT)
MAX_HELD_OUT = 200


@dataclass(frozen=True)
class PretrainConfig:
    """Everything a continued masked-LM run depends on; saved in the output's pretraining.json."""

    out: Path
    text: str | Path  # a file (one text per line, or CSV/TSV/JSONL/Parquet with text_column) or a built-in name
    model: Path | None = None  # a local Hugging Face directory; None = the built-in MiniLM-L6
    text_column: str = "text"
    epochs: float = 3.0
    max_steps: int = -1  # > 0 overrides epochs
    batch_size: int = 32
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mlm_probability: float = 0.15
    max_length: int = 128
    limit: int | None = None  # use only the first N texts (quick runs, tests)
    seed: int = 42
    device: str = "auto"
    precision: str = "auto"
    threads: int | None = None
    force: bool = False
    version: int = 1

    def __post_init__(self) -> None:
        check_run(self, ("batch_size", "max_length"), ("threads", "limit"))
        if not 0 < self.mlm_probability < 1:
            raise ConfigError(f"mlm_probability {self.mlm_probability} must be between 0 and 1 (BERT used 0.15)")

    def to_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


class _Encoded:
    """Tokenized texts for the masked-LM collator (which pads and masks per batch)."""

    def __init__(self, tokenizer: Any, texts: list[str], max_length: int) -> None:
        enc = tokenizer(texts, truncation=True, max_length=max_length, padding=False,
                        return_special_tokens_mask=True)
        self.rows = [{k: enc[k][i] for k in enc.keys()} for i in range(len(texts))]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.rows[i]


def masked_only_trainer() -> Any:
    """A transformers Trainer whose masked-LM loss runs the vocabulary projection on the masked
    positions only (15% of them): for MiniLM-L6 that projection (384 x 30,522) costs about as much as
    the whole encoder per token, and the other positions' logits are never used. Same loss."""
    import torch
    from transformers import Trainer

    class MaskedOnlyTrainer(Trainer):
        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            labels = inputs.pop("labels")  # (B, T), -100 where not masked
            picked = labels != -100

            def only_masked(module: Any, args: tuple) -> tuple | None:
                hidden = args[0]  # (B, T, H) -> (M, H); an unpadded (N, H) layout is left whole
                return (hidden[picked], *args[1:]) if hidden.shape[:-1] == picked.shape else None

            projection = model.get_output_embeddings()
            hook = projection.register_forward_pre_hook(only_masked) if projection is not None else None
            try:
                outputs = model(**inputs)
            finally:
                if hook is not None:
                    hook.remove()
            logits = outputs.logits  # (M, V), or (B, T, V) when the hook could not select
            target = labels[picked] if logits.dim() == 2 else labels.reshape(-1)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target,
                                                     ignore_index=-100)
            return (loss, outputs) if return_outputs else loss

    return MaskedOnlyTrainer


def pretrain(config: PretrainConfig) -> Path:
    """Continue masked-LM training of `config.model` on `config.text`; return the model directory."""
    require("torch", "export")
    require("transformers", "export")
    from .device import plan_device
    from .model_dir import resolve_model_dir
    from .trainer import _torch_threads

    out = Path(config.out)
    if out.exists() and not config.force:
        raise ConfigError(f"{out} already exists; pass --force to replace it or choose another --out")
    _bundle.check_writable(out)
    model_dir = resolve_model_dir(config.model)
    from ..data import unlabelled_texts

    texts, source = unlabelled_texts(config.text, config.text_column)
    texts = texts[: config.limit] if config.limit else texts
    if len(texts) < 2:
        raise DataError(f"{config.text}: {len(texts)} text(s); masked-LM training needs at least 2 "
                        "(one is held out to measure it)")
    plan = plan_device(config.device, config.precision)
    with _torch_threads(config.threads) as threads:
        return _pretrain(config, model_dir, texts, source, plan.trainer_args(world_size=1), threads)


def _pretrain(config: PretrainConfig, model_dir: Path, texts: list[str], source: str, device_args: dict[str, Any],
              threads: int) -> Path:
    import torch
    from transformers import (
        AutoModel,
        AutoModelForMaskedLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        set_seed,
    )
    from transformers.utils import logging as hf_logging

    from .trainer import log_progress, training_arguments

    out = Path(config.out)
    set_seed(config.seed)
    hf_logging.set_verbosity_error()
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    if tokenizer.mask_token is None:
        raise ConfigError(f"the tokenizer of {model_dir} has no mask token; masked-LM training needs one")
    try:
        model, loading = AutoModelForMaskedLM.from_pretrained(model_dir, local_files_only=True, use_safetensors=True,
                                                              output_loading_info=True)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"transformers cannot load {model_dir} as a masked-LM model: {exc}") from None
    prefix = model.base_model_prefix
    new_head = sorted(k for k in loading["missing_keys"] if not k.startswith(prefix + "."))
    if new_head:
        # A sentence-embedding model (the built-in all-MiniLM-L6-v2) ships its encoder only.
        log.info("%s has no masked-LM head; a new one is initialised (%d tensors: %s; its output layer shares the "
                 "word embeddings)", model_dir, len(new_head), ", ".join(new_head))
    missing_encoder = [k for k in loading["missing_keys"] if k.startswith(prefix + ".")]
    if missing_encoder:
        raise ConfigError(f"{model_dir}: the encoder weights {missing_encoder[:3]} are missing; is it a model of "
                          f"the type its config.json names ({model.config.model_type})?")

    order = list(range(len(texts)))
    random.Random(config.seed).shuffle(order)
    n_held = min(MAX_HELD_OUT, max(1, int(len(texts) * HELD_OUT)))
    held = [texts[i] for i in order[:n_held]]
    train_texts = [texts[i] for i in order[n_held:]]
    train_set = _Encoded(tokenizer, train_texts, config.max_length)
    held_set = _Encoded(tokenizer, held, config.max_length)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=config.mlm_probability)
    by_steps = config.max_steps > 0
    work = out.with_name(f".{out.name}.work")
    args = training_arguments(
        work, device_args, max_steps=config.max_steps, batch_size=config.batch_size, grad_accum=1,
        learning_rate=config.learning_rate, weight_decay=config.weight_decay, warmup_ratio=config.warmup_ratio,
        seed=config.seed, group_by_length=True,
        num_train_epochs=config.epochs,
        per_device_eval_batch_size=64,
        eval_strategy="no",
        prediction_loss_only=True,  # the held-out loss only: never gather (texts, tokens, vocabulary) logits
        save_strategy="no",
    )
    trainer = masked_only_trainer()(model=model, args=args, train_dataset=train_set, eval_dataset=held_set,
                                    data_collator=collator)
    trainer.model_accepts_loss_kwargs = False  # our loss is the mean over the batch's masked tokens
    log_progress(trainer)

    def held_out_loss() -> float:
        torch.manual_seed(config.seed)  # the same masks before and after training
        return float(trainer.evaluate()["eval_loss"])

    before = held_out_loss()
    log.info("masked-LM pretraining %s on %s (%d texts, %d held out) for %s on %s (%d threads); held-out "
             "masked-LM loss %.4f", model_dir, source, len(train_texts), n_held,
             f"{config.max_steps} steps" if by_steps else f"{config.epochs:g} epochs", args.device, threads, before)
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    after = held_out_loss()
    log.info("held-out masked-LM loss %.4f -> %.4f (perplexity %.1f -> %.1f) on %d texts", before, after,
             math.exp(min(before, 50)), math.exp(min(after, 50)), n_held)
    info = {
        "version": 1, "config": config.to_dict(), "base_model": str(model_dir), "texts": source,
        "sizes": {"train": len(train_texts), "held_out": n_held}, "new_mlm_head": new_head,
        "held_out_mlm_loss": {"before": before, "after": after}, "steps": result.global_step,
        "train_seconds": round(seconds, 1), "device": str(args.device), "threads": threads,
        "torch": torch.__version__,
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    base = AutoModel.from_pretrained(model_dir, local_files_only=True, use_safetensors=True)
    if getattr(base, "pooler", None) is not None:  # the masked-LM model has no pooler: keep the base model's
        state.update({f"{prefix}.pooler.{k}": v.detach().cpu() for k, v in base.pooler.state_dict().items()})
    with _bundle.atomic_directory(out, force=True) as tmp:
        model.save_pretrained(str(tmp), state_dict=state, safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        (tmp / PRETRAINING_JSON).write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    log.info("saved %s; fine-tune it with `lpm-edge train --model %s`", out, out)
    return out
