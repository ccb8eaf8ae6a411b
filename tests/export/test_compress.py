import copy

import pytest
import torch

from lpm_edge.data import load_dataset
from lpm_edge.errors import ExportError
from lpm_edge.export import prune as P
from lpm_edge.export.batches import labelled_batches
from lpm_edge.export.compress import compress
from lpm_edge.export.distill import mean_kl
from lpm_edge.export.recipe import DistillConfig, PruneConfig, Recipe

TEXTS = ["a really great film", "awful boring plot", "the movie was fine", "dull and very poor acting",
         "superb lovely story and the acting was brilliant", "it"]


def _load(path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(path, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def trained(tiny_checkpoint):
    return _load(tiny_checkpoint)


@pytest.fixture(scope="module")
def dataset(tiny_data):
    return load_dataset(str(tiny_data))


def _inputs(tokenizer):
    return dict(tokenizer(TEXTS, padding=True, return_tensors="pt"))


def _batches(tokenizer, dataset, n=4):
    t = dataset.train
    return list(labelled_batches(tokenizer, t.texts, t.labels, 16, 32, limit=n))


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_pruned_model_equals_masked_forward_of_original(trained, dataset):
    model, tokenizer = trained
    original = _state(model)
    heads, ffn = P.gradient_importance(copy.deepcopy(model), _batches(tokenizer, dataset))
    plan = P.plan(heads, ffn, heads=0.5, ffn=0.25, keep_layers=(0, 1))
    student = copy.deepcopy(model)
    P.apply(student, plan)

    # exactly the requested structure is gone: 2 of 4 heads and 16 of 64 neurons per layer
    assert all(len(h) == 2 for h in plan.drop_heads.values()) and len(plan.drop_heads) == 2
    assert [len(k) for k in plan.keep_neurons] == [48, 48]
    assert P.shape(student)["heads"] == 2 and student.config.intermediate_size == 48
    assert {k: sorted(v) for k, v in student.config.pruned_heads.items()} == {
        k: sorted(v) for k, v in plan.drop_heads.items()}

    # the original, with the same heads masked and the same neurons zeroed, computes the same logits
    masked = copy.deepcopy(model)
    head_mask = torch.ones(2, 4)  # (L, H)
    for layer, dropped in plan.drop_heads.items():
        head_mask[layer, list(dropped)] = 0
    for layer, keep in zip(P.encoder_layers(masked), plan.keep_neurons):
        gone = [i for i in range(64) if i not in keep]
        with torch.no_grad():
            layer.output.dense.weight[:, gone] = 0  # (hidden, I): a zero column silences neuron i
    x = _inputs(tokenizer)
    with torch.no_grad():
        expected = masked(**x, head_mask=head_mask).logits
        got = student(**x).logits
        unmasked = model(**x).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(got, unmasked, atol=1e-5)  # pruning did change something
    # the caller's model was not touched
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())
    assert P.shape(model) == {"layers": 2, "heads": 4, "ffn": 64, "parameters": P.shape(model)["parameters"]}


@pytest.mark.parametrize("importance", ["gradient", "magnitude"])
def test_dead_head_and_neuron_are_pruned_first(trained, dataset, importance):
    model, tokenizer = trained
    dead = copy.deepcopy(model)
    layer = P.encoder_layers(dead)[1]
    size = layer.attention.self.attention_head_size
    with torch.no_grad():
        for lin in (layer.attention.self.query, layer.attention.self.key, layer.attention.self.value):
            lin.weight[2 * size : 3 * size] = 0  # head 2's rows
            lin.bias[2 * size : 3 * size] = 0
        layer.attention.output.dense.weight[:, 2 * size : 3 * size] = 0  # head 2's output columns
        layer.intermediate.dense.weight[5] = 0  # neuron 5 outputs GELU(0) = 0
        layer.intermediate.dense.bias[5] = 0
        layer.output.dense.weight[:, 5] = 0
    if importance == "gradient":
        heads, ffn = P.gradient_importance(dead, _batches(tokenizer, dataset))
    else:
        heads, ffn = P.magnitude_importance(dead)
    assert heads.shape == (2, 4) and ffn.shape == (2, 64)
    assert heads[1, 2] == heads[1].min() == 0
    assert ffn[1, 5] == ffn[1].min() == 0
    plan = P.plan(heads, ffn, heads=0.25, ffn=1 / 64, keep_layers=(0, 1))
    assert plan.drop_heads[1] == (2,)
    assert 5 not in plan.keep_neurons[1] and len(plan.keep_neurons[1]) == 63


def test_importance_leaves_no_gradients_on_the_model(trained, dataset):
    model, tokenizer = trained
    work = copy.deepcopy(model)
    P.gradient_importance(work, _batches(tokenizer, dataset, 1))
    assert all(p.grad is None for p in work.parameters())


def test_layer_importance_sees_a_layer_that_does_nothing(trained, dataset):
    model, tokenizer = trained

    class Identity(torch.nn.Module):
        def forward(self, hidden_states, *args, **kwargs):
            return (hidden_states,)

    work = copy.deepcopy(model)
    work.bert.encoder.layer.append(Identity())
    work.config.num_hidden_layers = 3
    scores = P.layer_importance(work, _batches(tokenizer, dataset, 2))
    assert len(scores) == 3 and scores[2] < 1e-9 < min(scores[:2])
    assert len(work.bert.encoder.layer) == 3  # restored


def test_evenly_spaced_layers():
    assert P.evenly_spaced(6, 4) == (0, 2, 3, 5)
    assert P.evenly_spaced(6, 6) == tuple(range(6))
    assert P.evenly_spaced(12, 6) == (0, 2, 4, 7, 9, 11)
    assert P.evenly_spaced(3, 1) == (2,)


def test_compress_drops_layers_and_saves_loadable(trained, dataset, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model, tokenizer = trained
    recipe = Recipe(name="t", prune=PruneConfig(heads=0.25, ffn=0.5, layers=1, importance_batches=2))
    student, info = compress(model, tokenizer, dataset, recipe)
    assert info["layers"] == {"before": 2, "after": 1} and info["kept_layers"] == [1]
    assert info["heads"] == {"before": 4, "after": 3} and info["ffn"] == {"before": 64, "after": 32}
    assert info["parameters"]["after"] < info["parameters"]["before"]
    assert "distill" not in info
    assert student is not model and len(model.bert.encoder.layer) == 2 and model.config.intermediate_size == 64

    student.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert loaded.config.num_hidden_layers == 1 and loaded.config.intermediate_size == 32
    x = _inputs(tokenizer)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**x).logits, student(**x).logits)


def test_distillation_lowers_kl_to_teacher(trained, dataset):
    model, tokenizer = trained
    # Magnitude pruning to one layer, one head and a quarter of the FFN hurts; distillation wins it back.
    recipe = Recipe(name="t", prune=PruneConfig(heads=0.75, ffn=0.75, layers=1, importance="magnitude"),
                    distill=DistillConfig(steps=60, alpha=1.0, batch_size=16, learning_rate=3e-3))
    pruned, _ = compress(model, tokenizer, dataset, recipe.replace(distill=DistillConfig(steps=0)))
    student, info = compress(model, tokenizer, dataset, recipe)
    texts = list(dataset.validation.texts)
    before = mean_kl(pruned, model, tokenizer, texts, 32)
    after = mean_kl(student, model, tokenizer, texts, 32)
    assert after < before / 4
    d = info["distill"]
    assert d["steps"] == 60 and d["device"] == "cpu"
    assert d["kl_after"] < d["kl_before"]
    assert d["kl_before"] == pytest.approx(before, rel=1e-4)
    assert not student.training


def test_pruning_refuses_a_family_without_an_adapter():
    from transformers import AlbertConfig, AlbertForSequenceClassification

    model = AlbertForSequenceClassification(AlbertConfig(
        vocab_size=50, embedding_size=16, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32))
    with pytest.raises(ExportError, match="'albert'.*Remove \\[prune\\]"):
        P.shape(model)


def test_progress_logs_rate_and_eta_when_stderr_is_not_a_terminal(caplog, monkeypatch):
    import io
    import logging
    import sys

    from lpm_edge import progress as P
    from lpm_edge.export.batches import Progress

    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a TTY
    now = [0.0]
    monkeypatch.setattr(P.time, "monotonic", lambda: now[0])
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        progress = Progress(40, "distill")  # a step every 5 s, a line every 30 s
        for _ in range(40):
            now[0] += 5
            progress.update(loss=0.5)
        progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 7  # at 30, 60, ..., 180 s and on close
    assert lines[0] == "distill: 6/40 steps (15.0%), 5 s each, 30 s elapsed, ~2 min 50 s left, loss 0.5000"
    assert "loss 0.5000" in lines[0]
    assert lines[-1].startswith("distill: 40/40 steps (100.0%)") and "left" not in lines[-1]
    assert sys.stderr.getvalue() == ""  # no bar drawn
