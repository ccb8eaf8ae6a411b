"""Batch scoring of files: streamed in chunks, several worker processes, resumable."""

from .run import ScoreResult, score_file

__all__ = ["ScoreResult", "score_file"]
