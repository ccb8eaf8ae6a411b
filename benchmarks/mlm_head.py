"""CPU time of one masked-LM training step: the vocabulary projection on every position (the
model's own loss) vs on the masked positions only (`lpm-edge pretrain`'s loss), built-in MiniLM-L6.

Process CPU time (not wall time), so that other jobs on a shared machine do not count; the two
variants alternate step by step on the same batches.

    PYTHONPATH=. nice -n 10 .venv/bin/python benchmarks/mlm_head.py --steps 4
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()

    import numpy as np
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling, TrainingArguments

    from lpm_edge import sysinfo
    from lpm_edge.assets import builtin_model_dir
    from lpm_edge.data import unlabelled_texts
    from lpm_edge.train.pretrain import masked_only_trainer

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    texts, _ = unlabelled_texts("rotten-tomatoes-plots")
    tok = AutoTokenizer.from_pretrained(builtin_model_dir())
    model = AutoModelForMaskedLM.from_pretrained(builtin_model_dir()).train()
    collate = DataCollatorForLanguageModeling(tok, mlm_probability=0.15)
    import tempfile

    trainer = masked_only_trainer()(model=model, args=TrainingArguments(output_dir=tempfile.mkdtemp(), report_to=[],
                                                                        use_cpu=True))
    times: dict[str, list[float]] = {"every position": [], "masked positions only": []}
    for step in range(a.steps + 1):  # the first step of each warms up
        rows = texts[step * a.batch_size : (step + 1) * a.batch_size]
        batch = collate([tok(t, truncation=True, max_length=128) for t in rows])
        for name in times:
            model.zero_grad()
            t0 = time.process_time()
            loss = model(**batch).loss if name == "every position" else trainer.compute_loss(model, dict(batch))
            loss.backward()
            if step:
                times[name].append(time.process_time() - t0)
    shape = tuple(batch["input_ids"].shape)
    print(f"MiniLM-L6 masked-LM step, batch {a.batch_size} (last batch {shape}), {a.threads} thread(s), "
          f"{sysinfo.cpu_class()}, CPU seconds per step (median of {a.steps}):")
    for name, t in times.items():
        print(f"  {name}: {np.median(t):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
