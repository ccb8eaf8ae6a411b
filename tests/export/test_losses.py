"""Hidden-state, attention-relation and output-similarity distillation losses (lpm_edge.export.losses)."""

import copy

import pytest
import torch

from lpm_edge.data import load_dataset
from lpm_edge.errors import ConfigError
from lpm_edge.export import distill as D
from lpm_edge.export import losses as L
from lpm_edge.export import prune as P
from lpm_edge.export.recipe import DistillConfig

TEXTS = ["a really great film", "awful boring plot", "superb lovely story and the acting was brilliant", "it"]


def test_layer_mapping_follows_pruning_else_spreads_evenly():
    assert L.layer_mapping(3, 6, (0, 3, 5)) == [0, 3, 5]
    assert L.layer_mapping(3, 6) == [1, 3, 5]
    assert L.layer_mapping(2, 2) == [0, 1]
    with pytest.raises(ConfigError, match="does not fit"):
        L.layer_mapping(2, 6, (0, 1, 2))


def test_relation_heads_divide_both_widths():
    assert L.relation_heads(256, 384, 8) == 8  # 8 of 12 heads of 32
    assert L.relation_heads(192, 384, 6) == 6
    assert L.relation_heads(30, 384, 5) == 3  # gcd 6: 5 does not divide it
    assert L.relation_heads(7, 384, 1) == 1


def test_hidden_loss_counts_real_tokens_only():
    torch.manual_seed(0)
    t = [torch.randn(2, 5, 8) for _ in range(3)]  # embeddings + 2 layers, (B, T, H)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    assert float(L.hidden_loss(t, t, [0, 1], mask)) == 0.0
    s = [x.clone() for x in t]
    s[1][0, 3:] += 100.0  # padding only
    assert float(L.hidden_loss(s, t, [0, 1], mask)) == 0.0
    s[2][1, 0] += 1.0  # one real token of the last layer, every one of its 8 features
    # that token's MSE is 1; mean over 8 real tokens, then over 3 layer pairs
    assert float(L.hidden_loss(s, t, [0, 1], mask)) == pytest.approx(1 / 8 / 3)


def test_relation_loss_is_zero_for_equal_relations_and_ignores_padding():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    t = [torch.randn(2, 4, 8) for _ in range(3)]  # Q, K, V (B, T, A)
    assert float(L.relation_loss(t, t, mask, 2)) == pytest.approx(0.0, abs=1e-6)
    s = [x.clone() for x in t]
    s[0][0, 3] += 50.0  # a padded token
    assert float(L.relation_loss(s, t, mask, 2)) == pytest.approx(0.0, abs=1e-6)
    # A rotation inside each relation head keeps every dot product: the relations are the same.
    q, _ = torch.linalg.qr(torch.randn(4, 4))
    rotated = [torch.cat([x[..., :4] @ q, x[..., 4:] @ q], -1) for x in t]
    assert float(L.relation_loss(rotated, t, mask, 2)) == pytest.approx(0.0, abs=1e-5)
    # Different widths (fewer student heads) still compare, and differ.
    narrow = [x[..., :6] for x in t]
    loss = L.relation_loss(narrow, t, mask, 2)
    assert torch.isfinite(loss) and float(loss) > 0


def test_similarity_loss_reads_only_the_neighbours_of_each_vector():
    torch.manual_seed(0)
    t = torch.randn(6, 8)
    assert float(L.similarity_loss(t, t)) == pytest.approx(0.0, abs=1e-6)
    # A rotation and a per-vector scale keep every cosine: the same neighbours, no loss.
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    scaled = (t @ q) * torch.rand(6, 1).add(0.5)
    assert float(L.similarity_loss(scaled, t)) == pytest.approx(0.0, abs=1e-5)
    # Vectors that each stay close to their own target (cosine > 0.9) can still swap neighbours.
    s = t.clone()
    s[0] = t[0] + 0.3 * (t[1] - t[0])
    loss = float(L.similarity_loss(s, t))
    assert torch.nn.functional.cosine_similarity(s, t).min() > 0.9 and loss > 0.01
    assert float(L.similarity_loss(t[:1], t[:1] + 1.0)) == 0.0  # one text has no neighbours
    with pytest.raises(ConfigError, match="similarity_weight = 0"):
        L.similarity_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4))


def test_similarity_loss_gradient_brings_the_neighbours_back():
    torch.manual_seed(0)
    t = torch.randn(8, 16)
    s = (t + torch.randn(8, 16)).requires_grad_(True)
    before = float(L.similarity_loss(s, t))
    opt = torch.optim.SGD([s], lr=1.0)
    for _ in range(50):
        opt.zero_grad()
        L.similarity_loss(s, t).backward()
        opt.step()
    assert float(L.similarity_loss(s, t)) < before * 0.3


@pytest.fixture(scope="module")
def parts(tiny_checkpoint):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge.train import read_training_info

    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    data = load_dataset(read_training_info(tiny_checkpoint)["data"]["source"])
    return model, tok, data


def _pruned(model, tok, data):
    """One of the two layers (the last), half the heads: a student whose Q/K/V are narrower."""
    student = copy.deepcopy(model)
    heads, ffn = P.magnitude_importance(student)
    P.apply(student, P.plan(heads, ffn, 0.5, 0.0, (1,)))
    return student


def _transfer_terms(student, teacher, tok, config, kept):
    """(hidden MSE, relation KL) of `student` against `teacher` on TEXTS."""
    t = L.TransferLoss(student, teacher, config, kept)
    x = dict(tok(TEXTS, padding=True, return_tensors="pt"))
    try:
        with torch.no_grad():
            s_out = student.eval()(**x, output_hidden_states=True)
            t_out = teacher(**x, output_hidden_states=True)
        h = L.hidden_loss(s_out.hidden_states, t_out.hidden_states, t.mapping, x["attention_mask"])
        r = L.relation_loss(t.student_qkv.out, t.teacher_qkv.out, x["attention_mask"], t.heads)
    finally:
        t.close()
    return float(h), float(r)


@pytest.mark.parametrize("weights", [dict(hidden_weight=1.0), dict(attention_relation_weight=1.0)])
def test_each_loss_transfers_what_it_measures(parts, weights):
    model, tok, data = parts
    probe = DistillConfig(hidden_weight=1.0, attention_relation_weight=1.0)
    results = {}
    for name, extra in (("logits", {}), ("with", weights)):
        student = _pruned(model, tok, data)
        config = DistillConfig(steps=30, batch_size=16, learning_rate=3e-3, alpha=1.0, **extra)
        torch.manual_seed(0)
        record = D.distill(student, model, tok, data.train, config, 32, "cpu", ["a"], kept_layers=(1,))
        results[name] = _transfer_terms(student, model, tok, probe, (1,))
        if extra:
            assert record["transfer"]["layer_mapping"] == [1]
            assert set(record["transfer"]["last_losses"]) == {"hidden" if "hidden_weight" in extra else "relation"}
        else:
            assert "transfer" not in record
    term = 0 if "hidden_weight" in weights else 1
    assert results["with"][term] < results["logits"][term] * 0.8
    # the hooks are gone from the teacher (the caller's model) and from the student
    assert not any(m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("model_type", ["distilbert", "mpnet", "deberta-v2", "modernbert", "roberta"])
def test_relation_hooks_find_qkv_in_every_family(tmp_path, model_type):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tests.conftest import make_tiny_family_model

    path = make_tiny_family_model(tmp_path / model_type, model_type)
    teacher = AutoModelForSequenceClassification.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    student = copy.deepcopy(teacher)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.05 * torch.randn_like(p))
    config = DistillConfig(hidden_weight=1.0, attention_relation_weight=1.0)
    h, r = _transfer_terms(student, teacher, tok, config, None)
    assert h > 0 and r > 0 and all(map(torch.isfinite, map(torch.tensor, (h, r))))
    assert _transfer_terms(teacher, teacher, tok, config, None) == pytest.approx((0.0, 0.0), abs=1e-5)


def test_relation_loss_refuses_a_family_without_an_adapter():
    from transformers import AlbertConfig, AlbertForSequenceClassification

    model = AlbertForSequenceClassification(AlbertConfig(
        vocab_size=50, embedding_size=16, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32))
    with pytest.raises(ConfigError, match="'albert'.*attention_relation_weight = 0"):
        L.transfer_loss(model, model, DistillConfig(attention_relation_weight=1.0))
    assert L.transfer_loss(model, model, DistillConfig()) is None
    assert L.transfer_loss(model, model, DistillConfig(hidden_weight=1.0)).student_qkv is None  # any family
