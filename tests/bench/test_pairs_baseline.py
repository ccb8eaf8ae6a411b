"""benchmarks/pairs_baseline.py's parts on hand-made pairs: the shared-word idf score and the cut
tuned for accuracy."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "pairs_baseline.py"


def load():
    sys.path.insert(0, str(SCRIPT.parent))  # it imports _report from beside it
    try:
        spec = importlib.util.spec_from_file_location("pairs_baseline", SCRIPT)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_score_sums_the_idf_of_shared_words_only():
    mod = load()
    idf = {"wolverine": 3.0, "logan": 2.5, "the": 0.1}
    rows = [(("Logan, the Wolverine, returns.", "The wolverine film"), "same-movie", "x:1"),
            (("A quiet drama", "the wolverine film"), "other-movie", "x:2")]
    assert mod.idf_scores(rows, idf).tolist() == [3.1, 0.0]  # 'the' (3 letters) counts, 'film' has no idf


def test_threshold_maximises_accuracy_and_can_predict_none():
    mod = load()
    scores, gold = np.array([0.0, 1.0, 2.0, 3.0]), np.array([False, False, True, True])
    assert mod.best_threshold(scores, gold) == 1.0  # score > 1.0 predicts same-movie: all right
    assert mod.best_threshold(scores, np.zeros(4, bool)) == 3.0  # nothing over the top score


def test_cosine_embeds_each_text_once_and_scores_pairs(monkeypatch):
    import lpm_edge

    mod = load()
    calls = []

    class Enc:
        def embed(self, texts):
            calls.append(list(texts))
            return np.array([[1.0, 0.0] if t.startswith("a") else [0.0, 1.0] for t in texts])

    monkeypatch.setattr(lpm_edge, "load", lambda path: Enc())
    rows = [(("a plot", "a snippet"), "same-movie", "x:1"), (("a plot", "b snippet"), "other-movie", "x:2")]
    got = mod.cosine_scores(Path("bundle"), {"validation": rows, "test": rows[:1]})
    assert got["validation"].tolist() == [1.0, 0.0] and got["test"].tolist() == [1.0]
    assert sorted(calls[0]) == ["a plot", "a snippet", "b snippet"]  # 'a plot' once
