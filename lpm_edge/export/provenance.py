"""What a bundle's manifest says about where it came from: names and hashes, never local paths.

A bundle ships to other machines and other people; the absolute path of a checkpoint on the build
machine says nothing useful there and tells more than it should (user names, project folders).
A model directory is recorded by its folder name and the sha256 of the files that define it,
which identify it on any machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..bundle import sha256_file

# The files that make a model what it is: its configuration and its weights (safetensors only; the
# build side refuses pickled weights). Tokenizer files are in the bundle itself.
_DEFINING = ("config.json", "*.safetensors")


def model_record(directory: str | Path | None) -> dict[str, Any] | None:
    """{"name": folder name, "sha256": {file: digest}} for a model directory, or None.

    A directory that is not on this machine (a checkpoint trained elsewhere names its base model
    by the path it had there) keeps its folder name only, with "sha256": None.
    """
    if not directory:
        return None
    path = Path(str(directory))
    digests = None
    if path.is_dir():
        files = sorted({f for pattern in _DEFINING for f in path.glob(pattern) if f.is_file()})
        digests = {f.name: sha256_file(f) for f in files}
    return {"name": path.name, "sha256": digests}
