"""A .zip bundle is extracted safely: no path traversal, bounded file count and size, no forged sizes."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest

import lpm_edge
from lpm_edge import bundle as _bundle
from lpm_edge.bundle import pack_zip
from lpm_edge.errors import BundleError


@pytest.fixture
def packed(tiny_bundle: Path, tmp_path: Path) -> Path:
    return pack_zip(tiny_bundle, tmp_path / "bundle.zip")


def _rezip(src: Path, dst: Path, extra: dict[str, bytes] | None = None, stored: bool = False) -> Path:
    """Copy a zip bundle member by member, adding `extra` members."""
    mode = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=mode) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info))
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


def _patch_central(archive: Path, member: str, **fields: int) -> None:
    """Rewrite fields of `member`'s central directory record (what zipfile trusts for sizes)."""
    offsets = {"flags": (8, "<H"), "method": (10, "<H"), "crc": (16, "<I"), "compress_size": (20, "<I"),
               "file_size": (24, "<I")}
    data = bytearray(archive.read_bytes())
    name = member.encode()
    pos = 0
    while True:
        pos = data.index(b"PK\x01\x02", pos)
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46 : pos + 46 + name_len]) == name:
            break
        pos += 4
    for key, value in fields.items():
        off, fmt = offsets[key]
        struct.pack_into(fmt, data, pos + off, value)
    archive.write_bytes(bytes(data))


def _local_and_central(archive: Path, member: str, **fields: int) -> None:
    """Rewrite a field in both the local header and the central record (zipfile checks some of both)."""
    _patch_central(archive, member, **fields)
    local = {"flags": (6, "<H"), "method": (8, "<H")}
    with zipfile.ZipFile(archive) as zf:
        offset = zf.getinfo(member).header_offset
    data = bytearray(archive.read_bytes())
    for key, value in fields.items():
        if key in local:
            off, fmt = local[key]
            struct.pack_into(fmt, data, offset + off, value)
    archive.write_bytes(bytes(data))


def _leftover_extractions() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("lpm-edge-bundle-*")}


def test_packed_bundle_loads_and_leaves_no_temporary_files(packed, tiny_bundle):
    before = _leftover_extractions()
    clf = lpm_edge.load(packed, providers="cpu")
    direct = lpm_edge.load(tiny_bundle, providers="cpu")
    assert clf.predict_proba(["good film", "awful"]).tolist() == direct.predict_proba(["good film", "awful"]).tolist()
    assert _leftover_extractions() == before


@pytest.mark.parametrize("name", ["../escaped.txt", "sub/../../escaped.txt", "/tmp/lpm-edge-escaped.txt"])
def test_member_leaving_the_bundle_is_refused_and_not_written(packed, tmp_path, name):
    evil = _rezip(packed, tmp_path / "evil.zip", {name: b"pwned"})
    before = _leftover_extractions()
    with pytest.raises(BundleError, match="outside the bundle"):
        lpm_edge.load(evil, providers="cpu")
    assert not Path("/tmp/lpm-edge-escaped.txt").exists()
    assert not (Path(tempfile.gettempdir()) / "escaped.txt").exists()
    assert _leftover_extractions() == before


def test_too_many_members_are_refused(packed, tmp_path):
    many = {f"junk/{i}.txt": b"x" for i in range(_bundle.MAX_ZIP_FILES)}
    with pytest.raises(BundleError, match=rf"\d+ files; a bundle has at most {_bundle.MAX_ZIP_FILES}"):
        lpm_edge.load(_rezip(packed, tmp_path / "many.zip", many), providers="cpu")


def test_declared_size_bomb_is_refused_before_extraction(packed, tmp_path):
    bomb = _rezip(packed, tmp_path / "bomb.zip")
    # Each header claims almost 4 GiB: together they are over the limit; nothing is inflated.
    _patch_central(bomb, "model.onnx", file_size=0xFFFFFFF0)
    _patch_central(bomb, "tokenizer.json", file_size=0xFFFFFFF0)
    with pytest.raises(BundleError, match="unpacks to .* above the .* limit"):
        lpm_edge.load(bomb, providers="cpu")


def test_real_compression_bomb_is_refused(tiny_bundle, tmp_path, monkeypatch):
    # 64 MiB of zeros deflate to ~64 KiB; a lowered limit stands in for the 4 GiB one. The bomb is a
    # listed file (with its true hash): an unlisted member is never extracted at all.
    monkeypatch.setattr(_bundle, "MAX_ZIP_BYTES", 16 * 1024**2)
    src = Path(shutil.copytree(tiny_bundle, tmp_path / "src"))
    with open(src / "tokenizer.json", "ab") as f:
        f.write(bytes(64 * 1024**2))
    _relist(src, "tokenizer.json")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in src.iterdir():
            zf.write(path, path.name)
    assert bomb.stat().st_size < 1024**2
    with pytest.raises(BundleError, match="above the .* limit"):
        lpm_edge.load(bomb, providers="cpu")


def _relist(bundle: Path, name: str) -> None:
    """List `name` in the manifest with its current sha256."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256((bundle / name).read_bytes()).hexdigest()}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_member_larger_than_its_header_is_refused(packed, tmp_path):
    forged = _rezip(packed, tmp_path / "forged.zip", stored=True)
    # The header says 100 bytes; the member holds 50 KB. The size check must not trust it.
    _patch_central(forged, "model.onnx", file_size=100)
    with pytest.raises(BundleError, match="model.onnx"):
        lpm_edge.load(forged, providers="cpu")


def test_member_larger_than_its_header_with_matching_crc_is_refused(packed, tmp_path, monkeypatch):
    import zlib

    forged = _rezip(packed, tmp_path / "forged.zip", stored=True)
    with zipfile.ZipFile(forged) as zf:
        head = zf.read("model.onnx")[:100]
    _patch_central(forged, "model.onnx", file_size=100, crc=zlib.crc32(head))
    with pytest.raises(BundleError, match="model.onnx"):
        lpm_edge.load(forged, providers="cpu")


def test_truncated_zip_is_refused(packed, tmp_path):
    cut = tmp_path / "cut.zip"
    cut.write_bytes(packed.read_bytes()[: packed.stat().st_size // 2])
    with pytest.raises(BundleError):
        lpm_edge.load(cut, providers="cpu")


def test_corrupted_deflate_stream_is_refused(packed, tmp_path):
    bad = tmp_path / "bad.zip"
    data = bytearray(packed.read_bytes())
    with zipfile.ZipFile(packed) as zf:
        info = zf.getinfo("model.onnx")
    # Scribble over the start of the compressed data (after the 30-byte local header + name).
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start : start + 64] = bytes(range(64))
    bad.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.onnx|damaged"):
        lpm_edge.load(bad, providers="cpu")


def test_encrypted_member_is_refused(packed, tmp_path):
    enc = _rezip(packed, tmp_path / "enc.zip")
    _local_and_central(enc, "model.onnx", flags=0x1)
    with pytest.raises(BundleError, match="model.onnx"):
        lpm_edge.load(enc, providers="cpu")


def test_unknown_compression_method_is_refused(packed, tmp_path):
    odd = _rezip(packed, tmp_path / "odd.zip")
    _local_and_central(odd, "model.onnx", method=99)
    with pytest.raises(BundleError, match="model.onnx"):
        lpm_edge.load(odd, providers="cpu")


def test_member_colliding_with_a_directory_is_refused(tiny_bundle, tmp_path):
    src = Path(shutil.copytree(tiny_bundle, tmp_path / "src"))
    clash = tmp_path / "clash.zip"
    with zipfile.ZipFile(clash, "w") as zf:
        zf.writestr("model.onnx/inner", b"x")
        manifest = json.loads((src / "manifest.json").read_text())
        manifest["files"]["model.onnx/inner"] = {"sha256": hashlib.sha256(b"x").hexdigest()}
        zf.writestr("manifest.json", json.dumps(manifest))
        for name in ("model.onnx", "tokenizer.json"):
            zf.write(src / name, name)
    with pytest.raises(BundleError, match="model.onnx"):
        lpm_edge.load(clash, providers="cpu")


def test_unlisted_member_colliding_with_a_listed_one_is_ignored(packed, tmp_path):
    clash = _rezip(packed, tmp_path / "clash.zip", {"model.onnx/inner": b"x"})
    assert lpm_edge.load(clash, providers="cpu").predict("good film").label in ("neg", "pos")


def test_zip_without_manifest_is_refused(tmp_path):
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(BundleError, match="no manifest.json"):
        lpm_edge.load(empty, providers="cpu")
