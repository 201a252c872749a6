"""ember.Model from Python: answers equal scikit-learn + torch on records the test
draws, from dicts, JSON text, pandas rows and frames and dicts of numpy columns;
outputs share ember's memory; every bad input is a clear exception of ember.errors."""

import gc
import json

import numpy as np
import pytest

import ember
from conftest import customers


def records(frame):
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()} for row in frame.to_dict("records")]


def test_single_records_equal_scikit_learn_and_torch(mlp):
    model = ember.Model.load(mlp["path"])
    assert model.name == "churn"
    assert model.features == ["age", "income", "tenure", "visits", "plan"]
    frame = customers(60, 7)
    expected = mlp["expect"](frame)
    for i, rec in enumerate(records(frame)):
        p = model.predict(rec)
        assert p.outputs["output"].shape == (1, 1)
        assert p.value() == pytest.approx(float(expected[i]), abs=1e-5)
        assert p.served_by == "primary"
        assert model.predict(json.dumps(rec)).value() == p.value()          # JSON text
        assert model.predict(frame.iloc[i]).value() == p.value()            # a pandas row
        assert model.predict(json.dumps(rec).encode()).value() == p.value()  # bytes


def test_batches_from_lists_frames_and_columns_agree(mlp):
    model = ember.Model.load(mlp["path"])
    frame = customers(300, 11)
    expected = mlp["expect"](frame)
    from_frame = model.predict_batch(frame)
    from_list = model.predict_batch(records(frame))
    from_columns = model.predict_batch({c: frame[c].to_numpy() for c in frame.columns})
    for b in (from_frame, from_list, from_columns):
        assert len(b) == b.valid == b.records == 300
        assert list(b.source_index) == list(range(300))
        np.testing.assert_allclose(b.outputs["output"].reshape(-1), expected, atol=1e-5)
        assert set(b.served_by) == {"primary"}
        assert b.failed_rows == 0 and b.invalid == {}
    np.testing.assert_allclose(from_frame.to_frame()["output"].to_numpy(), expected, atol=1e-5)


def test_invalid_records_in_a_batch_are_reported_with_their_paths(mlp):
    model = ember.Model.load(mlp["path"])
    rows = records(customers(5, 2))
    rows[1]["plan"] = "gold"
    rows[3]["age"] = "old"
    del rows[4]["income"]
    b = model.predict_batch(rows)
    assert len(b) == 2 and list(b.source_index) == [0, 2]
    assert sorted(b.invalid) == [1, 3, 4]
    assert b.invalid[1][0]["instance_path"] == "/plan"
    assert b.invalid[3][0]["instance_path"] == "/age" and b.invalid[3][0]["keyword"] == "type"
    assert b.invalid[4][0]["keyword"] == "required"
    frame = b.to_frame()
    assert frame["output"].isna().tolist() == [False, True, False, True, True]
    with pytest.raises(ember.InvalidArgument) as e:
        model.predict_batch([rows[1], rows[3]])
    assert e.value.errors and e.value.errors[0]["instance_path"] == "/plan"


def test_errors_are_exceptions_of_their_code_with_the_validation_errors_as_data(mlp, linear, tmp_path):
    model = ember.Model.load(linear)
    with pytest.raises(ember.InvalidArgument) as e:
        model.predict({"a": "x", "b": 2, "c": 1})
    assert isinstance(e.value, ValueError) and isinstance(e.value, ember.Error)
    assert e.value.code == "InvalidArgument"
    assert {err["instance_path"] for err in e.value.errors} == {"/a", "/c"}
    assert "InvalidArgument" in str(e.value)
    with pytest.raises(ember.NotFound) as nf:
        ember.Model.load(tmp_path / "nowhere")
    assert isinstance(nf.value, FileNotFoundError)
    # A bundle with a changed byte does not load.
    bundle = tmp_path / "bundle"
    import shutil
    shutil.copytree(mlp["path"], bundle)
    schema = bundle / "schema.json"
    schema.write_text(schema.read_text().replace("age", "agf"))
    with pytest.raises(ember.DataLoss) as dl:
        ember.Model.load(bundle)
    assert isinstance(dl.value, OSError)


@pytest.mark.parametrize("bad, message", [
    ([1, 2], "a record is a dict"),
    (42, "a record is a dict"),
    ({"a": float("inf"), "b": 1}, "infinity"),
    ({1: 2}, "key is not a string"),
    ({"a": object(), "b": 1}, "has no JSON form"),
    ('{"a": 1, "b": ', "JSON"),
    ("", "JSON"),
    ("[" * 100 + "]" * 100, ""),
])
def test_malformed_records_are_invalid_argument_never_a_crash(linear, bad, message):
    model = ember.Model.load(linear)
    with pytest.raises(ember.InvalidArgument) as e:
        model.predict(bad)
    assert message in str(e.value)


def test_deep_and_oversized_inputs(linear):
    model = ember.Model.load(linear)
    deep = {"a": 1, "b": 2}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ember.InvalidArgument, match="deeper than 64"):
        model.predict(deep)
    with pytest.raises(ember.InvalidArgument):
        model.predict('{"a": 1, "b": 2, "pad": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(ember.InvalidArgument, match="has 2 values"):
        model.predict_batch({"a": np.zeros(3), "b": np.zeros(2)})
    with pytest.raises(ember.InvalidArgument, match="not one-dimensional"):
        model.predict_batch({"a": np.zeros((3, 2)), "b": np.zeros(3)})
    with pytest.raises(ember.InvalidArgument, match="records are a list"):
        model.predict_batch(5)
    with pytest.raises(ember.InvalidArgument):
        model.predict_batch([])


def test_numpy_inputs_and_missing_values(linear):
    model = ember.Model.load(linear)
    assert model.predict({"a": np.float32(1.5), "b": np.int64(2)}).value() == pytest.approx(6.0)
    b = model.predict_batch({"a": np.array([1, 2, 3], dtype=np.int32), "b": np.array([1.0, np.nan, 2.0])})
    assert list(b.source_index) == [0, 2]  # NaN is a missing value: "b" is required
    assert b.invalid[1][0]["instance_path"] == "/b"
    big = model.predict_batch({"a": np.arange(10_000, dtype=np.float64), "b": np.ones(10_000, dtype=np.float32)})
    np.testing.assert_allclose(big.outputs["output"].reshape(-1), np.arange(10_000) + 2.5, rtol=1e-6)


def test_outputs_share_ember_memory_and_outlive_the_model(linear):
    model = ember.Model.load(linear)
    p = model.predict({"a": 1, "b": 1})
    first, again = p.outputs["output"], p.outputs["output"]
    assert first.__array_interface__["data"][0] == again.__array_interface__["data"][0]  # no copy
    assert not first.flags.writeable and not first.flags.owndata
    with pytest.raises(ValueError):
        first[0] = 7
    b = model.predict_batch([{"a": i, "b": 0} for i in range(100)])
    arr = b.outputs["output"]
    assert arr.__array_interface__["data"][0] == b.outputs["output"].__array_interface__["data"][0]
    del model, p, b
    gc.collect()
    assert float(first[0]) == pytest.approx(3.5)
    assert float(arr[99]) == pytest.approx(99.5)
