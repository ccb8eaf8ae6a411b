"""PNG plots of a bench report (matplotlib, from the `bench` extra, imported here only).

Uses matplotlib's object API with the Agg canvas: no pyplot global state, no display needed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..errors import require
from .stats import non_dominated

ACCURACY_PLOT = "accuracy_vs_latency.png"
LENGTH_PLOT = "latency_by_length.png"


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (latency, accuracy) no other point beats on both, by latency.

    A point is dominated when another is at least as fast and at least as accurate, and strictly
    better on one of the two.
    """
    front = non_dominated([(-lat, acc) for lat, acc in points])
    return sorted(front, key=lambda i: points[i][0])


def _plain_ticks(axis: Any) -> None:
    """Log-scale ticks as plain numbers (2, 5, 10) instead of 2×10⁰."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    # Minor ticks: label 2, 3 and 5 (times a power of ten) only, so labels do not collide.
    axis.set_minor_formatter(FuncFormatter(lambda v, _pos: f"{v:g}" if f"{v:e}"[0] in "235" else ""))


def figure(size: tuple[float, float]) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110)
    FigureCanvasAgg(fig)
    return fig


def accuracy_vs_latency(doc: dict[str, Any], path: Path) -> Path:
    """Accuracy against batch-1 end-to-end median latency, with the Pareto front drawn."""
    cands = doc["candidates"]
    metric = cands[0].get("metric") or "accuracy"  # the task's budget metric (regression: spearman)
    pts = [(c["latency"]["batch"]["1"]["end_to_end"]["median_ms"], c[metric] * 100) for c in cands]
    fig = figure((7, 4.5))
    ax = fig.add_subplot()
    for c, (x, y) in zip(cands, pts):  # a legend, not annotations: close points would overprint names
        ax.scatter([x], [y], s=40, zorder=3, label=c["name"])
    front = pareto_front(pts)
    xs, ys = [pts[i][0] for i in front], [pts[i][1] for i in front]
    # A staircase: from each front point, nothing is faster until the next one, which is more accurate.
    ax.step(xs, ys, where="post", linestyle="--", color="grey", zorder=2)
    ax.scatter(xs, ys, s=140, facecolors="none", edgecolors="grey", zorder=2,
               label="Pareto front: no other model is both faster and more accurate")
    ax.set_xscale("log")
    _plain_ticks(ax.xaxis)
    ax.set_xlabel("latency, batch 1, end to end, median ms (log scale)")
    ax.set_ylabel(f"{metric} on {doc['data']['split']} split" + (", %" if metric == "accuracy" else " × 100"))
    ax.set_title(f"{doc['data']['name']}: {metric} vs latency", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    ax.margins(x=0.15, y=0.15)
    fig.tight_layout()
    fig.savefig(path)
    return path


def latency_by_length(doc: dict[str, Any], path: Path) -> Path:
    """Batch-1 median latency against sequence length, one line per candidate, both modes."""
    lengths = [str(n) for n in doc["method"]["seq_lengths"]]
    fig = figure((10, 5.0))
    axes = fig.subplots(1, 2)  # own y scales: end to end can be many times the model-only time
    for ax, mode, title in zip(axes, ("model_only", "end_to_end"), ("model only", "end to end (truncated to max length)")):
        for c in doc["candidates"]:
            cells = c["latency"]["seq_len"]
            xs = [int(n) for n in lengths if cells.get(n, {}).get(mode)]
            ys = [cells[str(n)][mode]["median_ms"] for n in xs]
            ax.plot(xs, ys, marker="o", label=c["name"])
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        _plain_ticks(ax.yaxis)
        ax.set_xticks([int(n) for n in lengths], labels=lengths)
        ax.set_xlabel("tokens")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("batch 1, median ms (log scale)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05 + 0.045 * ((len(labels) + 2) // 3), 1, 1))  # room for the legend rows
    fig.savefig(path)
    return path


def write_plots(doc: dict[str, Any], out: Path) -> list[Path]:
    """Both plots into `out`; raises MissingDependencyError naming the extra without matplotlib."""
    require("matplotlib", "bench")
    paths = [accuracy_vs_latency(doc, out / ACCURACY_PLOT)]
    if doc["method"]["seq_lengths"]:
        paths.append(latency_by_length(doc, out / LENGTH_PLOT))
    return paths
