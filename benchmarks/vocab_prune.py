"""Vocabulary pruning of an XLM-R-shaped model: bundle size before and after, fp32 and int8.

No multilingual checkpoint or tokenizer is reachable offline, so both are built here:
- tokenizer: a Unigram (SentencePiece-style: Metaspace, <s> … </s>, pad id 1, as XLM-R's) trained
  with `tokenizers`' UnigramTrainer on every Rotten Tomatoes text (the corpus the XLM-R
  tokenizer's web crawl would have covered), then filled up to XLM-R's 250,002 pieces with
  pieces in other scripts (Cyrillic, Greek, Arabic, Devanagari, Hangul, CJK), scored within the
  trained pieces' range: the share of a multilingual vocabulary an English corpus never uses.
- model: XLMRobertaForSequenceClassification, random weights, of a given shape (default the
  multilingual MiniLM-L12-H384 shape: XLM-R's vocabulary, 12 layers, hidden 384).

Vocabulary pruning keeps what the training split needs (`lpm_edge.export.vocab.prune_vocab`);
each model is exported to ONNX and quantized (dynamic int8, per channel, every op type ONNX
Runtime quantizes, as the cpu recipes do), without fusion (it changes few bytes). Sizes are of
model.onnx and tokenizer.json, measured; the full XLM-R base figures are estimated from parameter
counts unless `--shapes` measures them.

    PYTHONPATH=. .venv/bin/python benchmarks/vocab_prune.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

XLMR_VOCAB = 250_002
SHAPES = {  # name: (hidden, layers, heads, ffn)
    "minilm-l12-h384": (384, 12, 12, 1536),
    "xlmr-base": (768, 12, 12, 3072),
}
SCRIPTS = [(0x430, 0x44F), (0x3B1, 0x3C9), (0x627, 0x64A), (0x915, 0x939), (0xAC00, 0xD7A3), (0x4E00, 0x9FFF)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="minilm-l12-h384", help=f"comma-separated subset of {', '.join(SHAPES)}")
    p.add_argument("--trained-pieces", type=int, default=32_000, help="Unigram pieces trained on the corpus")
    p.add_argument("--vocab", type=int, default=XLMR_VOCAB, help="total pieces (XLM-R: 250,002)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--out", type=Path, required=True, help="folder for vocab_prune.json and vocab_prune.md")
    a = p.parse_args(argv)
    if set(a.shapes.split(",")) - set(SHAPES):
        p.error(f"unknown shapes {a.shapes}; choose from {', '.join(SHAPES)}")
    return a


def build_tokenizer(texts: list[str], trained: int, total: int) -> tuple[Any, dict[str, Any]]:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    start = time.perf_counter()
    tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=trained, special_tokens=specials,
                                                           unk_token="<unk>", show_progress=False))
    train_s = time.perf_counter() - start
    spec = json.loads(tok.to_str())
    pieces = spec["model"]["vocab"]
    learned = len(pieces)
    scores = [s for p, s in pieces if p not in specials]
    low, high = min(scores), max(scores)
    rng = random.Random(0)
    seen = {p for p, _ in pieces}
    while len(pieces) < total - 1:  # (the last id is <mask>, as in XLM-R)
        lo, hi = rng.choice(SCRIPTS)
        space = "▁" if rng.random() < 0.5 else ""
        piece = space + "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 5)))
        if piece not in seen:
            seen.add(piece)
            pieces.append([piece, rng.uniform(low, high)])
    pieces.append(["<mask>", 0.0])
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    tok.add_special_tokens(["<mask>"])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                                   sep_token="</s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                                   model_max_length=512)
    return fast, {"trained_pieces": learned, "train_seconds": round(train_s, 1), "pieces": len(fast)}


def build_model(vocab: int, shape: str, device: str = "cpu") -> Any:
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    hidden, layers, heads, ffn = SHAPES[shape]
    config = XLMRobertaConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
                              num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=514,
                              pad_token_id=1, bos_token_id=0, eos_token_id=2, num_labels=2)
    torch.manual_seed(0)
    with torch.device(device):
        return XLMRobertaForSequenceClassification(config).eval()


def file_sizes(model: Any, tokenizer: Any, work: Path) -> dict[str, int]:
    """model.onnx (fp32 and dynamic int8) and tokenizer.json bytes, as a bundle ships them."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    from lpm_edge.export.onnx_graph import to_onnx
    from lpm_edge.export.pipeline import _save_tokenizer

    work.mkdir(parents=True, exist_ok=True)
    fp32, int8 = work / "fp32.onnx", work / "int8.onnx"
    to_onnx(model, ["input_ids", "attention_mask"], fp32, opset=17)
    # quantize_dynamic_int8's settings, without its shape-inference pass (which an unfused XLM-R
    # graph fails today: "Incomplete symbolic shape inference"; it only matters for fused graphs)
    quantize_dynamic(str(fp32), str(int8), op_types_to_quantize=list(IntegerOpsRegistry), per_channel=True,
                     weight_type=QuantType.QInt8)
    _save_tokenizer(tokenizer, work / "tokenizer.json")
    sizes = {"fp32_onnx": fp32.stat().st_size, "int8_onnx": int8.stat().st_size,
             "tokenizer_json": (work / "tokenizer.json").stat().st_size}
    for f in work.iterdir():
        f.unlink()
    return sizes


def estimate(vocab_rows: int, shape: str) -> dict[str, int]:
    """Bytes from parameter counts: fp32 4 a weight; int8 1 a matrix weight (dynamic int8 quantizes
    every MatMul and Gather weight), 4 a vector weight (biases, LayerNorm)."""
    model = build_model(vocab_rows, shape, device="meta")
    matrices = sum(p.numel() for p in model.parameters() if p.dim() >= 2)
    vectors = sum(p.numel() for p in model.parameters() if p.dim() < 2)
    return {"parameters": matrices + vectors, "fp32_onnx": 4 * (matrices + vectors),
            "int8_onnx": matrices + 4 * vectors}


def wordpiece_minilm(data: Any, max_length: int) -> dict[str, Any]:
    """The same pruning for the built-in MiniLM's WordPiece tokenizer (tokenizer only)."""
    from transformers import AutoTokenizer

    from lpm_edge.assets import builtin_model_dir
    from lpm_edge.export.vocab import changed_texts, prune_tokenizer, unk_rate

    tokenizer = AutoTokenizer.from_pretrained(builtin_model_dir())
    small, keep, info = prune_tokenizer(tokenizer, list(data.train.texts))
    texts = list(data.validation.texts)
    return {"before": len(tokenizer), "after": len(keep), **info,
            "eval_texts_changed": changed_texts(tokenizer, small, texts, max_length), "eval_texts": len(texts),
            "eval_unk_rate_before": unk_rate(tokenizer, texts, max_length),
            "eval_unk_rate_after": unk_rate(small, texts, max_length)}


def logit_diff(full: Any, full_tok: Any, pruned: Any, pruned_tok: Any, texts: list[str], max_length: int) -> float:
    import torch

    settings = dict(padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        a = full(**full_tok(texts, **settings)).logits
        b = pruned(**pruned_tok(texts, **settings)).logits
    return float((a - b).abs().max())


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from lpm_edge import sysinfo
    from lpm_edge.data import load_dataset
    from lpm_edge.export.pipeline import _prune_vocab

    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_dataset("rotten-tomatoes")
    corpus = list(data.train.texts) + list(data.validation.texts) + list(data.test.texts)
    tokenizer, tok_info = build_tokenizer(corpus, args.trained_pieces, args.vocab)
    log(f"tokenizer: {tok_info}")
    result: dict[str, Any] = {"machine": sysinfo.machine(), "tokenizer": tok_info, "texts": {
        "train": len(data.train.texts), "validation": len(data.validation.texts)}, "shapes": {}}
    with tempfile.TemporaryDirectory(prefix="vocab-prune-") as tmp:
        for shape in args.shapes.split(","):
            model = build_model(len(tokenizer), shape)
            start = time.perf_counter()
            pruned, pruned_tok, compression = _prune_vocab(model, tokenizer, data, list(data.validation.texts),
                                                           args.max_length, {})
            prune_s = time.perf_counter() - start
            vocab = compression["vocab"]
            diff = logit_diff(model, tokenizer, pruned, pruned_tok, list(data.train.texts[:32]), args.max_length)
            log(f"{shape}: {vocab} in {prune_s:.1f} s, max |Δlogit| on 32 training texts {diff:.2e}")
            before = file_sizes(model, tokenizer, Path(tmp) / "full")
            after = file_sizes(pruned, pruned_tok, Path(tmp) / "pruned")
            log(f"{shape}: full {before}, pruned {after}")
            result["shapes"][shape] = {"shape": dict(zip(("hidden", "layers", "heads", "ffn"), SHAPES[shape])),
                                       "vocab": vocab, "prune_seconds": round(prune_s, 1),
                                       "max_abs_logit_diff_train": diff, "full": before, "pruned": after,
                                       "estimate_full": estimate(vocab["before"], shape),
                                       "estimate_pruned": estimate(vocab["after"], shape)}
            del model, pruned
    result["minilm_wordpiece"] = wordpiece_minilm(data, args.max_length)
    log(f"MiniLM WordPiece: {result['minilm_wordpiece']}")
    kept = next(iter(result["shapes"].values()))["vocab"]["after"]
    result["xlmr_base_estimate"] = {"full": estimate(XLMR_VOCAB, "xlmr-base"), "pruned": estimate(kept, "xlmr-base"),
                                    "rows_kept": kept}
    return result


def markdown(r: dict[str, Any]) -> str:
    mb = lambda n: f"{n / 1e6:,.1f} MB"  # noqa: E731
    cpu = r["machine"]["cpu"]
    t = r["tokenizer"]
    lines = [
        "# Vocabulary pruning: an XLM-R-shaped model on Rotten Tomatoes",
        "",
        f"Machine: {cpu['model']}, {cpu['cores']} cores (VNNI: {cpu['vnni']}). Command: "
        "`PYTHONPATH=. .venv/bin/python benchmarks/vocab_prune.py --out benchmarks/results`.",
        "",
        f"Tokenizer: Unigram, {t['trained_pieces']:,} pieces trained on the Rotten Tomatoes texts "
        f"({t['train_seconds']} s), filled to {t['pieces']:,} with pieces of other scripts (XLM-R's size). "
        f"Pruned on the {r['texts']['train']:,} training texts; changes counted on the "
        f"{r['texts']['validation']:,} validation texts (max length 128). Random weights.",
        "",
        "| shape | rows kept | training texts changed | validation texts changed | `<unk>` share (val) | "
        "max abs Δlogit (train) | fp32 model.onnx | int8 model.onnx | tokenizer.json |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in r["shapes"].items():
        v, f, p = s["vocab"], s["full"], s["pruned"]
        lines.append(
            f"| {name} | {v['after']:,} of {v['before']:,} ({v['after'] / v['before']:.1%}) | "
            f"{v['train_texts_changed']} | {v['eval_texts_changed']:,} of {v['eval_texts']:,} | "
            f"{v['eval_unk_rate_before']:.4f} → {v['eval_unk_rate_after']:.4f} | "
            f"{s['max_abs_logit_diff_train']:.1e} | "
            f"{mb(f['fp32_onnx'])} → {mb(p['fp32_onnx'])} | {mb(f['int8_onnx'])} → {mb(p['int8_onnx'])} | "
            f"{mb(f['tokenizer_json'])} → {mb(p['tokenizer_json'])} |")
    lines += ["", "Pruning itself (tokenizing the training texts, rewriting the tokenizer, copying the model) took "
              + ", ".join(f"{s['prune_seconds']} s ({name})" for name, s in r["shapes"].items())
              + " on this shared machine."]
    w = r["minilm_wordpiece"]
    lines += ["", f"The built-in MiniLM's WordPiece tokenizer, pruned on the same training texts: "
              f"{w['after']:,} of {w['before']:,} rows, {w['train_texts_changed']} training texts changed, "
              f"{w['eval_texts_changed']:,} of {w['eval_texts']:,} validation texts changed, `[UNK]` share "
              f"{w['eval_unk_rate_before']:.5f} → {w['eval_unk_rate_after']:.5f}."]
    lines += ["", "Estimated from parameter counts (fp32: 4 bytes a weight; int8: 1 byte a matrix weight, "
              "4 a vector weight), against the measured files above:", "",
              "| model | parameters | fp32 | int8 |", "|---|---|---|---|"]
    for name, s in r["shapes"].items():
        for which in ("full", "pruned"):
            e = s[f"estimate_{which}"]
            lines.append(f"| {name}, {which} (measured: {mb(s[which]['fp32_onnx'])}, {mb(s[which]['int8_onnx'])}) | "
                         f"{e['parameters'] / 1e6:.1f}M | {mb(e['fp32_onnx'])} | {mb(e['int8_onnx'])} |")
    x = r["xlmr_base_estimate"]
    for which in ("full", "pruned"):
        e = x[which]
        rows = f"{x['rows_kept']:,} rows" if which == "pruned" else "250,002 rows"
        lines.append(f"| XLM-R base (hidden 768, 12 layers), {which}, {rows} (estimate) | "
                     f"{e['parameters'] / 1e6:.1f}M | {mb(e['fp32_onnx'])} | {mb(e['int8_onnx'])} |")
    return "\n".join(lines) + "\n"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")  # (quantization logs every tensor at INFO)
    logging.getLogger("lpm_edge").setLevel(logging.INFO)
    result = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "vocab_prune.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "vocab_prune.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
