"""The peers a user would pick instead of lpm-edge, as bench candidates.

- PyTorch dynamic int8: `torch.ao.quantization.quantize_dynamic` on every `nn.Linear`.
- Hugging Face Optimum: optimum-onnx's ONNX export of the checkpoint, its ORTQuantizer with the
  `AutoQuantizationConfig.avx2(is_static=False)` preset, run by `ORTModelForSequenceClassification`.
- Hugging Face Optimum O2: the same export through ORTOptimizer with `AutoOptimizationConfig.O2()`
  (ONNX Runtime's transformer fusions, fp32): Optimum's fastest path where int8 does not pay (CPUs
  without VNNI).

Each is served the way its documentation shows (transformers' fast tokenizer, torch tensors in).
Heavy: imports torch, transformers and optimum when called.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import BenchError, require
from .candidates import Candidate, ChildSpec, dir_size, softmax, torch_candidate, torch_child, torch_feeds

log = logging.getLogger("lpm_edge.bench")

OPTIMUM_FILE = "model_quantized.onnx"
OPTIMUM_O2_FILE = "model_optimized.onnx"


def torch_int8_candidate(checkpoint: Path, threads: int, max_length: int) -> Candidate:
    """The full model with dynamic int8 `nn.Linear` layers (PyTorch's own post-training quantization)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..reference import TorchClassifier

    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, local_files_only=True).eval()
    with warnings.catch_warnings():  # torch.ao.quantization warns it is deprecated; it is still what users run
        warnings.simplefilter("ignore")
        qmodel = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    ref = TorchClassifier(model=qmodel, tokenizer=tokenizer, threads=threads, max_length=max_length)
    with tempfile.TemporaryDirectory() as tmp:  # what it weighs when saved the usual way
        torch.save(qmodel.state_dict(), Path(tmp) / "model.pt")
        model_bytes = (Path(tmp) / "model.pt").stat().st_size
    size = {"model_bytes": model_bytes,
            "total_bytes": model_bytes + dir_size(checkpoint, ("config.json", "tokenizer*.json", "vocab.txt",
                                                                "special_tokens_map.json"))}
    cand = torch_candidate(ref, "pytorch dynamic int8", "pytorch-int8", str(checkpoint), size,
                           torch_child(checkpoint, max_length, threads, quantize=True))
    cand.info["quantization"] = "torch.ao.quantization.quantize_dynamic({nn.Linear}, qint8); size = torch.save(state_dict)"
    return cand


def optimum_export(checkpoint: Path, out: Path) -> Path:
    """Export with optimum-onnx and quantize with Optimum's AVX2 dynamic preset; return the model dir."""
    require("optimum.onnxruntime", "export")
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    fp32_dir, q_dir = out / "fp32", out / "avx2-dynamic-int8"

    def quantize() -> None:
        ORTModelForSequenceClassification.from_pretrained(checkpoint, export=True, local_files_only=True) \
            .save_pretrained(fp32_dir)
        quantizer = ORTQuantizer.from_pretrained(fp32_dir)  # the saved dir holds one model.onnx
        quantizer.quantize(save_dir=q_dir, quantization_config=AutoQuantizationConfig.avx2(is_static=False))

    return _optimum_step(checkpoint, q_dir, OPTIMUM_FILE, "export or quantize", quantize)


def _optimum_step(checkpoint: Path, out_dir: Path, file_name: str, what: str, step: Callable[[], None]) -> Path:
    """Run one Optimum export step writing `out_dir`, with its failures as one BenchError line; save
    the tokenizer beside the model and check that `file_name` was written."""
    from transformers import AutoTokenizer

    try:
        step()
    except Exception as exc:  # optimum raises plain ValueError/RuntimeError/OSError from many layers
        raise BenchError(f"Optimum could not {what} {checkpoint}: {str(exc)[:300]}; check that "
                         "optimum-onnx is installed with transformers<4.58 (pip install \"lpm-edge[export]\")") from None
    AutoTokenizer.from_pretrained(checkpoint, local_files_only=True).save_pretrained(out_dir)
    if not (out_dir / file_name).is_file():
        raise BenchError(f"Optimum wrote no {file_name} in {out_dir}; files: {sorted(p.name for p in out_dir.iterdir())}")
    return out_dir


def optimum_o2_export(checkpoint: Path, out: Path) -> Path:
    """Export with optimum-onnx (reusing OUT/fp32 when `optimum_export` already wrote it) and fuse
    with ORTOptimizer's O2 level, fp32; return the model dir."""
    require("optimum.onnxruntime", "export")
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTOptimizer
    from optimum.onnxruntime.configuration import AutoOptimizationConfig

    fp32_dir, o2_dir = out / "fp32", out / "o2-fp32"

    def optimize() -> None:
        if not (fp32_dir / "model.onnx").is_file():
            ORTModelForSequenceClassification.from_pretrained(checkpoint, export=True, local_files_only=True) \
                .save_pretrained(fp32_dir)
        optimizer = ORTOptimizer.from_pretrained(fp32_dir)  # the saved dir holds one model.onnx
        optimizer.optimize(save_dir=o2_dir, optimization_config=AutoOptimizationConfig.O2())

    return _optimum_step(checkpoint, o2_dir, OPTIMUM_O2_FILE, "export or optimize (O2)", optimize)


def optimum_o2_candidate(model_dir: Path, threads: int, max_length: int, batch_size: int = 32) -> Candidate:
    """Optimum's O2-fused fp32 model, served as `optimum_candidate` serves its int8 one."""
    return optimum_candidate(model_dir, threads, max_length, batch_size, file_name=OPTIMUM_O2_FILE,
                             name="optimum O2 fused fp32",
                             method="ORTOptimizer + AutoOptimizationConfig.O2() (fp32, no quantization)")


def optimum_candidate(model_dir: Path, threads: int, max_length: int, batch_size: int = 32, *,
                      file_name: str = OPTIMUM_FILE, name: str = "optimum avx2 dynamic int8",
                      method: str = "ORTQuantizer + AutoQuantizationConfig.avx2(is_static=False)") -> Candidate:
    """Optimum's quantized model through ORTModelForSequenceClassification (spinning off, like ours);
    `file_name`, `name` and `method` serve another of Optimum's models the same way."""
    import onnxruntime as ort
    import torch
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer

    from ..reference import TorchClassifier

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    model = ORTModelForSequenceClassification.from_pretrained(
        model_dir, file_name=file_name, session_options=options, provider="CPUExecutionProvider")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    # TorchClassifier's batching (sorted by length, batch_size at a time) around Optimum's model,
    # so the whole-split figures batch the same way for every candidate.
    holder = TorchClassifier(model=_EvalShim(model), tokenizer=tokenizer, max_length=max_length, batch_size=batch_size)

    def run(feed: Any) -> object:
        return model(**feed).logits

    def from_ids(batch: dict[str, np.ndarray]) -> dict[str, Any]:
        return {k: torch.from_numpy(v) for k, v in batch.items() if k in tokenizer.model_input_names}

    return Candidate(
        name=name, kind="optimum", path=str(model_dir),
        predict=lambda texts: softmax(holder.logits(list(texts))),
        encode=lambda texts: torch_feeds(holder, list(texts)), from_ids=from_ids, run=run,
        size={"model_bytes": (model_dir / file_name).stat().st_size,
              "total_bytes": dir_size(model_dir, (file_name, "config.json", "tokenizer*.json", "vocab.txt",
                                                  "special_tokens_map.json"))},
        child=ChildSpec(
            imports="from optimum.onnxruntime import ORTModelForSequenceClassification\n"
                    "from transformers import AutoTokenizer",
            load=f"tok = AutoTokenizer.from_pretrained({str(model_dir)!r})\n"
                 f"model = ORTModelForSequenceClassification.from_pretrained({str(model_dir)!r}, "
                 f"file_name={file_name!r})",
            predict=f"enc = tok(texts, truncation=True, max_length={max_length}, padding=True, return_tensors='pt')\n"
                    "return model(**enc).logits.softmax(-1).numpy()",
        ),
        info={"providers": list(model.providers),
              "ort_threads": threads, "ort_spinning": False,
              "quantization": method,
              "max_length": max_length, "batch_size": batch_size},
        tokenizer=tokenizer.backend_tokenizer,
    )


class _EvalShim:
    """Lets TorchClassifier hold an Optimum model: it calls `.eval()` and reads `.config`."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self.config = model.config

    def eval(self) -> "_EvalShim":
        return self

    def __call__(self, **kwargs: Any) -> Any:
        return self._model(**kwargs)
