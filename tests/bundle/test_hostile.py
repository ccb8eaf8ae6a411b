"""Hostile bundles: each is refused at load with one BundleError, or fails in predict with an
InferenceError naming the bundle; never a raw ONNX Runtime or tokenizers exception.

Every bundle is loaded in a child process (one for all of them), so that a native crash fails the
test instead of killing the test run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import pytest

import lpm_edge
from lpm_edge import bundle as _bundle
from lpm_edge.bundle import pack_zip
from lpm_edge.errors import BundleError, InferenceError

REPO = Path(__file__).resolve().parents[2]

# Loads each bundle on argv, predicts, prints one JSON line per bundle: where it stopped and how.
CHILD = r"""
import json, sys
import lpm_edge
for path in sys.argv[1:]:
    print(json.dumps({"case": path, "started": True}), flush=True)
    stage = "load"
    try:
        clf = lpm_edge.load(path, providers="cpu", spin=False)
        stage = "predict"
        clf.predict(["good film", "", "awful " * 700])
        stage, error, message = "ok", "", ""
    except Exception as exc:
        error, message = type(exc).__name__, str(exc)
    print(json.dumps({"case": path, "stage": stage, "error": error, "message": message}), flush=True)
"""


def _load_all(bundles: list[Path]) -> dict[str, dict[str, str]]:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, bundles)], capture_output=True, text=True,
                          timeout=300, env=env)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    started = [d["case"] for d in lines if "started" in d]
    assert proc.returncode == 0, (
        f"the child died with {proc.returncode} while loading {started[-1] if started else '?'}: {proc.stderr[-2000:]}"
    )
    return {Path(d["case"]).name: d for d in lines if "stage" in d}


def _set_hash(bundle: Path, name: str) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    data["files"][name]["sha256"] = hashlib.sha256((bundle / name).read_bytes()).hexdigest()
    data["files"][name]["bytes"] = (bundle / name).stat().st_size
    path.write_text(json.dumps(data))


def _edit_json(bundle: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = bundle / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    if name != "manifest.json":
        _set_hash(bundle, name)


def _extra_vocab_entry(tok: dict[str, Any]) -> None:
    # One word the probe text never meets, with an id past the graph's embedding table.
    tok["model"]["vocab"]["awful"] = 10_000


def _special_id_beyond(tok: dict[str, Any]) -> None:
    # The post-processor's [SEP] id is a number in tokenizer.json, unchecked against the vocabulary.
    tok["post_processor"]["special_tokens"]["[SEP]"]["ids"] = [10_000]


def _zip_members(src: Path, dst: Path, rename: Callable[[str], str] = lambda n: n,
                 extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(src.iterdir()):
            zf.write(path, rename(path.name))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return dst


@pytest.fixture(scope="module")
def hostile(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")

    def copy(name: str) -> Path:
        return Path(shutil.copytree(tiny_bundle, root / name))

    cases: dict[str, Path] = {}
    cases["vocab-id-beyond-graph"] = b = copy("vocab-id-beyond-graph")
    _edit_json(b, "tokenizer.json", _extra_vocab_entry)
    cases["special-id-beyond-graph"] = b = copy("special-id-beyond-graph")
    _edit_json(b, "tokenizer.json", _special_id_beyond)
    # The tiny graph has 128 positions; a manifest allowing 500 tokens must not load.
    cases["max-length-beyond-positions"] = b = copy("max-length-beyond-positions")
    _edit_json(b, "manifest.json", lambda m: m.update(max_length=500))
    # A graph taking one text per call passes the one-text probes at load; predict must say what failed.
    try:
        import onnx
    except ImportError:  # the runtime-only environment: no way to edit a graph
        onnx = None
    if onnx is not None:
        cases["one-text-graph"] = b = copy("one-text-graph")
        model = onnx.load(str(b / "model.onnx"))
        for inp in model.graph.input:
            inp.type.tensor_type.shape.dim[0].dim_value = 1
        onnx.save(model, str(b / "model.onnx"))
        _set_hash(b, "model.onnx")
    cases["manifest-duplicate-key"] = b = copy("manifest-duplicate-key")
    text = (b / "manifest.json").read_text()
    (b / "manifest.json").write_text(text.replace('"max_length":', '"max_length": 1000000, "max_length":', 1))
    # Zips: what `zip -r b.zip bundle/` makes; an unlisted bomb beside the bundle's files; a listed one.
    cases["one-folder.zip"] = _zip_members(tiny_bundle, root / "one-folder.zip", lambda n: f"bundle/{n}")
    cases["unlisted-bomb.zip"] = _zip_members(tiny_bundle, root / "unlisted-bomb.zip",
                                              extra={"padding.bin": bytes(64 * 1024**2)})
    b = copy("listed-bomb")
    (b / "tokenizer.json").write_bytes((b / "tokenizer.json").read_bytes() + b" " * (64 * 1024**2))
    _set_hash(b, "tokenizer.json")
    cases["listed-bomb.zip"] = _zip_members(b, root / "listed-bomb.zip")
    cases["traversal.zip"] = _zip_members(tiny_bundle, root / "traversal.zip", extra={"../escaped.txt": b"x"})
    cases["two-bundles.zip"] = _zip_members(tiny_bundle, root / "two-bundles.zip", lambda n: f"a/{n}",
                                            extra={"b/manifest.json": (tiny_bundle / "manifest.json").read_bytes()})
    return cases


@pytest.fixture(scope="module")
def outcomes(hostile: dict[str, Path]) -> dict[str, dict[str, str]]:
    return _load_all(list(hostile.values()))


# case -> (stage where it stopped, error type, a phrase of the message)
EXPECTED = {
    "vocab-id-beyond-graph": ("load", "BundleError", "can emit token id 10000"),
    "special-id-beyond-graph": ("load", "BundleError", "fails on a probe input"),  # every text gets [SEP]
    "max-length-beyond-positions": ("load", "BundleError", "max_length 500 allows"),
    "one-text-graph": ("predict", "InferenceError", "ONNX Runtime failed on a batch of 2 texts x"),
    "manifest-duplicate-key": ("load", "BundleError", "'max_length' appears twice"),
    "one-folder.zip": ("ok", "", ""),
    "unlisted-bomb.zip": ("ok", "", ""),
    "listed-bomb.zip": ("load", "BundleError", "above 20"),
    "traversal.zip": ("load", "BundleError", "outside the bundle"),
    "two-bundles.zip": ("load", "BundleError", "holds several bundles"),
}


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_hostile_bundle(outcomes, hostile, case):
    if case not in hostile:
        pytest.skip(f"{case} needs the onnx package to build")
    stage, error, phrase = EXPECTED[case]
    got = outcomes[hostile[case].name]
    assert (got["stage"], got["error"]) == (stage, error), got
    assert phrase in got["message"]
    assert "\n" not in got["message"].strip()  # one line
    if error:
        assert hostile[case].name in got["message"]  # it names the bundle


def test_only_listed_members_are_extracted(hostile, monkeypatch):
    written: list[str] = []
    real = _bundle._extract_member
    monkeypatch.setattr(_bundle, "_extract_member", lambda zf, m, dest: (written.append(m.filename), real(zf, m, dest)))
    with _bundle.opened(hostile["unlisted-bomb.zip"]) as (directory, manifest):
        assert sorted(p.name for p in directory.iterdir()) == sorted(["manifest.json", *manifest.files])
    assert "padding.bin" not in written and sorted(written) == sorted(["manifest.json", *manifest.files])


def test_ratio_limit_spares_real_bundles(tiny_bundle, tmp_path):
    # The tokenizer of a real bundle deflates 2.4x, well under the limit; small members are never checked.
    packed = pack_zip(tiny_bundle, tmp_path / "b.zip")
    with zipfile.ZipFile(packed) as zf:
        for info in zf.infolist():
            assert info.file_size <= _bundle.ZIP_RATIO_FREE_BYTES or info.file_size <= 20 * info.compress_size
    assert lpm_edge.load(packed, providers="cpu").predict("good film").label in ("neg", "pos")


def test_forged_compressed_size_is_refused(tiny_bundle, tmp_path):
    # A header claiming more compressed bytes than the file holds would make any ratio look tame.
    forged = _zip_members(tiny_bundle, tmp_path / "forged.zip")
    data = bytearray(forged.read_bytes())
    pos = 0
    while True:  # the central directory record of model.onnx
        pos = data.index(b"PK\x01\x02", pos)
        name_len = int.from_bytes(data[pos + 28 : pos + 30], "little")
        if data[pos + 46 : pos + 46 + name_len] == b"model.onnx":
            break
        pos += 4
    data[pos + 20 : pos + 24] = (len(data) * 2).to_bytes(4, "little")  # compressed size
    forged.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="header claims .* compressed bytes"):
        lpm_edge.load(forged, providers="cpu")


def test_duplicate_keys_nested_in_manifest_are_refused():
    data = b'{"format": "lpm-edge-bundle", "files": {"a": {"sha256": "x", "sha256": "y"}}}'
    with pytest.raises(BundleError, match="'sha256' appears twice"):
        _bundle.parse_manifest(data, "m.json")


def test_tokenizer_failure_in_predict_is_an_inference_error(tiny_bundle, monkeypatch):
    clf = lpm_edge.load(tiny_bundle, providers="cpu")

    class Broken:
        def encode_batch(self, texts):
            raise Exception("boom inside tokenizers")

    monkeypatch.setattr(clf, "_tokenizer", Broken())
    with pytest.raises(InferenceError, match=rf"{tiny_bundle.name}: .*tokenizer failed.*boom"):
        clf.predict(["good film"])
    with pytest.raises(TypeError):  # a caller's mistake stays the caller's error
        lpm_edge.load(tiny_bundle, providers="cpu").predict([b"bytes"])  # type: ignore[list-item]


def test_largest_id_counts_the_ids_a_post_processor_inserts(tiny_bundle):
    from tokenizers import Tokenizer

    from lpm_edge.runtime.tokenize import largest_id

    tok = json.loads((tiny_bundle / "tokenizer.json").read_text())
    vocab_top = max(tok["model"]["vocab"].values())
    assert largest_id(Tokenizer.from_str(json.dumps(tok))) == vocab_top
    tok["post_processor"]["special_tokens"]["[X]"] = {"id": "[X]", "ids": [7_000], "tokens": ["[X]"]}
    data = json.dumps(tok).encode()
    assert largest_id(Tokenizer.from_str(data.decode())) == 7_000
    tok["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 8_000]}]}
    data = json.dumps(tok).encode()
    assert largest_id(Tokenizer.from_str(data.decode())) == 8_000
