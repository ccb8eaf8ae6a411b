"""Build and measure one candidate: export it, read its validation accuracy, time it.

Latency is measured interleaved with a fixed anchor bundle (the first candidate: plain int8) and
stored as anchor latency × the ratio seen in this run, so drift of a noisy machine between
candidates cancels out.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..bundle import graphs, read_manifest
from .pareto import Point
from .space import Candidate

if TYPE_CHECKING:
    from ..data import Split
    from ..tasks.base import Task

log = logging.getLogger("lpm_edge.search")


class BundleEvaluator:
    def __init__(self, checkpoint: Path, work: Path, texts: Sequence[str], target: str = "cpu",
                 data: str | None = None, rounds: int = 2, warmup: int = 10,
                 validation: "Split | None" = None, data_args: dict[str, Any] | None = None,
                 task: "Task | None" = None) -> None:
        """validation: the split to re-measure accuracy on with the target's provider; the export's
        own check runs on the CPU, which is what a CPU target serves with. data_args: the
        validation/test files, columns and strictness each export reads its data with."""
        self.checkpoint, self.work, self.target, self.data = checkpoint, work, target, data
        self.validation, self.data_args, self.task = validation, dict(data_args or {}), task
        self.texts = list(texts)
        self.rounds, self.warmup = rounds, warmup
        self.anchor: Any = None  # (classifier, median ms) of the first candidate measured
        self.students = work / "students"

    def resume_anchor(self, points: Sequence[Point]) -> None:
        """On a resumed search, anchor new timings to the first cached candidate whose bundle is
        still on disk, at its cached latency, so old and new figures share one scale."""
        from ..runtime import load

        for point in points:
            if point.key == "reference" or not point.extra.get("bundle"):
                continue
            bundle = Path(point.extra["bundle"])
            if (bundle / "manifest.json").is_file():
                self.anchor = (load(bundle, providers=self.target, spin=False), point.latency_ms)
                log.info("timings anchored to the cached %s (%.2f ms)", point.label, point.latency_ms)
                return

    def bundle_path(self, cand: Candidate) -> Path:
        return self.work / "bundles" / cand.key()

    def __call__(self, cand: Candidate) -> Point | None:
        from ..errors import AccuracyBudgetError
        from ..export import export
        from ..runtime import load

        path = self.bundle_path(cand)
        try:
            export(self.checkpoint, path, cand.recipe(self.target), data=self.data, force=True,
                   student_cache=self.students, **self.data_args)
        except AccuracyBudgetError as exc:  # only a rescue variant carries a budget into its export
            log.info("    %s", exc)
            return None
        manifest = read_manifest(path)
        clf = load(path, providers=self.target, spin=False)
        acc = float(manifest.metrics["bundle_accuracy"])
        if manifest.metrics.get("metric", "accuracy") != "accuracy":
            # the value whose drop from the full model's is the export's loss (multi-task: the worst head's)
            acc = float(manifest.metrics["reference_accuracy"]) - float(manifest.metrics["accuracy_drop_points"]) / 100
        if self.validation is not None:  # its gold is the full model's where the task scores against it
            from ..evaluate import compare

            task = self.task or clf.task
            [scores] = compare(self.validation, [(cand.label(), clf.logits(list(self.validation.texts)))],
                               task, tasks=[task.reader_for(clf.task)])  # its own thresholds
            acc = scores.value  # the task's budget metric (accuracy for classifiers)
        ms = self._latency_ms(clf)
        return Point(
            key=cand.key(), label=cand.label(), accuracy=acc,
            latency_ms=ms, size_bytes=sum(int(manifest.files[f]["bytes"]) for f in graphs(manifest)),
            extra={"bundle": str(path), "candidate": cand.__dict__, "parity": manifest.metrics.get("parity"),
                   "source_accuracy": manifest.metrics.get("source_accuracy")},
        )

    def _latency_ms(self, clf: Any) -> float:
        """Median batch-1 end-to-end latency, normalised by the anchor measured beside it."""
        from ..bench.latency import interleaved

        texts = self.texts
        call = lambda c: (lambda r: c.logits([texts[r % len(texts)]]))  # noqa: E731
        if self.anchor is None:
            [t] = interleaved([call(clf)], len(texts) * self.rounds, self.warmup)
            self.anchor = (clf, float(np.median(t)) * 1000)
            return self.anchor[1]
        anchor, anchor_ms = self.anchor
        t_anchor, t = interleaved([call(anchor), call(clf)], len(texts) * self.rounds, self.warmup)
        return anchor_ms * float(np.median(t)) / float(np.median(t_anchor))
