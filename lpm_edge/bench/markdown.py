"""Markdown rendering of a bench report document (the dict of `Report.to_dict`)."""

from __future__ import annotations

from typing import Any, Iterable

DASH = "—"


def _row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def _ms(s: dict[str, float] | None, full: bool = True) -> str:
    if not s:
        return DASH
    if not full:
        return f"{s['median_ms']:.2f}"
    return f"{s['median_ms']:.2f} / {s['p90_ms']:.2f} / {s['p95_ms']:.2f} / {s['p99_ms']:.2f}"


def _ratio(x: float | None) -> str:
    return DASH if x is None else f"{x:.2f}×"


def machine_line(machine: dict[str, Any]) -> str:
    """One sentence: CPU, cores, instruction-set flags, platform, key library versions."""
    cpu = machine["cpu"]
    flags = ", ".join(k for k, v in cpu["flags"].items() if v) or "none of AVX2/AVX-512/VNNI/AMX"
    libs = ", ".join(f"{k} {v}" for k, v in machine.get("libraries", {}).items())
    cls = f"CPU class {cpu['class']}: " if cpu.get("class") else ""
    return (f"{cls}{cpu['model']}, {cpu['cores']} cores (flags: {flags}; VNNI {'yes' if cpu.get('vnni') else 'no'}), "
            f"{machine.get('platform', '?')}, Python {machine.get('python', '?')}; {libs}")


def _load_lines(load: dict[str, Any] | None) -> list[str]:
    if not load or load.get("other_processes_cpu_share") is None:
        return []
    avg = load.get("loadavg_start"), load.get("loadavg_end")
    text = (f"Machine load: other processes used {load['other_processes_cpu_share'] * 100:.0f}% of the "
            f"{load['cpus']} CPUs during this {load['seconds'] / 60:.1f}-minute run"
            + (f" (1-minute load average {avg[0][0]:.1f} at the start, {avg[1][0]:.1f} at the end)." if all(avg) else "."))
    if load.get("busy"):
        busiest = max(load.get("by_stage", {}).items(), key=lambda kv: kv[1] or 0, default=None)
        text += (" **The machine was busy: these figures are disturbed**, torch's most (its OpenMP threads wait "
                 "for the slowest one at every step, so a core taken by another process stalls it)"
                 + (f"; busiest stage: {busiest[0]} ({busiest[1] * 100:.0f}%)." if busiest and busiest[1] else "."))
    return [text, ""]


def _int8_without_vnni(doc: dict[str, Any]) -> list[str]:
    """A note when an int8 bundle was timed on a CPU without VNNI, where int8 gains far less."""
    cpu = doc["machine"].get("cpu", {})
    int8 = [c["name"] for c in doc["candidates"]
            if (c.get("info") or {}).get("quantize") in ("dynamic", "static")]
    if not int8 or cpu.get("vnni", True):
        return []
    return [f"**int8 on a CPU without VNNI** ({cpu.get('class', '?')}): {', '.join(int8)} ran without int8 dot-product "
            "instructions; dynamic int8 was measured at 1.35× and 2.4× the reference's throughput on two such 2-core "
            "CPUs against 3.6–4.2× with AVX-512 VNNI, so these ratios do not carry to another CPU class.", ""]


def _metric(c: dict[str, Any]) -> str:
    """The candidate's budget metric: accuracy as a percentage, any other (regression's spearman) as is."""
    name = c.get("metric", "accuracy")
    value = c.get(name)
    if not isinstance(value, (int, float)):
        return DASH
    return f"{value * 100:.2f}%" if name == "accuracy" else f"{value:.4f}"


def _others(c: dict[str, Any]) -> str:
    """The task's other metrics of a task that is not single-label classification (regression: mse, mae, ...)."""
    skip = {c.get("metric"), "loss_points", "loss_ci95", "agreement", "metric", "accuracy_pass_s"}
    return ", ".join(f"{k} {v:.4f}" for k, v in c.items() if k not in skip and isinstance(v, float)) or DASH


def render(doc: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    cands = doc["candidates"]
    data, method = doc["data"], doc["method"]
    names = [c["name"] for c in cands]
    lines = [
        "# lpm-edge benchmark", "",
        f"Data: {data['name']}, {data['split']} split, {data['n']} texts"
        + (f" of {data['source']}" if data.get("source") else "")
        + (f" ({data['dropped_overlap']} dropped: also in an earlier split)" if data.get("dropped_overlap") else "")
        + f" (labels: {', '.join(data['labels'])}). "
        f"Reference: {doc['reference']}. Created {doc['created']} with lpm-edge {doc['lpm_edge']}.", "",
        f"Machine: {machine_line(doc['machine'])}.", "",
    ]
    lines += _int8_without_vnni(doc)
    lines += _load_lines(method.get("machine_load"))
    if doc.get("command"):
        lines += [f"Command: `{doc['command']}`", ""]

    metric = cands[0].get("metric") or "accuracy"  # the task's budget metric (bench reports write it)
    label = metric.replace("_f1", "-F1").replace("_", " ")
    lines += ["## Summary: each model against the reference", ""]
    rows = []
    for c in cands:
        vs = c["vs_reference"]
        loss = DASH if c.get("loss_points") is None else f"{c['loss_points']:+.2f}"
        rows.append([c["name"], _metric(c), loss, _ratio(vs.get("end_to_end_b1_speedup")),
                     _ratio(vs.get("model_only_b1_speedup")), _ratio(vs.get("throughput_ratio")),
                     _ratio(vs.get("peak_rss_ratio")), _ratio(vs.get("cold_start_ratio")),
                     _ratio(vs.get("model_size_ratio"))])
    lines += _table(["model", label, "loss, points", "speed-up, batch 1 end to end", "speed-up, batch 1 model only",
                     "throughput ×", "peak RSS ×", "cold start ×", "model size ×"], rows)
    lines += ["Speed-ups and throughput: higher is better. Peak RSS, cold start and size: the candidate's "
              "over the reference's, lower is better.", ""]

    lines += ["## Accuracy" if metric == "accuracy" else f"## {label[0].upper()}{label[1:]}", ""]
    rows = []
    for c in cands:
        ci = c.get("loss_ci95")
        loss = DASH if c.get("loss_points") is None else (
            f"{c['loss_points']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]")
        agree = DASH if c.get("agreement") is None else f"{c['agreement'] * 100:.1f}%"
        if metric == "accuracy":
            rows.append([c["name"], _metric(c), f"{c['macro_f1']:.4f}", loss, agree])
        else:
            rows.append([c["name"], _metric(c), _others(c), loss, agree])
    others = "macro-F1" if metric == "accuracy" else "other metrics"
    lines += _table(["model", label, others, "loss vs reference, points [95% CI]", "agreement"], rows)
    lines += [f"Loss = reference {label} − candidate {label} (positive = worse)"
              + ("" if metric == "accuracy" else ", × 100") + ", with a paired bootstrap "
              f"95% interval ({method.get('bootstrap_resamples')} resamples of the {data['n']} texts); "
              "agreement = share of texts where the candidate predicts the reference's label"
              + (" (— where the task has no discrete decisions)." if metric != "accuracy" else "."), ""]

    batches = [str(b) for b in method["batch_sizes"]]
    lines += ["## Latency on real texts", "",
              "Milliseconds per call, median / p90 / p95 / p99; a call classifies a batch of texts from the split.", ""]
    for mode, title in (("end_to_end", "End to end (tokenization included)"), ("model_only", "Model only (inputs tokenized beforehand)")):
        rows = []
        for c in cands:
            lat = c["latency"]["batch"]
            rows.append([c["name"], *(_ms(lat.get(b, {}).get(mode)) for b in batches),
                         _ratio(c["vs_reference"].get(f"{mode}_b1_speedup"))])
        lines += [f"**{title}**", ""]
        lines += _table(["model", *(f"batch {b}" for b in batches), "speed-up at batch 1"], rows)

    lengths = [str(n) for n in method["seq_lengths"]]
    if lengths:
        lines += ["## Latency by sequence length", "",
                  "Batch 1, median ms, real words cut to exactly N tokens ([CLS] and [SEP] included). "
                  "End to end, a text longer than a model's max length is truncated to it, as users get it; "
                  "model only feeds all N tokens.", ""]
        for mode, title in (("end_to_end", "End to end"), ("model_only", "Model only")):
            rows = [[c["name"], *(_ms(c["latency"]["seq_len"].get(n, {}).get(mode), full=False) for n in lengths)]
                    for c in cands]
            lines += [f"**{title}**", ""] + _table(["model", *(f"{n} tokens" for n in lengths)], rows)

    lines += ["## Throughput, start-up, memory, size", ""]
    rows = []
    for c in cands:
        vs, tp, proc, size = c["vs_reference"], c["throughput"], c.get("process"), c["size"]
        cold = DASH if not proc else (
            f"{proc['cold_start_s']:.2f} ({proc['import_s']:.2f} + {proc['load_s']:.2f} + {proc['first_prediction_s']:.3f})")
        rss = DASH if not proc else f"{proc['peak_rss_bytes'] / 2**20:.0f} ({_ratio(vs.get('peak_rss_ratio'))})"
        rows.append([c["name"], f"{tp['texts_per_s']:.1f} ({_ratio(vs.get('throughput_ratio'))})", cold, rss,
                     f"{size['model_bytes'] / 1e6:.1f} ({_ratio(vs.get('model_size_ratio'))})",
                     f"{size['total_bytes'] / 1e6:.1f}"])
    lines += _table(["model", "throughput, texts/s (× reference)", "cold start s (import + load + first)",
                     "peak RSS MiB (× reference)", "model MB (× reference)", "total MB on disk"], rows)
    lines += [f"Throughput: `predict` on all {data['n']} texts at once (each model batches up to {method.get('predict_batch')} "
              "texts of similar length; lpm-edge also caps the tokens per call, see each model's max_batch_tokens "
              "below), median of the rounds. Cold start and peak RSS: a fresh Python process "
              "that imports, loads and predicts one text, then predicts "
              f"{method.get('process_workload_texts')} texts (handed over 32 at a time); medians of "
              f"{method.get('process_runs')} processes. Sizes: weights file(s), and everything needed to serve.", ""]

    lines += ["## How this was measured", ""]
    lines += [f"- {k.replace('_', ' ')}: {v}" for k, v in method.items() if not isinstance(v, (dict, list))]
    by_stage = (method.get("machine_load") or {}).get("by_stage") or {}
    if by_stage:
        lines.append("- other processes' CPU share by stage: " + ", ".join(
            f"{k} {DASH if v is None else f'{v * 100:.0f}%'}" for k, v in by_stage.items()))
    lines += [f"- {k.replace('_', ' ')}: {', '.join(map(str, v)) or 'none'}" for k, v in method.items()
              if isinstance(v, list)]
    for name, c in zip(names, cands):
        if c.get("info"):
            lines.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in c["info"].items()))
    lines.append("")
    if doc.get("plots"):
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in doc["plots"]] + [""]
    return "\n".join(lines)
