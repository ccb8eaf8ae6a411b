"""The transfer set: unlabelled texts (--unlabelled) and augmented copies join distillation, teacher only."""

import copy
import json
import math

import pytest
import torch

from lpm_edge.cli import main
from lpm_edge.data import Split, load_dataset
from lpm_edge.errors import ConfigError, DataError
from lpm_edge.export import distill as D
from lpm_edge.export import export
from lpm_edge.export import transfer as T
from lpm_edge.export.recipe import DistillConfig, PruneConfig, QuantizeConfig, Recipe


def test_edit_augmentation_is_deterministic_and_changes_texts():
    texts = ["the acting was superb and the story lovely", "a dull film", "ok", "one two"]
    config = DistillConfig(augment="edit", augment_copies=2)
    first, again = T.augmented(texts, config), T.augmented(texts, config)
    assert first == again and len(first) == 4  # two copies of each text of 3+ words
    for edited, text in zip(first, [texts[0], texts[1]] * 2):
        assert edited != text and set(edited.split()) <= set(text.split())
        assert len(text.split()) - len(edited.split()) >= 1  # a span went
    assert T.augmented(texts, DistillConfig()) == []


def test_recipe_refuses_an_unknown_augmentation():
    with pytest.raises(ConfigError, match="augment='mlm'.*masked-LM head"):
        Recipe.from_dict({"name": "t", "distill": {"augment": "mlm"}})


@pytest.fixture(scope="module")
def parts(tiny_checkpoint):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lpm_edge.train import read_training_info

    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint, attn_implementation="eager").eval()
    tok = AutoTokenizer.from_pretrained(tiny_checkpoint)
    data = load_dataset(read_training_info(tiny_checkpoint)["data"]["source"])
    return model, tok, data


def test_unlabelled_texts_enter_the_soft_loss_only(parts, monkeypatch):
    model, tok, data = parts
    seen = []
    import lpm_edge.export.batches as B

    real = B.labelled_batches

    def spy(tokenizer, texts, labels, *args, **kwargs):
        for inputs, y in real(tokenizer, texts, labels, *args, **kwargs):
            seen.append(y.clone())
            yield inputs, y

    monkeypatch.setattr(B, "labelled_batches", spy)  # the task's labelled_batches hook reads it from there
    # Two labelled texts among 60 unlabelled ones: most batches hold no gold label at all.
    train = Split(texts=data.train.texts[:2], labels=data.train.labels[:2], name="train")
    extra = list(data.train.texts[2:62])
    student = copy.deepcopy(model)
    torch.manual_seed(0)
    record = D.distill(student, model, tok, train, DistillConfig(steps=8, batch_size=8, learning_rate=1e-3),
                       32, "cpu", ["a"], extra_texts=extra)
    labels = torch.cat(seen)
    assert record["extra_texts"] == 60 and math.isfinite(record["final_loss"])
    assert int((labels == T.NO_LABEL).sum()) > 0 and int((labels >= 0).sum()) >= 1
    assert any(bool((y == T.NO_LABEL).all()) for y in seen)  # a batch without gold labels trained fine
    assert all(torch.isfinite(p).all() for p in student.parameters())


def _recipe_file(tmp_path, steps=4):
    path = tmp_path / "tiny.toml"
    path.write_text(f'name = "tiny"\nmax_length = 32\n[prune]\nheads = 0.5\nimportance_batches = 2\n'
                    f'[distill]\nsteps = {steps}\nbatch_size = 16\n[quantize]\nmode = "none"\n', encoding="utf-8")
    return path


def test_export_unlabelled_flag_changes_the_student_and_is_recorded(tiny_checkpoint, tmp_path, capsys):
    recipe, out = _recipe_file(tmp_path), tmp_path / "bundle"
    texts = tmp_path / "more.txt"
    texts.write_text("a film about a dog\nthe plot follows two brothers\nan old house by the sea\n", encoding="utf-8")
    args = ["export", str(tiny_checkpoint), "--recipe", str(recipe), "--out", str(out), "--force",
            "--student-cache", str(tmp_path / "students")]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--unlabelled", str(texts)]) == 0
    err = capsys.readouterr().err
    assert "reusing the pruned, distilled student" not in err  # other texts, other student
    assert "3 unlabelled texts from more.txt" in err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"]["compression"]["distill"]["unlabelled_texts"] == 3
    assert manifest["source"]["compression"]["distill"]["extra_texts"] == 3
    assert len([p for p in (tmp_path / "students").iterdir() if p.is_dir()]) == 2
    assert main([*args, "--unlabelled", str(texts)]) == 0
    assert "reusing the pruned, distilled student" in capsys.readouterr().err


def test_unlabelled_needs_a_recipe_that_distills(tiny_checkpoint, tmp_path, capsys):
    texts = tmp_path / "more.txt"
    texts.write_text("a film\n", encoding="utf-8")
    code = main(["export", str(tiny_checkpoint), "--recipe", "cpu-int8", "--out", str(tmp_path / "b"),
                 "--unlabelled", str(texts)])
    assert code == 1 and "does not distill (distill.steps = 0)" in capsys.readouterr().err
    code = main(["export", str(tiny_checkpoint), "--recipe", str(_recipe_file(tmp_path)), "--out",
                 str(tmp_path / "b"), "--unlabelled", str(tmp_path / "nope.txt")])
    assert code == 1 and "nope.txt does not exist" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_search_passes_unlabelled_to_every_export(monkeypatch, tmp_path):
    import lpm_edge.search as S

    got = {}

    def fake_search(checkpoint, out, **kwargs):
        got.update(kwargs)
        raise DataError("stop here")

    monkeypatch.setattr(S, "search", fake_search)
    assert main(["search", "ckpt", "--out", str(tmp_path / "s"), "--unlabelled", "u.txt"]) == 1
    assert str(got["unlabelled"]) == "u.txt"


def test_augmented_student_has_its_own_cache_key(tiny_checkpoint, tmp_path):
    base = Recipe(name="t", max_length=32, prune=PruneConfig(heads=0.5, importance_batches=2),
                  distill=DistillConfig(steps=3, batch_size=16), quantize=QuantizeConfig(mode="none"))
    out = tmp_path / "bundle"
    export(tiny_checkpoint, out, base, student_cache=tmp_path / "students")
    export(tiny_checkpoint, out, base.replace(distill=DistillConfig(steps=3, batch_size=16, augment="edit")),
           force=True, student_cache=tmp_path / "students")
    kept = [p for p in (tmp_path / "students").iterdir() if p.is_dir()]
    assert len(kept) == 2
    infos = [json.loads((p / "compression.json").read_text())["distill"] for p in kept]
    assert sorted(i.get("extra_texts", 0) > 0 for i in infos) == [False, True]
