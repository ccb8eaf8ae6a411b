"""The manifest is untrusted input: its schema is checked, and the contract is pinned by a golden file."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import lpm_edge
from lpm_edge.bundle import MAX_MANIFEST_BYTES, Manifest, read_manifest
from lpm_edge.errors import BundleError

GOLDEN = json.loads((Path(__file__).parent / "golden" / "manifest_schema.json").read_text())


def test_manifest_keys_match_golden(tiny_bundle):
    m = json.loads((tiny_bundle / "manifest.json").read_text())
    assert sorted(m) == GOLDEN["top"]
    assert sorted(m["model"]) == GOLDEN["model"]
    assert sorted(m["tokenizer"]) == GOLDEN["tokenizer"]
    assert sorted(m["files"]) == GOLDEN["files"]
    assert all(sorted(entry) == GOLDEN["file_entry"] for entry in m["files"].values())
    assert sorted(m["metrics"]) == GOLDEN["metrics"]
    assert sorted(m["metrics"]["parity"]) == GOLDEN["parity"]
    assert {k: m[k] for k in GOLDEN["values"]} == GOLDEN["values"]


def test_onnx_inputs_and_outputs_match_golden(tiny_bundle):
    import onnxruntime as ort

    session = ort.InferenceSession(str(tiny_bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [[i.name, i.type, i.shape] for i in session.get_inputs()] == GOLDEN["onnx_inputs"]
    assert [[o.name, o.type, o.shape] for o in session.get_outputs()] == GOLDEN["onnx_outputs"]
    m = json.loads((tiny_bundle / "manifest.json").read_text())
    assert m["model"]["inputs"] == [name for name, _, _ in GOLDEN["onnx_inputs"]]
    assert m["model"]["outputs"] == [name for name, _, _ in GOLDEN["onnx_outputs"]]


def test_manifest_round_trips(tiny_bundle):
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    assert Manifest.from_dict(data).to_dict() == data


def _set(path: str, value: Any) -> Any:
    def change(m: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            m = m[key]
        if value is _DELETE:
            del m[last]
        else:
            m[last] = value

    return change


_DELETE = object()


def _model_entry(value: Any) -> Any:
    def change(m: dict[str, Any]) -> None:
        m["files"]["model.onnx"] = value

    return change


def _fallback(value: Any, version: int = 2) -> Any:
    def change(m: dict[str, Any]) -> None:
        m["schema_version"] = version
        m["model"]["fp32_fallback"] = value

    return change


# (change to a valid manifest, text the BundleError must contain)
SCHEMA_CASES = [
    (_set("format", "something-else"), "not an lpm-edge bundle manifest"),
    (_set("format", _DELETE), "not an lpm-edge bundle manifest"),
    (_set("schema_version", 3), "schema version 3 is not supported"),
    (_set("schema_version", 0), "schema version 0 is not supported"),
    (_fallback({"file": "model-fp32.onnx", "tokens": [0, 32]}), "'model-fp32.onnx' is used but has no entry"),
    (_fallback({"file": "model.onnx", "tokens": [32, 8]}), "'model.fp32_fallback.tokens' must be \\[low, high\\]"),
    (_fallback({"file": "model.onnx", "tokens": [8]}), "'model.fp32_fallback.tokens' must be \\[low, high\\]"),
    (_fallback({"file": "model.onnx", "tokens": [True, 9]}), "'model.fp32_fallback.tokens' must be \\[low, high\\]"),
    (_fallback({"tokens": [0, 9]}), "missing field 'model.fp32_fallback.file'"),
    (_fallback("model.onnx"), "'model.fp32_fallback' has type str"),
    (_set("schema_version", "1"), "'schema_version' has type str"),
    (_set("schema_version", True), "'schema_version' has type bool"),
    (_set("schema_version", _DELETE), "missing field 'schema_version'"),
    (_set("labels", []), "'labels' must be a non-empty list"),
    (_set("labels", ["neg", 1]), "'labels' must be a non-empty list"),
    (_set("labels", "neg,pos"), "'labels' has type str"),
    (_set("labels", ["pos", "pos"]), "'labels' has duplicates"),
    (_set("max_length", 0), "'max_length' 0 is out of range"),
    (_set("max_length", -5), "out of range"),
    (_set("max_length", 10**9), "out of range"),
    (_set("max_length", 12.5), "'max_length' has type float"),
    (_set("model", [1]), "'model' has type list"),
    (_set("model.inputs", []), "must list names"),
    (_set("model.inputs", ["input_ids", None]), "must list names"),
    (_set("model.outputs", []), "must list names"),
    (_set("model.file", 3), "'model.file' has type int"),
    (_set("model.file", "other.onnx"), "'other.onnx' is used but has no entry under 'files'"),
    (_set("model.opset", "17"), "'model.opset' has type str"),
    (_set("tokenizer.pad_id", -1), "'tokenizer.pad_id' -1 is out of range"),
    (_set("files", []), "'files' has type list"),
    (_model_entry("abc"), "missing field 'files.model.onnx.sha256'"),
    (_model_entry({"sha256": "ab" * 31}), "not a sha256 hex digest"),
    (_model_entry({"sha256": "zz" * 32}), "not a sha256 hex digest"),
    (_model_entry({"sha256": "AB" * 32}), "not a sha256 hex digest"),
    (_set("task", "token-classification"), "task 'token-classification' is not supported"),
    (_set("recipe", ["cpu-int8"]), "'recipe' has type list"),
    (_set("metrics", "good"), "'metrics' has type str"),
    (_set("source", 3), "'source' has type int"),
    (_set("build", [1]), "'build' has type list"),
]


@pytest.mark.parametrize("change, message", SCHEMA_CASES)
def test_schema_violations_are_bundle_errors(tiny_bundle, change, message):
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    change(data)
    with pytest.raises(BundleError, match=message):
        Manifest.from_dict(data, where="manifest.json")


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../outside.onnx", "sub/../../x", "a\\b.onnx", "", "nul\x00byte", ".", "sub/"],
)
def test_file_names_leaving_or_abusing_the_bundle_are_refused_by_the_schema(tiny_bundle, name):
    data = json.loads((tiny_bundle / "manifest.json").read_text())
    data["files"][name] = copy.deepcopy(data["files"]["model.onnx"])
    data["model"]["file"] = name
    with pytest.raises(BundleError, match="file name"):
        Manifest.from_dict(data)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not valid JSON"),
        (b"{\"format\": ", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),  # deep nesting: RecursionError inside json
        (b"{\"max_length\": " + b"9" * 5000 + b"}", "not valid JSON"),  # int too long for Python
        (b"null", "expected a JSON object"),
        (b"[]", "expected a JSON object"),
        (b"\"manifest\"", "expected a JSON object"),
        (b"{\"a\": NaN}", "not an lpm-edge bundle manifest"),
        (b" " * (MAX_MANIFEST_BYTES + 1), "too large for a manifest"),
    ],
    ids=["empty", "truncated", "not-utf8", "deep-nesting", "huge-int", "null", "list", "string", "nan", "oversized"],
)
def test_broken_manifest_files_are_bundle_errors_naming_the_file(bundle_copy, content, message):
    (bundle_copy / "manifest.json").write_bytes(content)
    with pytest.raises(BundleError, match=message) as info:
        read_manifest(bundle_copy)
    assert "manifest.json" in str(info.value)
    with pytest.raises(BundleError, match="manifest.json"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_manifest_of_another_version_is_refused_with_the_fix(bundle_copy, edit_manifest):
    edit_manifest(bundle_copy, _set("schema_version", 99))
    with pytest.raises(BundleError, match=r"manifest.json.*version 99.*upgrade lpm-edge or re-export"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_missing_manifest_says_how_to_make_a_bundle(bundle_copy):
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match="no manifest.json.*lpm-edge export"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_manifest_that_is_a_directory_is_refused(bundle_copy):
    (bundle_copy / "manifest.json").unlink()
    (bundle_copy / "manifest.json").mkdir()
    with pytest.raises(BundleError, match="no manifest.json"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_labels_must_match_the_model_output(bundle_copy, edit_manifest):
    edit_manifest(bundle_copy, _set("labels", ["neg", "pos", "meh"]))
    with pytest.raises(BundleError, match=r"shape \[1, 2\].*expected \[1, 3\].*3 labels"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_output_name_must_exist_in_the_model(bundle_copy, edit_manifest):
    edit_manifest(bundle_copy, _set("model.outputs", ["probabilities"]))
    with pytest.raises(BundleError, match=r"output 'probabilities'.*\['logits'\]"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_input_names_must_match_the_model(bundle_copy, edit_manifest):
    edit_manifest(bundle_copy, _set("model.inputs", ["input_ids", "attention_mask"]))
    with pytest.raises(BundleError, match="model inputs"):
        lpm_edge.load(bundle_copy, providers="cpu")
