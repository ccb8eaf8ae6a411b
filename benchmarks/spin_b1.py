"""Batch-1 latency end to end with ONNX Runtime's thread spinning on and off, against PyTorch fp32.

`benchmarks/compare.py` loads bundles with spinning off (its runs share the cores with other
work); `lpm_edge.load` spins by default, as an application with cores of its own would run. This
times both in one process with PyTorch (same thread count) on real test texts of the checkpoint's
data, engine by engine in alternating rounds after a warm-up, and prints medians and ratios as Markdown.

    PYTHONPATH=. .venv/bin/python benchmarks/spin_b1.py --checkpoint runs/demo/checkpoint \\
        runs/l4-narrow runs/s3-big runs/demo/bundle-cpu-int8 --texts 200 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("bundles", nargs="+", type=Path)
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--texts", type=int, default=200, help="test texts timed, one call each per engine")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3, help="rounds over the engines, each timing every text once")
    a = p.parse_args()

    import lpm_edge
    from lpm_edge.data import load_dataset
    from lpm_edge.reference import TorchClassifier
    from lpm_edge.sysinfo import cpu_class
    from lpm_edge.train import read_training_info

    data = load_dataset(read_training_info(a.checkpoint)["data"]["source"])
    texts = list(data.test.texts[: a.texts])
    torch_model = TorchClassifier(a.checkpoint, threads=a.threads)
    engines = {"PyTorch fp32": lambda t: torch_model.logits([t])}
    for b in a.bundles:
        for spin in (False, True):
            clf = lpm_edge.load(b, providers="cpu", spin=spin, threads=a.threads)
            engines[f"{b.name}, spinning {'on' if spin else 'off'}"] = lambda t, clf=clf: clf.predict([t])
    times: dict[str, list[float]] = {name: [] for name in engines}
    for run in engines.values():  # warm-up
        for t in texts[:30]:
            run(t)
    # Blocks, not text by text: a spinning session's threads keep a core busy for a while after
    # each call, which would slow whichever engine ran next. Each round times every engine over all
    # the texts in turn, with a pause between engines for the spinning to stop.
    for _ in range(a.rounds):
        for name, run in engines.items():
            time.sleep(0.5)
            for t in texts:
                start = time.perf_counter()
                run(t)
                times[name].append(time.perf_counter() - start)
    ref = statistics.median(times["PyTorch fp32"])
    print(f"Batch 1 end to end, {len(texts)} test texts, {a.threads} threads, CPU class {cpu_class()}\n")
    print("| engine | median ms | speed-up |\n|---|---|---|")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m * 1e3:.2f} | {ref / m:.2f}x |")


if __name__ == "__main__":
    main()
