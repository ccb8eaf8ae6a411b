"""Export tests run tiny models: one torch thread is faster there than a contended pool."""

from __future__ import annotations

from typing import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread() -> Iterator[None]:
    try:
        import torch
    except ImportError:  # the runtime-only environment (.ci/py310): the recipe tests run without torch
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
