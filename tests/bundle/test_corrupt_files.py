"""Truncated, corrupted or wrong-version model.onnx and tokenizer.json give BundleError naming the file.

Each damaged file gets its sha256 rewritten in the manifest, so the damage gets past the hash check
and reaches ONNX Runtime's and tokenizers' parsers. The loads run in a child process: a crash in
native code (a segfault) then fails the test instead of killing the test run.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

REPO = Path(__file__).resolve().parents[2]

# Loads each bundle given on argv and prints one JSON line per bundle.
CHILD = r"""
import json, sys
import lpm_edge
from lpm_edge.errors import BundleError
for path in sys.argv[1:]:
    print(json.dumps({"case": path, "started": True}), flush=True)
    try:
        clf = lpm_edge.load(path, providers="cpu", spin=False)
        clf.predict(["good film", "", "awful " * 400, "\u2603 \u6f22\u5b57 caf\u00e9"])
        outcome, message = "ok", ""
    except BundleError as exc:
        outcome, message = "BundleError", str(exc)
    except Exception as exc:
        outcome, message = type(exc).__name__, str(exc)
    print(json.dumps({"case": path, "outcome": outcome, "message": message}), flush=True)
"""


def _load_all(bundles: list[Path]) -> dict[str, dict[str, str]]:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", CHILD, *map(str, bundles)], capture_output=True, text=True,
                          timeout=300, env=env)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = {d["case"]: d for d in lines if "outcome" in d}
    started = [d["case"] for d in lines if "started" in d]
    assert proc.returncode == 0, (
        f"the child died with {proc.returncode} while loading {started[-1] if started else '?'}: {proc.stderr[-2000:]}"
    )
    return done


def _damaged(base: Path, root: Path, name: str, label: str, damage: Callable[[bytes], bytes], rehash) -> Path:
    bundle = Path(shutil.copytree(base, root / f"{name}-{label}"))
    (bundle / name).write_bytes(damage((bundle / name).read_bytes()))
    rehash(bundle, name)
    return bundle


def _onnx_edit(edit: Callable[[object], None]) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        onnx = pytest.importorskip("onnx")
        model = onnx.load_from_string(data)
        edit(model)
        return model.SerializeToString()

    return damage


def _set_ir(model) -> None:
    model.ir_version = 99


def _set_opset(model) -> None:
    model.opset_import[0].version = 99


def _float_input(model) -> None:
    import onnx

    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT


def _other_graph(_: bytes) -> bytes:
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    out = helper.make_tensor_value_info("logits", TensorProto.INT64, ["batch", "sequence"])
    graph = helper.make_graph([helper.make_node("Identity", ["input_ids"], ["logits"])], "other", [inp], [out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def _scramble(data: bytes) -> bytes:
    return random.Random(0).randbytes(len(data))


def _json_edit(edit: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        tok = json.loads(data)
        edit(tok)
        return json.dumps(tok).encode()

    return damage


def _shift_vocab(tok: dict) -> None:
    # Token ids beyond the model's embedding table: only running the graph can notice.
    tok["model"]["vocab"] = {k: v + 10_000 for k, v in tok["model"]["vocab"].items()}
    for added in tok["added_tokens"]:
        added["id"] += 10_000
    for special in tok["post_processor"]["special_tokens"].values():
        special["ids"] = [i + 10_000 for i in special["ids"]]


MODEL_CASES: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda d: b"",
    "truncated-half": lambda d: d[: len(d) // 2],
    "truncated-1k": lambda d: d[:1000],
    "truncated-10": lambda d: d[:10],
    "header-overwritten": lambda d: b"\xff" * 64 + d[64:],
    "random-bytes": _scramble,
    "text-file": lambda d: b"this is not an onnx model\n" * 100,
    "ir-version-99": _onnx_edit(_set_ir),
    "opset-99": _onnx_edit(_set_opset),
    "float-input": _onnx_edit(_float_input),
    "other-graph": _other_graph,
}

TOKENIZER_CASES: dict[str, Callable[[bytes], bytes]] = {
    "empty": lambda d: b"",
    "truncated-half": lambda d: d[: len(d) // 2],
    "not-utf8": lambda d: b"\xff\xfe" + d,
    "random-bytes": _scramble,
    "json-null": lambda d: b"null",
    "json-list": lambda d: b"[]",
    "json-empty-object": lambda d: b"{}",
    "deep-nesting": lambda d: b"[" * 100_000,
    "version-99": _json_edit(lambda t: t.update(version="99.0")),
    "unknown-model-type": _json_edit(lambda t: t["model"].update(type="Nope")),
    "unk-token-missing": _json_edit(lambda t: t["model"].update(unk_token="[NOT-THERE]")),
    "vocab-empty": _json_edit(lambda t: t["model"].update(vocab={})),
    "ids-beyond-the-model": _json_edit(_shift_vocab),
}


@pytest.mark.parametrize("name, cases", [("model.onnx", MODEL_CASES), ("tokenizer.json", TOKENIZER_CASES)])
def test_damaged_files_give_bundle_errors_naming_the_file(tiny_bundle, tmp_path, rehash, name, cases):
    bundles = {label: _damaged(tiny_bundle, tmp_path, name, label, damage, rehash) for label, damage in cases.items()}
    results = _load_all(list(bundles.values()))
    wrong = {
        label: (results[str(b)]["outcome"], results[str(b)]["message"][:200])
        for label, b in bundles.items()
        if results[str(b)]["outcome"] != "BundleError" or name not in results[str(b)]["message"]
    }
    assert not wrong, wrong


@pytest.mark.parametrize("name", ["model.onnx", "tokenizer.json"])
def test_byte_flips_give_a_bundle_error_or_a_working_classifier(tiny_bundle, tmp_path, rehash, name):
    # A flipped byte may land in a weight and leave a valid file; then the bundle must still work.
    # Anything else (a crash, a raw ONNX Runtime / JSON exception) fails the test.
    size = (tiny_bundle / name).stat().st_size
    offsets = sorted({int(size * k / 24) for k in range(24)} | {0, 1, 2, 3, size - 1})

    def flip(at: int) -> Callable[[bytes], bytes]:
        return lambda d: d[:at] + bytes([d[at] ^ 0xFF]) + d[at + 1 :]

    bundles = {at: _damaged(tiny_bundle, tmp_path, name, f"flip{at}", flip(at), rehash) for at in offsets}
    results = _load_all(list(bundles.values()))
    wrong = {at: (r["outcome"], r["message"][:200]) for at, b in bundles.items()
             if (r := results[str(b)])["outcome"] not in ("ok", "BundleError")}
    assert not wrong, wrong
    refused = [r for r in results.values() if r["outcome"] == "BundleError"]
    assert all(name in r["message"] for r in refused)
