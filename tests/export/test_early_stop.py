"""Early stopping of distillation on validation texts: the best student is kept, the curve recorded."""

import copy
import hashlib
import json
import logging

import pytest
import torch

from lpm_edge.data import load_dataset
from lpm_edge.export import distill as D
from lpm_edge.export import early_stop as E
from lpm_edge.export.recipe import DistillConfig, PruneConfig, Recipe
from lpm_edge.export.workdir import student_key


@pytest.fixture(scope="module")
def parts(tiny_checkpoint):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge.train import read_training_info

    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    data = load_dataset(read_training_info(tiny_checkpoint)["data"]["source"])
    return model, tok, data


def _scripted(monkeypatch, accuracies):
    """Make the student's checks score `accuracies` in turn; return the weights seen at each check."""
    real, seen, calls = E.logits_of, [], []

    def fake(model, tokenizer, texts, max_length):
        if not calls:  # the first call scores the teacher
            calls.append(0)
            return real(model, tokenizer, texts, max_length)
        acc = accuracies[len(seen)]
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        labels = fake.labels
        right = int(round(acc * len(labels)))
        pred = torch.cat([labels[:right], 1 - labels[right:]])  # (N,) the first `right` correct
        return torch.nn.functional.one_hot(pred, 2).float() * 5

    monkeypatch.setattr(E, "logits_of", fake)
    return fake, seen


def test_stops_after_patience_and_keeps_the_best_student(parts, monkeypatch):
    model, tok, data = parts
    fake, seen = _scripted(monkeypatch, [0.5, 0.75, 0.625, 0.625, 0.9])
    real_init = E.EarlyStopping.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        fake.labels = self.labels

    monkeypatch.setattr(E.EarlyStopping, "__init__", init)
    student = copy.deepcopy(model)
    config = DistillConfig(steps=40, batch_size=16, learning_rate=1e-3, eval_every=3, patience=2, eval_samples=8)
    torch.manual_seed(0)
    record = D.distill(student, model, tok, data.train, config, 32, "cpu", ["a"], validation=data.validation)
    es = record["early_stopping"]
    assert [c[0] for c in es["curve"]] == [3, 6, 9, 12]  # two checks without gain after step 6: stop at 12
    assert record["steps"] == 12 and es["stopped_at"] == 12
    assert es["best_step"] == 6 and es["best_accuracy"] == 0.75 and es["eval_texts"] == 8
    best = seen[1]
    for k, v in student.state_dict().items():
        torch.testing.assert_close(v, best[k], rtol=0, atol=0, msg=k)
    assert not torch.equal(student.state_dict()["classifier.weight"], seen[3]["classifier.weight"])


def test_early_stopping_measures_the_student_it_keeps(parts):
    model, tok, data = parts
    student = copy.deepcopy(model)
    config = DistillConfig(steps=12, batch_size=16, learning_rate=1e-3, eval_every=4, patience=5, eval_samples=20)
    torch.manual_seed(0)
    record = D.distill(student, model, tok, data.train, config, 32, "cpu", ["a"], validation=data.validation)
    es = record["early_stopping"]
    assert [c[0] for c in es["curve"]] == [4, 8, 12] and record["steps"] == 12
    best = max(es["curve"], key=lambda c: (c[1], -c[2]))
    assert es["best_step"] == best[0]
    texts, labels = E.sample(data.validation, 20)
    logits = E.logits_of(student, tok, texts, 32)
    assert float((logits.argmax(-1) == torch.tensor(labels)).float().mean()) == pytest.approx(es["best_accuracy"])


def test_no_early_stopping_by_default(parts):
    model, tok, data = parts
    record = D.distill(copy.deepcopy(model), model, tok, data.train, DistillConfig(steps=2, batch_size=16), 32,
                       "cpu", ["a"], validation=data.validation)
    assert "early_stopping" not in record and record["steps"] == 2


def test_interrupted_run_resumes_with_its_early_stopping_state(parts, tmp_path, monkeypatch, caplog):
    model, tok, data = parts
    monkeypatch.setattr(D, "CHECKPOINT_SECONDS", 0.0)  # a checkpoint after every step
    config = DistillConfig(steps=8, batch_size=16, learning_rate=1e-3, eval_every=2, patience=10, eval_samples=16)

    def run(folder):
        student = copy.deepcopy(model)
        torch.manual_seed(0)
        record = D.distill(student, model, tok, data.train, config, 32, "cpu", ["a"], checkpoint=folder,
                           validation=data.validation)
        return student, record

    whole, whole_record = run(None)
    real_clip, calls = torch.nn.utils.clip_grad_norm_, []

    def interrupt_at_step_6(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_clip(*args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", interrupt_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", real_clip)
    with caplog.at_level(logging.INFO, logger="lpm_edge.export"):
        resumed, record = run(tmp_path)
    assert "resuming distillation at step 5 of 8" in caplog.text
    assert record["early_stopping"]["curve"] == whole_record["early_stopping"]["curve"]
    assert record["early_stopping"]["best_step"] == whole_record["early_stopping"]["best_step"]
    expected = whole.state_dict()
    for k, v in resumed.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=0, msg=k)


def _old_key(ckpt, dataset, recipe):
    """The student key as computed before the early-stopping and transfer fields existed."""
    settings = recipe.to_dict()
    train = hashlib.sha256("\x00".join(dataset.train.texts).encode()).hexdigest()
    old = {k: settings["distill"][k] for k in ("steps", "temperature", "alpha", "batch_size", "learning_rate")}
    blob = json.dumps([str(ckpt.resolve()), (ckpt / "config.json").stat().st_mtime_ns, dataset.name, train,
                       settings["prune"], old, recipe.max_length], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def test_new_distill_fields_enter_the_student_key_only_when_set(tiny_checkpoint, parts):
    data = parts[2]
    recipe = Recipe(name="t", prune=PruneConfig(heads=0.5), distill=DistillConfig(steps=10))
    assert student_key(tiny_checkpoint, data, recipe) == _old_key(tiny_checkpoint, data, recipe)
    keys = {student_key(tiny_checkpoint, data, recipe)}
    for change in (dict(eval_every=5), dict(patience=2), dict(eval_samples=100), dict(hidden_weight=1.0),
                   dict(attention_relation_weight=1.0), dict(similarity_weight=1.0), dict(augment="edit"),
                   dict(augment_copies=2)):
        keys.add(student_key(tiny_checkpoint, data, recipe.replace(distill=DistillConfig(steps=10, **change))))
    assert len(keys) == 9


def test_the_student_key_of_a_pair_dataset_reads_its_validation_pairs(tiny_checkpoint):
    """Early stopping makes the validation texts part of the key; pairs are hashed as pairs."""
    from dataclasses import replace

    from lpm_edge.data import Dataset, Split

    def split(name, pairs):
        return Split(tuple(pairs), tuple(i % 2 for i in range(len(pairs))), name)

    train = split("train", [("a plot", "a sentence"), ("another plot", "another sentence")])
    val = split("validation", [("a third plot", "its sentence"), ("a fourth", "one more")])
    data = Dataset("pairs", ("no", "yes"), train, val, split("test", [("x y", "z w")]), inputs=("text", "text_pair"))
    recipe = Recipe(name="t", prune=PruneConfig(heads=0.5), distill=DistillConfig(steps=10, eval_every=5))
    key = student_key(tiny_checkpoint, data, recipe)
    changed = replace(data, validation=split("validation", [("a third plot", "its other sentence"), ("a fourth", "one more")]))
    assert key != student_key(tiny_checkpoint, changed, recipe)
    assert key == student_key(tiny_checkpoint, replace(data), recipe)
