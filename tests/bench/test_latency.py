import numpy as np
import pytest

from lpm_edge.bench.latency import fixed_length_inputs, interleaved, measure_cell, text_batches


def test_interleaved_runs_candidates_round_robin_warmup_included():
    order = []
    calls = [lambda r, k=k: order.append((k, r)) for k in range(3)]
    timings = interleaved(calls, rounds=4, warmup=2)
    assert order == [(k, r) for r in [0, 1] for k in range(3)] + [(k, r) for r in range(4) for k in range(3)]
    assert [len(t) for t in timings] == [4, 4, 4]
    assert all(t >= 0 for ts in timings for t in ts)


def test_cells_time_candidates_interleaved_and_encode_before_the_clock(make_fake, call_log):
    cands = [make_fake(n, call_log) for n in ("A", "B", "C")]
    batches = text_batches(["one", "two", "three"], batch=2, rounds=5)
    cell = measure_cell(cands, batches, rounds=5, warmup=1)
    assert set(cell) == {"end_to_end", "model_only"}
    assert [s["n"] for s in cell["end_to_end"]] == [5, 5, 5]
    calls = call_log.calls
    # Every encode happens before the first timed call.
    n_encode = sum(1 for _, what in calls if what == "encode")
    assert n_encode == 3 * 5 and all(what == "encode" for _, what in calls[:n_encode])
    e2e = [name for name, what in calls if what == "predict"]
    run = [name for name, what in calls if what == "run"]
    assert e2e == ["A", "B", "C"] * 6  # 1 warm-up round + 5 timed
    assert run == ["A", "B", "C"] * 6


def test_text_batches_walk_the_pool_and_wrap():
    assert text_batches(["a", "b", "c"], batch=2, rounds=3) == [["a", "b"], ["c", "a"], ["b", "c"]]


@pytest.mark.parametrize("lengths", [(3, 5, 16), (40,)])
def test_fixed_length_inputs_have_exactly_n_tokens(word_tokenizer, lengths):
    texts = ["the movie was good and the plot was really very good"] * 10
    out = fixed_length_inputs(word_tokenizer, texts, lengths)
    for fixed, n in zip(out, lengths):
        assert fixed.tokens == n
        assert fixed.ids["input_ids"].shape == (1, n)
        assert fixed.ids["input_ids"].dtype == np.int64
        assert fixed.ids["attention_mask"].sum() == n
        assert fixed.text_tokens == n  # one token per word here, so the text cuts exactly
        assert word_tokenizer.encode(fixed.text).ids == fixed.ids["input_ids"][0].tolist()


def test_fixed_length_refuses_what_the_texts_cannot_fill(word_tokenizer):
    with pytest.raises(ValueError, match="cannot build"):
        fixed_length_inputs(word_tokenizer, ["the movie"], [50])
