"""Run by test_ddp_exit.py under torchrun: collectives still in flight, then train()'s last barrier,
then the process exits at once.

Usage: torchrun --nproc_per_node 2 gloo_exit_worker.py
"""

import sys

sys.setswitchinterval(30)  # the main thread keeps the GIL until it blocks or exits: the race's worst case

from types import SimpleNamespace  # noqa: E402

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

from lpm_edge.train.trainer import _wait_for_everyone  # noqa: E402


def main() -> None:
    dist.init_process_group("gloo")
    x = torch.full((1 << 20,), float(dist.get_rank()))  # 4 MiB: still in flight when the barrier is queued
    for _ in range(3):  # not waited for: the barrier below holds them, as it holds evaluate()'s all-gather
        dist.all_gather([torch.empty_like(x) for _ in range(dist.get_world_size())], x, async_op=True)
    accelerator = SimpleNamespace(num_processes=dist.get_world_size(), local_process_index=dist.get_rank(),
                                  device=torch.device("cpu"), wait_for_everyone=None)
    _wait_for_everyone(accelerator)


if __name__ == "__main__":
    main()
