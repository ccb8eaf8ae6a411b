"""Property tests: manifest parsing and tokenizer loading let only BundleError out, whatever the bytes.

Inputs any of these tests ever broke on are kept in `fuzz_corpus.json` and replayed first, as
explicit cases. LPM_EDGE_FUZZ_EXAMPLES raises the number of generated examples for a longer hunt.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lpm_edge.bundle import Manifest, read_manifest, safe_member
from lpm_edge.errors import BundleError
from lpm_edge.runtime.tokenize import encode_batch, load_tokenizer

CORPUS = json.loads((Path(__file__).parent / "fuzz_corpus.json").read_text())
EXAMPLES = int(os.environ.get("LPM_EDGE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _paths(obj: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path to a value inside a JSON document."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated(draw: st.DrawFn, base: Any) -> Any:
    """`base` with one to three values replaced by arbitrary JSON, or deleted."""
    doc = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(json_values)
            continue
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    return doc


@st.composite
def damaged_bytes(draw: st.DrawFn, base: bytes) -> bytes:
    """`base` truncated, with bytes overwritten or inserted, or replaced outright."""
    kind = draw(st.sampled_from(["truncate", "overwrite", "insert", "random"]))
    if kind == "random":
        return draw(st.binary(max_size=2000))
    at = draw(st.integers(0, len(base)))
    if kind == "truncate":
        return base[:at]
    chunk = draw(st.binary(min_size=1, max_size=16))
    return base[:at] + chunk + base[at + (len(chunk) if kind == "overwrite" else 0) :]


@pytest.fixture(scope="module")
def manifest_dict(tiny_bundle: Path) -> dict[str, Any]:
    return json.loads((tiny_bundle / "manifest.json").read_text())


@pytest.fixture(scope="module")
def tokenizer_bytes(tiny_bundle: Path) -> bytes:
    return (tiny_bundle / "tokenizer.json").read_bytes()


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _check_manifest(data: Any, scratch: Path) -> None:
    """Only BundleError may come out; an accepted manifest is well-formed throughout."""
    try:
        m = Manifest.from_dict(data)
    except BundleError:
        return
    assert Manifest.from_dict(m.to_dict()) == m
    assert len(set(m.labels)) == len(m.labels) > 0
    for name in m.files:
        try:
            safe_member(scratch, name)
        except BundleError:
            pytest.fail(f"from_dict accepted the file name {name!r} that safe_member refuses")


def _check_manifest_bytes(raw: bytes, scratch: Path) -> None:
    (scratch / "manifest.json").write_bytes(raw)
    try:
        read_manifest(scratch)
    except BundleError:
        pass


def _check_tokenizer(raw: bytes, max_length: int) -> None:
    try:
        tok = load_tokenizer(raw, max_length, "tokenizer.json")
    except BundleError as exc:
        assert "tokenizer.json" in str(exc)
        return
    # A tokenizer that loads must then encode any text, truncated to max_length.
    for enc in encode_batch(tok, ["good film", "", "\u2603 \u6f22\u5b57", "awful " * 300]):
        assert len(enc.ids) <= max_length


# -- regression corpus: inputs that broke these functions once --------------------------------

@pytest.mark.parametrize("case", CORPUS["manifest_dicts"], ids=lambda c: c["why"][:40])
def test_corpus_manifest_dicts(case, scratch):
    _check_manifest(case["data"], scratch)


@pytest.mark.parametrize("case", CORPUS["manifest_bytes"], ids=lambda c: c["why"][:40])
def test_corpus_manifest_bytes(case, scratch):
    raw = base64.b64decode(case["b64"]) if "b64" in case else case["text"].encode()
    _check_manifest_bytes(raw, scratch)


@pytest.mark.parametrize("case", CORPUS["tokenizers"], ids=lambda c: c["why"][:40])
def test_corpus_tokenizers(case):
    raw = base64.b64decode(case["b64"]) if "b64" in case else json.dumps(case["json"]).encode()
    _check_tokenizer(raw, case.get("max_length", 32))


# -- generated inputs -------------------------------------------------------------------------

@FUZZ
@given(data=st.data())
def test_fuzz_manifest_from_dict_mutations(manifest_dict, scratch, data):
    _check_manifest(data.draw(mutated(manifest_dict)), scratch)


@FUZZ
@given(doc=json_values)
def test_fuzz_manifest_from_dict_arbitrary_json(scratch, doc):
    _check_manifest(doc, scratch)


@FUZZ
@given(data=st.data())
def test_fuzz_read_manifest_bytes(manifest_dict, scratch, data):
    base = json.dumps(manifest_dict).encode()
    _check_manifest_bytes(data.draw(damaged_bytes(base)), scratch)


@FUZZ
@given(data=st.data(), max_length=st.integers(1, 64))
def test_fuzz_tokenizer_json_mutations(tokenizer_bytes, data, max_length):
    doc = data.draw(mutated(json.loads(tokenizer_bytes)))
    _check_tokenizer(json.dumps(doc).encode(), max_length)


@FUZZ
@given(data=st.data(), max_length=st.integers(1, 64))
def test_fuzz_tokenizer_bytes(tokenizer_bytes, data, max_length):
    _check_tokenizer(data.draw(damaged_bytes(tokenizer_bytes)), max_length)
