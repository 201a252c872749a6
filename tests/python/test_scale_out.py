"""One data set scored four ways — `ember score`, ember.scoring in this process, PySpark
(local mode) and Ray (a local instance) — to the same predictions and the same errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import ember
from ember import scoring

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

EMBER = os.environ.get("EMBER_BIN", "")


def dataset(n=5000, seed=21):
    """Records for the `mlp` bundle with keys, extra columns, missing and refused values."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "id": np.arange(n, dtype=np.int64) * 3 + 1,
        "region": rng.choice(["n", "s"], n),                 # neither a feature nor a key
        "age": rng.integers(18, 90, n).astype(float),
        "income": rng.lognormal(10, 0.5, n),
        "tenure": rng.uniform(0, 20, n),
        "visits": pd.array(rng.poisson(4, n), dtype="Int64"),  # integers, some missing
        "plan": rng.choice(["basic", "plus", "pro"], n),
    })
    df.loc[df.index % 101 == 7, "visits"] = pd.NA                 # required: refused
    df.loc[df.index % 89 == 3, "plan"] = "gold"                   # not a category
    df.loc[df.index % 97 == 11, "income"] = np.nan                # missing: refused
    return df


def by_id(table):
    frame = table.to_pandas() if hasattr(table, "to_pandas") else table
    return frame.sort_values("id").reset_index(drop=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "data.parquet"
    df = dataset()
    df.to_parquet(path, index=False, row_group_size=1200)
    return {"path": path, "frame": df}


@pytest.fixture(scope="module")
def local_answer(mlp, data):
    model = ember.Model.load(mlp["path"])
    return by_id(scoring.score_batch(model, pq.read_table(data["path"]), ["id"]))


def assert_same(got, want):
    got, want = by_id(got), by_id(want)
    assert list(got.id) == list(want.id)
    np.testing.assert_array_equal(got.output.to_numpy(np.float32, na_value=np.nan),
                                  want.output.to_numpy(np.float32, na_value=np.nan))
    assert list(got.ember_error.isna()) == list(want.ember_error.isna())
    for a, b in zip(got.ember_error.dropna(), want.ember_error.dropna()):
        assert json.loads(a) == json.loads(b)


def test_local_answer_is_what_the_python_stack_computes(mlp, data, local_answer):
    df = data["frame"]
    assert len(local_answer) == len(df)
    scored = local_answer[local_answer.ember_error.isna()]
    refused = df[(df.visits.isna()) | (df.plan == "gold") | (df.income.isna())]
    assert set(local_answer[local_answer.ember_error.notna()].id) == set(refused.id)
    valid = df[~df.id.isin(refused.id)].sort_values("id")
    frame = valid.drop(columns=["id", "region"]).astype({"visits": float})
    np.testing.assert_allclose(scored.output.to_numpy(np.float32), mlp["expect"](frame), rtol=1e-5, atol=1e-6)
    one = json.loads(local_answer[local_answer.id == df.id[7]].ember_error.iloc[0])
    assert one[0]["path"] == "/visits"


def test_batches_of_any_size_give_the_same_scores(mlp, data, local_answer):
    model = ember.Model.load(mlp["path"])
    table = pq.read_table(data["path"])
    parts = [scoring.score_batch(model, b, ["id"]) for b in table.to_batches(max_chunksize=333)]
    assert_same(pa.Table.from_batches(parts), local_answer)


@pytest.mark.skipif(not EMBER, reason="EMBER_BIN not set")
def test_the_cli_gives_the_same_scores(mlp, data, local_answer, tmp_path):
    out = tmp_path / "preds.parquet"
    result = subprocess.run([EMBER, "score", "--model", str(mlp["path"]), "--input", str(data["path"]), "--output",
                             str(out), "--key", "id", "--chunk-rows", "700", "--threads", "2"],
                            capture_output=True, text=True)
    if result.returncode != 0 and "without Parquet" in result.stderr:
        pytest.skip("this ember was built without Parquet")
    assert result.returncode == 0, result.stderr
    cli = by_id(pq.read_table(out))
    want = local_answer[local_answer.ember_error.isna()].reset_index(drop=True)
    assert list(cli.id) == list(want.id)
    np.testing.assert_array_equal(cli.output.to_numpy(np.float32), want.output.to_numpy(np.float32))
    rejects = {}
    with open(tmp_path / "preds.rejects.jsonl") as f:
        for line in f:
            r = json.loads(line)
            rejects[data["frame"].id[r["row"]]] = r["errors"]
    refused = local_answer[local_answer.ember_error.notna()]
    assert rejects == {i: json.loads(e) for i, e in zip(refused.id, refused.ember_error)}


def test_cached_model_loads_once_per_process(mlp):
    before = scoring.loads
    a = scoring.cached_model(mlp["path"])
    b = scoring.cached_model(str(mlp["path"]))
    assert a is b
    assert scoring.loads - before <= 1


def test_bad_keys_and_empty_batches(mlp, data):
    model = ember.Model.load(mlp["path"])
    table = pq.read_table(data["path"])
    with pytest.raises(KeyError, match="key column 'nope'"):
        scoring.score_batch(model, table, ["nope"])
    empty = scoring.score_batch(model, table.slice(0, 0), ["id"])
    assert empty.num_rows == 0 and empty.schema.names == ["id", "output", "ember_error"]
    no_features = scoring.score_batch(model, table.select(["id"]).slice(0, 3), ["id"])
    assert no_features.column("output").null_count == 3
    assert "required" in no_features.column("ember_error")[0].as_py()


@pytest.fixture(scope="module")
def spark():
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    session = (SparkSession.builder.master("local[2]").appName("ember-test")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "700")
               .config("spark.sql.shuffle.partitions", "4")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_spark_gives_the_same_scores(spark, mlp, data, local_answer, tmp_path):
    import ember.spark
    df = spark.read.parquet(str(data["path"])).repartition(3)
    answer = ember.spark.score(df, mlp["path"], keys=["id"])
    assert answer.columns == ["id", "output", "ember_error"]
    assert_same(answer.toPandas(), local_answer)
    # The bundle shipped with the job rather than read from a shared path.
    shipped = ember.spark.score(df, mlp["path"], keys=["id"], ship=True, served_by=True).toPandas()
    assert_same(shipped, local_answer)
    assert set(shipped.served_by.dropna()) == {"primary"}


def test_spark_from_a_registry(spark, mlp, data, local_answer, tmp_path):
    import ember.spark
    registry = ember.Registry.init(tmp_path / "reg")
    registry.publish(mlp["path"], "alice", "first")
    registry.set_alias("churn", "production", 1, actor="alice")
    df = spark.read.parquet(str(data["path"]))
    answer = ember.spark.score(df, "churn@production", registry=tmp_path / "reg", keys=["id"])
    assert_same(answer.toPandas(), local_answer)
    with pytest.raises(KeyError, match="key column"):
        ember.spark.score(df, mlp["path"], keys=["nope"])


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    import ray.data
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def test_ray_gives_the_same_scores(ray_local, mlp, data, local_answer):
    import ember.ray
    ds = ray_local.data.read_parquet(str(data["path"]))
    # Half a CPU each: the two actors leave room for the tasks that read the file.
    answer = ember.ray.score(ds, mlp["path"], keys=["id"], workers=2, batch_size=900, num_cpus=0.5)
    assert_same(answer.to_pandas(), local_answer)
