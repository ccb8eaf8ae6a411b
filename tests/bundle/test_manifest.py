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


def _fallback(value: Any, version: int = 3) -> Any:
    def change(m: dict[str, Any]) -> None:
        m["schema_version"] = version
        m["model"]["fp32_fallback"] = value

    return change


# (change to a valid manifest, text the BundleError must contain)
SCHEMA_CASES = [
    (_set("format", "something-else"), "not an lpm-edge bundle manifest"),
    (_set("format", _DELETE), "not an lpm-edge bundle manifest"),
    (_set("schema_version", 4), "schema version 4 is not supported"),
    (_set("schema_version", 2), "'task' has type dict"),
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
    (_set("task.labels", []), "needs at least 2 labels"),
    (_set("task.labels", ["neg", 1]), "'task.labels' must be a list of strings"),
    (_set("task.labels", "neg,pos"), "'task.labels' has type str"),
    (_set("task.labels", ["pos", "pos"]), "'task.labels' has duplicates"),
    (_set("task.labels", _DELETE), "missing field 'task.labels'"),
    (_set("task.inputs", []), "'task.inputs' must list the input fields"),
    (_set("task.inputs", ["text", 3]), "'task.inputs' must list the input fields"),
    (_set("task.kind", _DELETE), "missing field 'task.kind'"),
    (_set("task.kind", "no-such-task"), "task 'no-such-task' is not supported"),
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
    (_set("task", "text-classification"), "'task' has type str"),
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
    edit_manifest(bundle_copy, _set("task.labels", ["neg", "pos", "meh"]))
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


# A cpu-int8 bundle of the tiny test model written by lpm-edge 0.1.0 before the task section
# (schema version 1: `task` a name, `labels` at the top): bundles in the field must keep loading.
V1_BUNDLE = Path(__file__).parent / "golden" / "v1-bundle"


def test_a_bundle_written_before_the_task_section_still_loads_and_predicts():
    raw = json.loads((V1_BUNDLE / "manifest.json").read_text())
    assert raw["schema_version"] == 1 and raw["task"] == "text-classification" and raw["labels"] == ["neg", "pos"]
    clf = lpm_edge.load(V1_BUNDLE, providers="cpu")
    assert clf.task.kind == "text-classification" and clf.labels == ("neg", "pos")
    preds = clf.predict(["a great film", "a dull film"])
    assert all(p.label in ("neg", "pos") and abs(sum(p.scores.values()) - 1) < 1e-5 for p in preds)
    # read as version 1, written back as the current version with the task as a section
    again = Manifest.from_dict(Manifest.from_dict(raw).to_dict())
    assert again.task == "text-classification" and again.labels == ("neg", "pos") and again.input_fields == ("text",)


def test_asking_a_bundle_for_a_method_its_task_does_not_offer_names_the_ones_it_does(tiny_bundle):
    from lpm_edge.tasks.base import Task

    clf = lpm_edge.load(tiny_bundle, providers="cpu")
    assert set(clf.task.offers) == {"predict", "predict_proba"}

    class Vectors(Task):
        kind, offers = "vectors", ("embed",)

    clf.task = Vectors(clf.labels)
    with pytest.raises(lpm_edge.ConfigError, match=r"is a vectors bundle: it offers embed\(\), not predict\(\)"):
        clf.predict("a great film")
    with pytest.raises(lpm_edge.ConfigError, match=r"not predict_proba\(\)"):
        clf.predict_proba(["a great film"])
