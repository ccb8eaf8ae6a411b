"""A bundle's fp32 fallback graph must take the same inputs as its main graph."""

from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx", reason="editing a graph needs the export extra (onnx)")

import lpm_edge
from lpm_edge.bundle import FALLBACK_FILE, file_entry
from lpm_edge.errors import BundleError


def _with_fallback(bundle, edit_manifest, graph) -> None:
    onnx.save(graph, str(bundle / FALLBACK_FILE))

    def add(m):
        m["model"]["fp32_fallback"] = {"file": FALLBACK_FILE, "tokens": [0, 8]}
        m["files"][FALLBACK_FILE] = file_entry(bundle / FALLBACK_FILE)

    edit_manifest(bundle, add)


def test_a_fallback_graph_with_other_inputs_is_refused_at_load(bundle_copy, edit_manifest):
    graph = onnx.load(str(bundle_copy / "model.onnx"))
    renamed = "segment_ids"
    for value in graph.graph.input:
        if value.name == "token_type_ids":
            value.name = renamed
    for node in graph.graph.node:
        node.input[:] = [renamed if name == "token_type_ids" else name for name in node.input]
    _with_fallback(bundle_copy, edit_manifest, graph)
    with pytest.raises(BundleError, match=f"{FALLBACK_FILE}: its inputs or providers differ from model.onnx's"):
        lpm_edge.load(bundle_copy, providers="cpu")


def test_a_fallback_graph_like_the_main_one_loads(bundle_copy, edit_manifest):
    _with_fallback(bundle_copy, edit_manifest, onnx.load(str(bundle_copy / "model.onnx")))
    clf = lpm_edge.load(bundle_copy, providers="cpu")
    assert set(clf._sessions) == {"model.onnx", FALLBACK_FILE}
