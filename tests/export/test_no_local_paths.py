"""A bundle reveals no path of the machine that built it: its manifest names the checkpoint and the
base model by folder name and sha256, and no file of the bundle holds a local path."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from lpm_edge.bundle import pack_zip


def _local_paths(*paths: Path) -> set[str]:
    """The paths a leak would show: as given and resolved, and the folders holding them."""
    out = set()
    for path in paths:
        for p in (path, path.resolve()):
            out |= {str(p), str(p.parent)}
    return out


def _leaks(bundle: Path, paths: set[str]) -> list[str]:
    found = []
    for file in sorted(bundle.rglob("*")):
        if file.is_file():
            data = file.read_bytes()
            found += [f"{file.name}: {p}" for p in paths if p.encode() in data]
    return found


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("which", ["tiny_bundle", "tiny_fp32_bundle"])
def test_bundle_files_hold_no_local_path(request, which, tiny_checkpoint, tiny_model, tiny_data):
    bundle = request.getfixturevalue(which)
    paths = _local_paths(tiny_checkpoint, tiny_model, tiny_data)
    assert not _leaks(bundle, paths)


def test_manifest_names_sources_by_name_and_sha256(tiny_bundle, tiny_checkpoint, tiny_model):
    source = json.loads((tiny_bundle / "manifest.json").read_text())["source"]
    assert source["checkpoint"] == {
        "name": tiny_checkpoint.name,
        "sha256": {"config.json": _sha(tiny_checkpoint / "config.json"),
                   "model.safetensors": _sha(tiny_checkpoint / "model.safetensors")},
    }
    assert source["base_model"] == {
        "name": tiny_model.name,
        "sha256": {"config.json": _sha(tiny_model / "config.json"),
                   "model.safetensors": _sha(tiny_model / "model.safetensors")},
    }


def test_export_from_a_recipe_file_and_a_data_file_leaks_no_path(tiny_checkpoint, tiny_model, tiny_data, tmp_path):
    from lpm_edge.export import export

    folder = tmp_path / "private-folder-of-alice"
    folder.mkdir()
    recipe = folder / "edge.toml"
    builtin = Path(__file__).resolve().parents[2] / "lpm_edge" / "export" / "recipes" / "cpu-int8.toml"
    recipe.write_text(builtin.read_text().replace('name = "cpu-int8"', 'name = "edge"'))
    data = folder / "customer-reviews.csv"
    data.write_bytes(tiny_data.read_bytes())
    bundle = export(tiny_checkpoint, folder / "bundle", recipe, data=str(data))
    archive = pack_zip(bundle, tmp_path / "bundle.zip")
    paths = _local_paths(tiny_checkpoint, tiny_model, tiny_data, recipe, data) | {str(folder), str(tmp_path)}
    assert not _leaks(bundle, paths)
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            assert not [p for p in paths if p.encode() in zf.read(name) or p in name], name
