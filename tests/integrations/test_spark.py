"""The README's Spark example (predict_batch_udf around lpm_edge.load); skipped without pyspark and a JRE."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest


@pytest.mark.slow
def test_spark_predict_batch_udf(tiny_bundle, monkeypatch):
    pytest.importorskip("pyspark")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # Spark's Python workers: this environment
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for Spark")
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StringType

    def make_predict():
        import lpm_edge

        clf = lpm_edge.load(str(tiny_bundle), threads=1)

        def predict(texts: np.ndarray) -> np.ndarray:
            return np.array([p.label for p in clf.predict(list(texts))])

        return predict

    spark = SparkSession.builder.master("local[2]").getOrCreate()
    try:
        df = spark.createDataFrame([(i, t) for i, t in enumerate(["a great film", "dull and boring"] * 50)],
                                   ["id", "text"])
        classify = predict_batch_udf(make_predict, return_type=StringType(), batch_size=64)
        rows = df.withColumn("label", classify("text")).orderBy("id").collect()
    finally:
        spark.stop()
    from lpm_edge import load

    expected = [p.label for p in load(tiny_bundle).predict([r["text"] for r in rows])]
    assert [r["label"] for r in rows] == expected


@pytest.mark.slow
def test_spark_records_of_any_task(tmp_path_factory, request, monkeypatch):
    """The README's second Spark example: each text's record as JSON, here for token classification."""
    pytest.importorskip("pyspark")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for Spark")
    import json

    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StringType

    from ..task_bundles import TEXTS, task_bundle

    bundle = str(task_bundle("token-classification", tmp_path_factory, request))

    def make_records():
        import lpm_edge

        clf = lpm_edge.load(bundle, threads=1)
        return lambda texts: np.array([json.dumps(r) for r in clf.records(list(texts))])

    spark = SparkSession.builder.master("local[2]").getOrCreate()
    try:
        df = spark.createDataFrame(list(enumerate(TEXTS)), ["id", "text"])
        records = predict_batch_udf(make_records, return_type=StringType(), batch_size=4)
        rows = df.withColumn("prediction", records("text")).orderBy("id").collect()
    finally:
        spark.stop()
    from lpm_edge import load

    want = load(bundle).records(TEXTS)
    got = [json.loads(r["prediction"]) for r in rows]
    assert [[e["text"] for e in r["entities"]] for r in got] == [[e["text"] for e in r["entities"]] for r in want]
