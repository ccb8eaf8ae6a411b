"""The search loop on synthetic candidates with known scores (no models involved)."""

from lpm_edge.search.pareto import Point, choose, pareto_front
from lpm_edge.search.run import Cache, run_search
from lpm_edge.search.space import Candidate, default_space

REF = 0.85


def p(key, acc, ms, size=1):
    return Point(key=key, label=key, accuracy=acc, latency_ms=ms, size_bytes=size)


def test_pareto_front_on_known_points():
    pts = [p("a", 0.85, 10), p("b", 0.84, 5), p("c", 0.83, 6), p("d", 0.80, 2), p("e", 0.84, 5, size=2)]
    assert [x.key for x in pareto_front(pts)] == ["d", "b", "a"]  # c dominated by b, e by b (size)


def test_choose_fastest_within_budget():
    pts = [p("a", 0.85, 10), p("b", 0.845, 5), p("c", 0.83, 3)]
    assert choose(pts, REF, 1.0).key == "b"  # c is faster but loses 2 points
    assert choose(pts, REF, 2.0).key == "c"
    assert choose([p("x", 0.70, 1)], REF, 1.0) is None


def synthetic_space():
    return [Candidate(), Candidate(ffn=0.5, distill_steps=10), Candidate(heads=0.5, ffn=0.5, distill_steps=10),
            Candidate(layers=2, heads=0.5, ffn=0.75, distill_steps=10)]


def synthetic_eval(calls):
    # accuracy falls and speed rises with compression; the two most aggressive break a 1-point budget
    table = {(0.0, 0.0, None): (0.85, 10), (0.0, 0.5, None): (0.845, 6), (0.5, 0.5, None): (0.82, 4),
             (0.5, 0.75, 2): (0.80, 2)}

    def evaluate(c):
        calls.append(c.key())
        acc, ms = table[(c.heads, c.ffn, c.layers)]
        return Point(key=c.key(), label=c.label(), accuracy=acc, latency_ms=ms, size_bytes=100)

    return evaluate


def test_budget_respected_and_broken_direction_not_explored(tmp_path):
    calls = []
    result = run_search(synthetic_space(), synthetic_eval(calls), REF, 1.0, Cache(tmp_path / "c.json", {}), 4)
    assert result.chosen.key == Candidate(ffn=0.5, distill_steps=10).key()
    assert len(calls) == 3  # the fourth is more aggressive than a candidate that broke the budget
    assert any("milder candidate" in s for s in result.skipped)


def test_cache_resumes_without_remeasuring(tmp_path):
    first, second = [], []
    run_search(synthetic_space(), synthetic_eval(first), REF, 1.0, Cache(tmp_path / "c.json", {"ckpt": "x"}), 4)
    again = run_search(synthetic_space(), synthetic_eval(second), REF, 1.0, Cache(tmp_path / "c.json", {"ckpt": "x"}), 4)
    assert first and not second
    assert again.chosen.key == Candidate(ffn=0.5, distill_steps=10).key()
    other = []  # another checkpoint must not reuse the cache
    run_search(synthetic_space(), synthetic_eval(other), REF, 1.0, Cache(tmp_path / "c.json", {"ckpt": "y"}), 4)
    assert other


def test_no_candidate_meets_budget(tmp_path):
    calls = []
    result = run_search(synthetic_space()[2:], synthetic_eval(calls), REF, 1.0, Cache(tmp_path / "c.json", {}), 4)
    assert result.chosen is None and result.points


def test_default_space_is_mild_first_and_skips_static_without_vnni():
    space = default_space(6, vnni=False)
    assert space[0] == Candidate()  # unpruned dynamic per-channel int8 first
    assert all(c.quantize in ("dynamic", "none") for c in space)
    assert any(c.quantize == "static" for c in default_space(6, vnni=True))
    assert all(c.distill_steps > 0 for c in space if c.pruned)
    assert len({c.key() for c in space}) == len(space)


def test_fused_fp32_is_a_choice_only_where_int8_does_not_pay():
    from lpm_edge.sysinfo import cpu_class

    avx2 = frozenset({"sse2", "avx2", "fma"})
    vnni = avx2 | {"avx512f", "avx512_vnni"}
    assert cpu_class(avx2, "x86_64") == "x86-64 AVX2 (no VNNI)"
    without = default_space(6, vnni="avx512_vnni" in avx2)
    with_vnni = default_space(6, vnni="avx512_vnni" in vnni)
    fp32 = [c for c in without if c.quantize == "none"]
    # every architecture once, in fp32, unquantized and fused as the cpu-fp32 recipe
    assert {c.student_key() for c in fp32} == {c.student_key() for c in without}
    r = fp32[0].recipe()
    assert r.quantize.mode == "none" and r.optimize.fusion and fp32[0].label().endswith("fp32")
    assert not any(c.quantize == "none" for c in with_vnni)
    assert any(c.quantize == "none" for c in default_space(6, vnni=True, fp32=True))
    assert not any(c.quantize == "none" for c in default_space(6, vnni=False, fp32=False))
    assert not any(c.quantize == "none" for c in default_space(6, vnni=False, target="cuda"))


def test_search_picks_fp32_where_it_is_faster_within_the_budget(tmp_path):
    # an AVX2 CPU: the pruned student runs faster in fused fp32 than in int8, both within budget
    space = [Candidate(layers=4, heads=0.5, distill_steps=10), Candidate(layers=4, heads=0.5, distill_steps=10,
                                                                         quantize="none", per_channel=False)]
    ms = {"dynamic": (0.845, 5.5), "none": (0.848, 5.1)}

    def evaluate(c):
        acc, lat = ms[c.quantize]
        return Point(key=c.key(), label=c.label(), accuracy=acc, latency_ms=lat, size_bytes=100)

    result = run_search(space, evaluate, REF, 1.0, Cache(tmp_path / "c.json", {}), 6)
    assert result.chosen.key == space[1].key()


def test_candidate_recipe_is_valid():
    r = Candidate(layers=4, heads=1 / 3, ffn=0.5, distill_steps=100).recipe()
    assert r.prune.layers == 4 and r.distill.steps == 100 and r.quantize.mode == "dynamic"


def test_candidates_build_what_the_recipes_they_stand_for_build():
    """The ladder's pruned student is the cpu-pruned-int8 recipe's, its full model cpu-int8's: the
    same pruning, distillation and quantization (7-bit weights for the pruned int8, as measured
    portable between CPU classes)."""
    from lpm_edge.export.recipe import load_recipe

    pruned, full = load_recipe("cpu-pruned-int8"), load_recipe("cpu-int8")
    c = Candidate(layers=pruned.prune.layers, heads=pruned.prune.heads, ffn=pruned.prune.ffn,
                  distill_steps=pruned.distill.steps).recipe()
    assert (c.prune.layers, c.prune.heads, c.prune.ffn) == (pruned.prune.layers, pruned.prune.heads, pruned.prune.ffn)
    assert (c.distill.steps, c.distill.learning_rate) == (pruned.distill.steps, pruned.distill.learning_rate)
    assert c.quantize == pruned.quantize and c.vocab_prune == pruned.vocab_prune
    assert Candidate().recipe().quantize == full.quantize
    assert not Candidate(layers=3, quantize="none").recipe().quantize.reduce_range  # fp32 has no int8 weights
    assert not Candidate(layers=3, quantize="static").recipe("cuda").quantize.reduce_range


def rescue_eval(calls, student_acc):
    """Unpruned int8 loses 2 points; its fp32 student (`student_acc`) may still meet the budget.
    The rescue variants cost time: auto-exclusion is slower than short-text fp32 fallback."""
    def evaluate(c):
        calls.append(c.label())
        if c.exclude_budget is not None:
            acc, ms = 0.845, 9
        elif c.fp32_tokens == (0, 16):
            acc, ms = 0.842, 7
        elif c.fp32_tokens is not None:
            acc, ms = 0.835, 6
        else:
            acc, ms = 0.83, 5
        return Point(key=c.key(), label=c.label(), accuracy=acc, latency_ms=ms, size_bytes=100,
                     extra={"source_accuracy": student_acc})

    return evaluate


def test_rescue_variants_run_when_int8_broke_a_budget_the_student_met(tmp_path):
    from lpm_edge.search.space import rescue_variants

    calls = []
    result = run_search([Candidate()], rescue_eval(calls, 0.85), REF, 1.0, Cache(tmp_path / "c.json", {}), 4,
                        rescue=lambda c: rescue_variants(c, 1.0, 128, 16))
    assert len(calls) == 4  # the int8 candidate, then auto-exclusion and fp32 for long and for short texts
    assert result.chosen.key == Candidate(fp32_tokens=(0, 16)).key()  # the fastest rescue within budget
    assert Candidate(exclude_budget=1.0).recipe().quantize.auto_exclude
    assert Candidate(fp32_tokens=(0, 16)).recipe().quantize.fp32_tokens == (0, 16)


def test_no_rescue_when_a_faster_candidate_already_met_the_budget(tmp_path):
    from lpm_edge.search.space import rescue_variants

    calls = []
    evaluate = rescue_eval(calls, 0.85)

    def with_fast(c):
        if c.ffn:
            calls.append(c.label())
            return Point(key=c.key(), label=c.label(), accuracy=0.845, latency_ms=4, size_bytes=1)
        return evaluate(c)

    space = [Candidate(ffn=0.5, distill_steps=10), Candidate()]
    result = run_search(space, with_fast, REF, 1.0, Cache(tmp_path / "c.json", {}), 4,
                        rescue=lambda c: rescue_variants(c, 1.0, 128, 16))
    assert len(calls) == 2 and result.chosen.key == space[0].key()  # int8 at 5 ms cannot beat 4 ms


def test_no_rescue_when_the_student_itself_broke_the_budget(tmp_path):
    from lpm_edge.search.space import rescue_variants

    calls = []
    result = run_search([Candidate()], rescue_eval(calls, 0.83), REF, 1.0, Cache(tmp_path / "c.json", {}), 4,
                        rescue=lambda c: rescue_variants(c, 1.0, 128, 16))
    assert len(calls) == 1 and result.chosen is None


def test_longer_distillation_only_where_a_shorter_one_broke_the_budget(tmp_path):
    space = default_space(6, vnni=False, fp32=False, distill_steps=(200, 100), layers=[3, 2], heads=[0.5], ffn=[0.5])
    assert [(c.layers, c.distill_steps) for c in space] == [(3, 100)] * 2 + [(2, 100)] * 2 + [(3, 200)] * 2 + [(2, 200)] * 2
    acc = {(3, 100): 0.845, (3, 200): 0.85, (2, 100): 0.80, (2, 200): 0.842}
    calls = []

    def evaluate(c):
        calls.append((c.layers, c.distill_steps))
        return Point(key=c.key(), label=c.label(), accuracy=acc[(c.layers, c.distill_steps)],
                     latency_ms=c.layers + c.distill_steps / 1000, size_bytes=1)

    result = run_search(space, evaluate, REF, 1.0, Cache(tmp_path / "c.json", {}), 6)
    # L3 met the budget at 100 steps (both int8 variants); L2 needed 200
    assert calls == [(3, 100)] * 2 + [(2, 100)] * 2 + [(2, 200)] * 2
    assert result.chosen.key == space[6].key()  # L2 at 200 steps: the fastest within the budget


def test_cuda_space_and_recipes():
    from lpm_edge.export.pipeline import preflight

    space = default_space(6, vnni=True, target="cuda", layers=[None], heads=[0.0], ffn=[0.0])
    assert {c.quantize for c in space} == {"fp16", "static"}
    for c in space:
        preflight(c.recipe("cuda"))  # fusion off for static QDQ, as the cuda-int8 recipe
    assert not Candidate(quantize="static").recipe("cuda").optimize.fusion


def test_rescue_fields_leave_older_cache_keys_alone():
    # A key measured before the rescue fields existed (benchmarks/results/search.json): caches
    # written then must still be found.
    assert Candidate(layers=4, heads=0.334, ffn=0.5, distill_steps=1600).key() == "370bf9c21b12"
    assert Candidate(fp32_tokens=(0, 8)).key() != Candidate().key()


def test_no_fallback_variants_when_the_median_split_leaves_one_side_empty():
    from lpm_edge.export.pipeline import preflight
    from lpm_edge.search.space import rescue_variants

    for split in (128, 0):  # e.g. long-text data where half the texts are truncated to max_length
        variants = rescue_variants(Candidate(), 1.0, 128, split)
        assert [v.fp32_tokens for v in variants] == [None]
    for v in rescue_variants(Candidate(), 1.0, 128, 27):
        preflight(v.recipe())


def test_a_bad_fallback_range_built_in_python_fails_before_any_work():
    import pytest

    from lpm_edge.errors import ConfigError
    from lpm_edge.export.pipeline import preflight

    with pytest.raises(ConfigError, match=r"fp32_tokens=\[129, 128\]"):
        preflight(Candidate(fp32_tokens=(129, 128)).recipe())


def test_a_failed_rescue_is_cached_and_not_rebuilt(tmp_path):
    calls = []

    def evaluate(c):
        calls.append(c.key())
        return None

    for _ in range(2):
        result = run_search([Candidate(exclude_budget=1.0)], evaluate, REF, 1.0, Cache(tmp_path / "c.json", {}), 4)
        assert not result.points and "could not be built" in result.skipped[0]
    assert len(calls) == 1


def test_search_logs_time_left_per_candidate(tmp_path, caplog, monkeypatch):
    import logging

    from lpm_edge import progress as P

    now = [0.0]
    monkeypatch.setattr(P.time, "monotonic", lambda: now[0])
    evaluate = synthetic_eval([])

    def slow(c):  # each measured candidate takes 60 s
        now[0] += 60
        return evaluate(c)

    with caplog.at_level(logging.INFO, logger="lpm_edge.search"):
        run_search(synthetic_space(), slow, REF, 1.0, Cache(tmp_path / "c.json", {}), 4)
    measuring = [r.getMessage() for r in caplog.records if "measuring" in r.getMessage()]
    assert measuring[0].endswith("(0 s elapsed, time left unknown)")
    assert measuring[1].endswith("(1 min 00 s elapsed, ~3 min 00 s left)")  # 3 of 4 left at 60 s each


def test_time_left_counts_the_students_still_to_distil(tmp_path, caplog, monkeypatch):
    """With the estimate's seconds a step, each line's time left is the students not yet distilled
    plus the candidates at the pace of those that distilled nothing, not candidates alone (a
    14-minute distillation behind a line saying '~2 min left' was what a user read before)."""
    import logging

    from lpm_edge.search import run as R

    now = [0.0]
    monkeypatch.setattr(R.time, "perf_counter", lambda: now[0])
    evaluate = synthetic_eval([])
    space = [Candidate(), Candidate(quantize="static"), Candidate(ffn=0.5, distill_steps=100),
             Candidate(ffn=0.5, distill_steps=100, quantize="static")]

    def timed(c):  # 20 s to export and measure; a student's first candidate distils it, 100 steps at 2 s
        now[0] += 20 + (200 if c.pruned and c.quantize == "dynamic" else 0)
        return evaluate(c)

    with caplog.at_level(logging.INFO, logger="lpm_edge.search"):
        run_search(space, timed, REF, 1.0, Cache(tmp_path / "c.json", {}), 4, step_seconds=2.0)
    lines = [r.getMessage() for r in caplog.records if "measuring" in r.getMessage()]
    assert lines[0].endswith("(0 s elapsed; at least about 3 min 20 s left: up to 1 student to distil (100 steps, "
                             "about 3 min 20 s), 4 candidates to export and measure (time per candidate not known yet))")
    assert lines[1].endswith("(20 s elapsed; about 4 min 20 s left: up to 1 student to distil (100 steps, about "
                             "3 min 20 s), 3 candidates to export and measure at about 20 s each)")
    # the student is distilled: the shared candidate left costs a measurement only
    assert lines[3].endswith("(4 min 20 s elapsed; about 20 s left: 1 candidate to export and measure at about 20 s each)")


def test_default_space_is_a_ladder_of_three_architectures_unless_a_grid_is_given():
    from lpm_edge.export.recipe import load_recipe

    p = load_recipe("cpu-pruned-int8").prune
    space = default_space(6, vnni=True)
    shapes = {(c.layers, c.heads, c.ffn) for c in space}
    # the full model, the recipe's student, and half the layers with half the heads and FFN
    assert shapes == {(None, 0.0, 0.0), (p.layers, p.heads, p.ffn), (3, 0.5, 0.5)}
    assert len({c.student_key() for c in space if c.pruned}) == 2  # two distillations, not 26
    grid = default_space(6, vnni=True, heads=[0.5])
    assert {c.heads for c in grid} == {0.5} and {c.ffn for c in grid} == {0.0, 0.5, 0.75}
    assert {c.layers for c in grid} == {None, 4, 3}
