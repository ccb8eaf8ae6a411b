"""Fixtures for bundle tests: a private copy of the tiny bundle that a test may damage."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any, Callable

import pytest


@pytest.fixture
def bundle_copy(tiny_bundle: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny int8 bundle, safe to corrupt."""
    return Path(shutil.copytree(tiny_bundle, tmp_path / "bundle"))


def _edit_manifest(bundle: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _rehash(bundle: Path, name: str) -> None:
    """Record `name`'s current sha256 in the manifest, so a corruption gets past the hash check
    and reaches the parser behind it."""
    digest = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    _edit_manifest(bundle, lambda m: m["files"][name].update(sha256=digest))


@pytest.fixture
def edit_manifest() -> Callable[[Path, Callable[[dict[str, Any]], None]], None]:
    return _edit_manifest


@pytest.fixture
def rehash() -> Callable[[Path, str], None]:
    return _rehash
