"""Error types. Every message says what failed, the offending value, and the fix."""

from __future__ import annotations


class LpmEdgeError(Exception):
    """Root of every error lpm-edge raises on purpose."""


class ConfigError(LpmEdgeError):
    """A recipe, a training config or a command-line value is wrong."""


class DataError(LpmEdgeError):
    """A dataset file is missing, malformed, or inconsistent."""


class BundleError(LpmEdgeError):
    """A bundle is missing, corrupted, tampered with, or of an unknown schema."""


class InferenceError(BundleError):
    """A loaded bundle's tokenizer or graph failed on some input (the bundle, not the input, is at fault)."""


class ExportError(LpmEdgeError):
    """The export could not produce a bundle."""


class ParityError(ExportError):
    """The exported graph disagrees with the PyTorch model it came from."""


class AccuracyBudgetError(ExportError):
    """The bundle lost more accuracy than the caller allowed."""


class BenchError(LpmEdgeError):
    """A benchmark could not measure what it was asked to (a candidate failed to load or run)."""


class ProviderError(LpmEdgeError):
    """An execution provider was asked for but cannot run here."""


class MissingDependencyError(LpmEdgeError):
    """An optional dependency (an extra, or a built-in asset) is not installed."""

    def __init__(self, what: str, install: str) -> None:
        super().__init__(f"{what} is not installed; install it with: {install}")
        self.install = install


def brief(exc: BaseException, limit: int = 300) -> str:
    """A third-party exception's message on one line (ONNX Runtime's span several), cut to `limit`."""
    return " ".join(str(exc).split())[:limit]


def require(module: str, extra: str) -> None:
    """Raise MissingDependencyError naming the extra when `module` cannot be imported."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(
            f"'{module}' (needed for this step)", f'pip install "lpm-edge[{extra}]"'
        )
