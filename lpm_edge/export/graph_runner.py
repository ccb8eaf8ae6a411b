"""An ONNX graph in the export's work directory, run as a loaded bundle runs it (the runtime's
tokenizer, batching and padding), for tasks that read the graph's outputs themselves (per-token
logits over windows): what quantize.auto_exclude measures a candidate graph's metric loss with."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Mapping, Sequence

import numpy as np


class GraphRunner:
    """What `Task.outputs_of` takes of a loaded bundle, for one graph file on the CPU provider."""

    def __init__(self, graph: Path, tokenizer: Any, names: Sequence[str], max_length: int, output: str) -> None:
        """tokenizer: the transformers fast tokenizer the bundle will ship; names: the graph's inputs."""
        from ..runtime.classifier import BATCH_SIZE, CPU_BATCH_TOKENS
        from .onnx_graph import cpu_session

        self._session = cpu_session(graph)
        self._tokenizer = tokenizer.backend_tokenizer
        self._inputs, self._output = list(names), output
        self.max_length, self.batch_size, self.max_batch_tokens = max_length, BATCH_SIZE, CPU_BATCH_TOKENS
        self.manifest = SimpleNamespace(pad_id=int(tokenizer.pad_token_id or 0), fallback_file=None)

    def run(self, feed: Mapping[str, np.ndarray]) -> np.ndarray:
        return self._session.run([self._output], dict(feed))[0]


def task_drop_of(source: Any, names: Sequence[str], texts: list[str], gold: Any, full_outputs: np.ndarray,
                 task: Any) -> Any:
    """A function: ONNX graph -> points of the task's budget metric it loses against the full model,
    its outputs read by the task (windows, words) as the bundle's will be."""

    def drop_of(graph: Path) -> float:
        runner = GraphRunner(graph, source.tokenizer, names, source.max_length, task.output_name)
        outputs = task.outputs_of(runner, texts)
        return task.fitted_loss(gold, full_outputs, outputs)

    return drop_of
