import random

from lpm_edge.export.batches import length_grouped


def test_length_grouped_batches_cover_every_text_once_with_little_padding():
    rng = random.Random(1)
    lengths = [rng.randint(1, 200) for _ in range(1000)]
    order = list(range(1000))
    rng.shuffle(order)
    batches = length_grouped(order, lengths, 16, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 20  # random batches of 16 would spread over ~180
    assert batches != length_grouped(order, lengths, 16, seed=4)  # batch order is shuffled per seed
