"""PyTorch → ONNX, graph fusion and int8 quantization, each path in, path out."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ExportError
from ..runtime.providers import CPU, disabled_optimizers

if TYPE_CHECKING:
    from ..families import Fusion

log = logging.getLogger("lpm_edge.export")

SUPPORTED_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def input_names(model: Any, tokenizer: Any) -> list[str]:
    """The inputs both the tokenizer produces and the model's forward() takes, in a fixed order."""
    import inspect

    accepted = set(inspect.signature(model.forward).parameters)
    produced = set(tokenizer.model_input_names)
    if getattr(model.config, "type_vocab_size", 1) == 0:  # DeBERTa-v3: takes token types and ignores them
        accepted.discard("token_type_ids")
    names = [n for n in SUPPORTED_INPUTS if n in accepted and n in produced]
    if "input_ids" not in names:
        raise ExportError(f"model {type(model).__name__} does not take input_ids; not a text classifier")
    return names


def to_onnx(model: Any, names: Sequence[str], path: Path, opset: int, task: Any = None) -> None:
    """Export with the TorchScript exporter (about 10× faster than dynamo here; its graph fuses).

    A model that takes token_type_ids whose tokenizer does not produce them (RoBERTa, XLM-R) gets
    zeros shaped like input_ids inside the graph: its own default is a buffer sliced to the
    sequence length, which leaves quant_pre_process's symbolic shape inference incomplete.
    """
    import inspect

    import torch

    zero_types = "token_type_ids" not in names and "token_type_ids" in inspect.signature(model.forward).parameters

    class Logits(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            feeds = dict(zip(names, tensors))
            if zero_types:
                feeds["token_type_ids"] = torch.zeros_like(feeds["input_ids"])  # (B, T)
            out = self.inner(**feeds)
            return task.graph_output(out, feeds) if task is not None else out.logits  # classifiers: (B, labels)

    wrapper = Logits(model).eval()
    # (B, T) each; token type 0 exists in every model (RoBERTa's table has only that one)
    example = tuple((torch.zeros if n == "token_type_ids" else torch.ones)((2, 8), dtype=torch.long) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    output = task.output_name if task is not None else "logits"
    axes[output] = dict(task.output_axes) if task is not None else {0: "batch"}
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(
            wrapper, example, str(path), input_names=list(names), output_names=[output],
            dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    model.eval()  # export restores the modes modules had; keep what we run in eval
    import onnx

    declared = [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]
    if declared != list(names):  # the exporter drops inputs the graph does not use
        raise ExportError(
            f"the exported graph takes {declared}, not {list(names)}: {type(model).__name__} ignores "
            f"{sorted(set(names) - set(declared))}; please report this model type"
        )


def attention_shape(model: Any) -> tuple[int, int]:
    """(heads per layer, hidden size of attention) as the graph has them, pruned or not."""
    from ..families import adapter_for

    return adapter_for(model.config).attention_shape(model)


FUSED_KINDS = {
    "attention": ("Attention", "MultiHeadAttention", "QAttention"),
    "layernorm": ("LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
                  "EmbedLayerNormalization", "SkipSimplifiedLayerNormalization"),
    "gelu": ("Gelu", "FastGelu", "BiasGelu", "QuickGelu"),
    "embed_layernorm": ("EmbedLayerNormalization",),
}


def fuse(
    src: Path, dst: Path, num_heads: int, hidden_size: int, fusion: "Fusion | None" = None, *, skip_layer_norm: bool,
) -> dict[str, Any]:
    """ONNX Runtime's transformer optimizer with a family's settings; returns counts of fused
    operators by kind, what the family expects, and the kinds it expected but did not get.

    skip_layer_norm: fuse each residual Add (and its bias) with the LayerNormalization after it into
    one SkipLayerNormalization. The CPU target leaves them apart: ONNX Runtime's CPU kernel for the
    fused operator measured 2.7-6.3× slower than Add + Add + LayerNormalization (onnxruntime 1.32,
    benchmarks/layernorm_kernels.py), and the runtime's CPU sessions keep ONNX Runtime from fusing
    them again at load (runtime.providers.disabled_optimizers). On CUDA the fused kernel is the fast one."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    from ..families import Fusion

    fusion = fusion or Fusion()
    options = FusionOptions(fusion.model_type)
    options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = skip_layer_norm
    # The optimizer's fusion modules warn about every pattern they skip (for tiny or pruned models,
    # many); what fused is counted below and checked by the caller, so keep only their errors.
    quiet = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith(("fusion", "onnx_model"))]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.ERROR)
    try:
        optimized = optimize_model(
            str(src), model_type=fusion.model_type, num_heads=num_heads, hidden_size=hidden_size, opt_level=0,
            optimization_options=options,
        )
    finally:
        for lg, level in zip(quiet, levels):
            lg.setLevel(level)
    optimized.save_model_to_file(str(dst))
    ops = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    counts = {kind: sum(ops.get(op, 0) for op in names) for kind, names in FUSED_KINDS.items()}
    missing = [kind for kind in fusion.expects if not counts.get(kind)]
    return {"operators": ops, "counts": counts, "num_heads": num_heads, "hidden_size": hidden_size,
            **fusion.to_dict(), "skip_layer_norm": skip_layer_norm, "not_fused": missing}


def quantize_dynamic_int8(
    src: Path, dst: Path, work: Path, per_channel: bool, exclude_nodes: Sequence[str] = (),
    exclude_op_types: Sequence[str] = (), reduce_range: bool = False,
) -> None:
    """Dynamic int8: weights int8 ahead of time, activations quantized per call.

    reduce_range: 7-bit weights (no u8s8 saturation on x86 CPUs without VNNI)."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    prepared = work / "preprocessed.onnx"
    # Shape inference first: without it, fused graphs fail with "Unable to find data type". auto_merge
    # (as the static path has it): DeBERTa's relative positions otherwise leave it "incomplete".
    quant_pre_process(str(src), str(prepared), skip_optimization=True, auto_merge=True)
    op_types = [op for op in IntegerOpsRegistry if op not in set(exclude_op_types)]
    quantize_dynamic(
        str(prepared), str(dst), op_types_to_quantize=op_types, per_channel=per_channel,
        weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude_nodes) or None, reduce_range=reduce_range,
    )


def cpu_session(path: Path, threads: int = 0) -> Any:
    """An ONNX Runtime CPU session on a graph file as the runtime opens one (the same load-time
    optimizations), with spinning off: the export's checks share the cores with torch."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # 0 = one per physical core
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=[CPU], disabled_optimizers=disabled_optimizers([CPU]))


def onnx_logits(path: Path, feeds: Sequence[dict], output: str = "logits") -> list:
    """Run an ONNX file on prepared feeds on the CPU."""
    session = cpu_session(path)
    return [session.run([output], feed)[0] for feed in feeds]
