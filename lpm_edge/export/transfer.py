"""The transfer set: texts the teacher labels for distillation besides the labelled training texts.

- Unlabelled in-domain text the user provides (`--unlabelled FILE`), read by
  `data_files.read_texts`: one text per line, or a text column of a table.
- Augmented copies of the training texts (`distill.augment = "edit"`): a random span of words
  deleted, then two words swapped. The issue also suggests the teacher's masked-LM replacements;
  a classification checkpoint has no masked-LM head (the demo model ships none either), so they
  are not offered.

These texts carry no gold label: they enter the soft (teacher) loss only (label NO_LABEL, which
cross-entropy ignores).
"""

from __future__ import annotations

import hashlib
import logging
import random
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from .recipe import DistillConfig

log = logging.getLogger("lpm_edge.export")
NO_LABEL = -100  # torch.nn.functional.cross_entropy's default ignore_index
SEED = 0


def edit(text: str, rng: random.Random) -> str:
    """Delete a random span of up to a fifth of the words (at least one), then swap two words;
    texts of fewer than three words come back unchanged."""
    words = text.split()
    if len(words) < 3:
        return text
    span = rng.randint(1, max(1, len(words) // 5))
    start = rng.randrange(0, len(words) - span + 1)
    words = words[:start] + words[start + span :]
    if len(words) >= 2:
        i, j = rng.sample(range(len(words)), 2)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)


def augmented(texts: Sequence[str], config: "DistillConfig", seed: int = SEED) -> list[str]:
    """`config.augment_copies` edited copies of each text (augment = "edit"), the same on every run;
    copies equal to their text (too short to edit) are left out."""
    if config.augment == "none":
        return []
    rng = random.Random(seed)
    out = []
    for _ in range(config.augment_copies):
        out += [e for t in texts if (e := edit(t, rng)) != t]
    return out


def texts_hash(texts: Sequence[str]) -> str:
    """sha256 of the texts in order; "" for none."""
    if not texts:
        return ""
    return hashlib.sha256("\x00".join(texts).encode()).hexdigest()
