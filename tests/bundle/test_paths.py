"""Every file is checked by sha256 before use, and nothing outside the bundle is ever read."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from pathlib import Path
from typing import Callable

import pytest

import lpm_edge
from lpm_edge.bundle import opened
from lpm_edge.errors import BundleError


def _finishes(fifo: Path, call: Callable[[], None], seconds: float = 20.0) -> BaseException | None:
    """Run `call` in a thread; fail the test, instead of hanging it, if `call` blocks on `fifo`."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with open(fifo, "wb"):  # unblock the reader so the thread can end
            pass
        thread.join(5)
        pytest.fail(f"loading blocked on the FIFO {fifo}")
    return outcome[0]


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json"])
def test_sha256_mismatch_is_refused_naming_the_file(bundle_copy, name):
    _flip_last_byte(bundle_copy / name)
    with pytest.raises(BundleError, match=rf"{name}: sha256 .* does not match .*re-export"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_file_listed_but_missing_is_refused(bundle_copy):
    (bundle_copy / "tokenizer.json").unlink()
    with pytest.raises(BundleError, match="lacks tokenizer.json"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_listed_file_that_is_a_directory_is_refused(bundle_copy):
    (bundle_copy / "model.onnx").unlink()
    (bundle_copy / "model.onnx").mkdir()
    with pytest.raises(BundleError, match="lacks model.onnx"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_listed_file_that_is_a_fifo_is_refused_without_blocking(bundle_copy):
    (bundle_copy / "model.onnx").unlink()
    os.mkfifo(bundle_copy / "model.onnx")  # opening it for reading would block forever
    error = _finishes(bundle_copy / "model.onnx", lambda: lpm_edge.load(bundle_copy, providers="cpu"))
    assert isinstance(error, BundleError) and "lacks model.onnx" in str(error)


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json", "manifest.json"])
def test_symlink_pointing_out_of_the_bundle_is_refused_even_with_the_right_hash(bundle_copy, tmp_path, name):
    # The target outside holds exactly the expected bytes: only the path check can refuse it.
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    shutil.move(bundle_copy / name, outside)
    (bundle_copy / name).symlink_to(outside)
    with pytest.raises(BundleError, match="outside the bundle"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_symlink_staying_inside_the_bundle_is_accepted(bundle_copy):
    (bundle_copy / "weights").mkdir()
    shutil.move(bundle_copy / "model.onnx", bundle_copy / "weights" / "model.onnx")
    (bundle_copy / "model.onnx").symlink_to("weights/model.onnx")
    assert lpm_edge.load(bundle_copy, providers="cpu").predict("good").label in ("neg", "pos")


def test_bundle_directory_reached_through_a_symlink_loads(bundle_copy, tmp_path):
    link = tmp_path / "link-to-bundle"
    link.symlink_to(bundle_copy)
    assert lpm_edge.load(link, providers="cpu").labels == ("neg", "pos")


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_manifest_naming_a_file_outside_is_refused_even_with_its_hash(bundle_copy, tmp_path, edit_manifest, where):
    outside = tmp_path / "secret.onnx"
    shutil.copyfile(bundle_copy / "model.onnx", outside)
    name = str(outside) if where == "absolute" else "../secret.onnx"
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()

    def point_out(m):
        m["files"][name] = {"sha256": digest, "bytes": outside.stat().st_size}
        m["model"]["file"] = name

    edit_manifest(bundle_copy, point_out)
    with pytest.raises(BundleError, match="file name"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_unlisted_extra_files_are_ignored(bundle_copy):
    (bundle_copy / "README.txt").write_text("not part of the contract")
    (bundle_copy / "evil.py").write_text("raise SystemExit('never run')")
    assert lpm_edge.load(bundle_copy, providers="cpu").predict("good").label in ("neg", "pos")


def test_missing_bundle_and_wrong_kind_of_file(tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        lpm_edge.load(tmp_path / "nope", providers="cpu")
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"\x00" * 100)
    with pytest.raises(BundleError, match="neither a bundle directory nor a .zip"):
        lpm_edge.load(plain, providers="cpu")


def test_bundle_path_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "bundle.zip"
    os.mkfifo(fifo)  # zipfile.is_zipfile would block opening it

    def open_it() -> None:
        with opened(fifo):
            pass

    error = _finishes(fifo, open_it)
    assert isinstance(error, BundleError) and "neither a bundle directory nor a .zip" in str(error)


@pytest.mark.parametrize("where", ["working-directory", "bundle"])
def test_graph_with_external_data_is_refused(bundle_copy, tmp_path, rehash, monkeypatch, where):
    # ONNX Runtime resolves external data of a graph loaded from bytes against the working
    # directory: without a guard, a bundle could read files there into its (unhashed) weights.
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto

    model = onnx.load_from_string((bundle_copy / "model.onnx").read_bytes())
    weight = max((i for i in model.graph.initializer if i.raw_data), key=lambda i: len(i.raw_data))
    cwd = tmp_path / "app"
    cwd.mkdir()
    for folder in (cwd, bundle_copy):
        (folder / "weights.bin").write_bytes(weight.raw_data)
    location = {"location": "weights.bin", "offset": "0", "length": str(len(weight.raw_data))}
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in location.items():
        weight.external_data.add(key=key, value=value)
    (bundle_copy / "model.onnx").write_bytes(model.SerializeToString())
    rehash(bundle_copy, "model.onnx")
    monkeypatch.chdir(cwd if where == "working-directory" else bundle_copy)
    with pytest.raises(BundleError, match=r"model.onnx: ONNX Runtime cannot load it .*xternal"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_other_listed_file_is_checked_too(bundle_copy, edit_manifest):
    # load() hashes model.onnx and tokenizer.json as it reads them; any other listed file is
    # still checked, once, before use.
    (bundle_copy / "labels.txt").write_text("neg\npos\n")

    def list_it(m):
        m["files"]["labels.txt"] = {"sha256": "0" * 64, "bytes": 8}

    edit_manifest(bundle_copy, list_it)
    with pytest.raises(BundleError, match=r"labels.txt: sha256 .* does not match"):
        lpm_edge.load(bundle_copy, providers="cpu")
