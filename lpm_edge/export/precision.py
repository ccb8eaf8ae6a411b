"""Precision conversions beyond dynamic int8: static QDQ int8 (calibrated) and fp16 for CUDA.

Path in, path out, like onnxruntime.quantization. Static int8 is calibrated on a bounded sample
of training texts; fp16 keeps int64 inputs and float32 logits so the runtime feeds it as it
feeds any other bundle.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..errors import ConfigError, ExportError
from .batches import Progress, shuffled

log = logging.getLogger("lpm_edge.export")
CALIBRATION_BATCH = 8
# Quantizing only the matrix products keeps LayerNorm, Softmax and GELU in float: they are cheap
# and the most sensitive to int8 error. TensorRT fuses around the QDQ pairs it finds.
STATIC_OP_TYPES = ("MatMul", "Gemm")


def convert(
    graph: Path, work: Path, recipe: Any, student: Any, source: Any, calibration: Sequence[str] = ()
) -> Path:
    """Apply recipe.quantize.mode 'static' or 'fp16' to `graph`; return the new graph's path.

    calibration: training texts for static int8 (a sample of quantize.calibration_samples is used).
    """
    q = recipe.quantize
    if q.mode == "static":
        dst = work / "int8-qdq.onnx"
        static_quantizer(graph, work, recipe, source, calibration)(dst, q.exclude_nodes)
        return dst
    if q.mode == "fp16":
        dst = work / "fp16.onnx"
        to_fp16(graph, dst)
        return dst
    raise ConfigError(f"quantize.mode={q.mode!r} is not a precision conversion; use 'static' or 'fp16'")


def static_quantizer(
    graph: Path, work: Path, recipe: Any, source: Any, calibration: Sequence[str]
) -> Callable[[Path, Sequence[str]], None]:
    """A function (dst, nodes_to_exclude) writing `graph` in static QDQ int8 as the recipe asks."""
    q = recipe.quantize
    texts = calibration_sample(calibration, q.calibration_samples)
    if not texts:
        raise ConfigError("quantize.mode = 'static' needs training texts to calibrate on; the dataset has none")
    names = _graph_inputs(graph)

    def encode(batch: Sequence[str]) -> dict[str, Any]:
        from ..pairs import hf_tokenize

        enc = hf_tokenize(source.tokenizer, batch, truncation=True, max_length=source.max_length, padding=True,
                          return_tensors="np")
        return {n: enc[n].astype("int64") for n in names}  # each (B, T)

    def run(dst: Path, exclude_nodes: Sequence[str]) -> None:
        quantize_static_int8(graph, dst, work, texts, encode, per_channel=q.per_channel,
                             symmetric_activations=recipe.target == "cuda", exclude_nodes=exclude_nodes,
                             exclude_op_types=q.exclude_op_types, reduce_range=q.reduce_range)

    return run


def calibration_sample(texts: Sequence[str], n: int) -> list[str]:
    """A fixed random sample of at most n texts (not the first n: files are often sorted)."""
    return [texts[i] for i in sorted(shuffled(len(texts))[:n])]


def _graph_inputs(path: Path) -> list[str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def calibration_reader(texts: Sequence[str], encode: Any, batch_size: int = CALIBRATION_BATCH) -> Any:
    """An onnxruntime CalibrationDataReader over `texts`, tokenized one batch at a time.

    Only one batch of feeds exists at a time, so memory does not grow with the sample size.
    """
    from onnxruntime.quantization import CalibrationDataReader

    class TextReader(CalibrationDataReader):
        """Feeds batches of texts, each padded to its longest member."""

        def __init__(self) -> None:
            self.total = (len(texts) + batch_size - 1) // batch_size
            self.progress = Progress(self.total, "calibrate", unit="batches")
            self._it = self._batches()

        def _batches(self) -> Iterator[dict[str, Any]]:
            for start in range(0, len(texts), batch_size):
                yield encode(texts[start : start + batch_size])
                self.progress.update()
            self.progress.close()

        def get_next(self) -> dict[str, Any] | None:
            return next(self._it, None)

        def rewind(self) -> None:
            self._it = self._batches()

        def __len__(self) -> int:
            return self.total

    return TextReader()


def quantize_static_int8(
    src: Path, dst: Path, work: Path, texts: Sequence[str], encode: Any, *, per_channel: bool = True,
    symmetric_activations: bool = False, exclude_nodes: Sequence[str] = (), exclude_op_types: Sequence[str] = (),
    reduce_range: bool = False,
) -> None:
    """Static QDQ int8: weights int8, activation ranges calibrated (MinMax) on `texts`.

    symmetric_activations: int8 activations with a zero point of 0, as TensorRT requires;
    otherwise uint8 activations (U8S8), the faster choice for x86 CPUs.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    prepared = work / "preprocessed-static.onnx"
    # Shape inference first: without it, fused graphs fail with "Unable to find data type".
    # auto_merge: the unfused export's batch/sequence dims otherwise stop symbolic inference.
    quant_pre_process(str(src), str(prepared), skip_optimization=True, auto_merge=True)
    op_types = [op for op in STATIC_OP_TYPES if op not in set(exclude_op_types)]
    if not op_types:
        raise ConfigError(f"quantize.exclude_op_types={list(exclude_op_types)} leaves nothing to quantize "
                          f"(static int8 quantizes {', '.join(STATIC_OP_TYPES)}); use quantize.mode = 'none'")
    log.info("calibrating static int8 on %d texts", len(texts))
    try:
        quantize_static(
            str(prepared), str(dst), calibration_reader(texts, encode), quant_format=QuantFormat.QDQ,
            op_types_to_quantize=op_types, per_channel=per_channel,
            activation_type=QuantType.QInt8 if symmetric_activations else QuantType.QUInt8,
            weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude_nodes) or None,
            calibrate_method=CalibrationMethod.MinMax, reduce_range=reduce_range,
            # MinMax keeps only each tensor's per-batch min and max, so memory stays small; its
            # CalibMaxIntermediateOutputs option is avoided: ORT 1.32 discards (not merges) those batches.
            extra_options={"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True},
        )
    except (ValueError, RuntimeError) as exc:
        raise ExportError(f"static int8 quantization failed ({str(exc)[:300]}); try quantize.mode = 'dynamic' "
                          "(CPU) or exclude the failing node with quantize.exclude_nodes") from None


def to_fp16(src: Path, dst: Path) -> None:
    """Float weights and activations to fp16; inputs (int64) and logits (float32) keep their types."""
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = OnnxModel(onnx.load(str(src)))
    # keep_io_types: the runtime feeds int64 ids and reads float32 logits whatever the precision.
    model.convert_float_to_float16(keep_io_types=True, use_symbolic_shape_infer=True)
    model.save_model_to_file(str(dst))
