"""Batches given column by column (a DataFrame, a dict of numpy columns, a list of dicts)
are read without JSON text: they must answer exactly as the same records' JSON texts,
whatever the values (wrong types, missing values in every spelling, numpy scalars,
unknown keys, values only JSON can carry), and must not read freed memory when other
threads change the caller's objects while the GIL is released."""

import json
import math
import threading

import numpy as np
import pandas as pd
import pytest

import ember
from conftest import customers


def as_json(value):
    """What the record's JSON says for a Python value (NaN and pandas.NA are null)."""
    if value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return as_json(value.item())
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    return value


def texts(rows):
    return [json.dumps(as_json(r), separators=(",", ":")) for r in rows]


def same(a, b):
    assert a.records == b.records
    assert list(a.source_index) == list(b.source_index)
    assert a.invalid == b.invalid
    np.testing.assert_array_equal(a.outputs["output"], b.outputs["output"])


def hostile_rows(n, seed):
    rng = np.random.default_rng(seed)
    rows = [dict(r) for r in customers(n, seed).to_dict("records")]
    odd = [None, float("nan"), pd.NA, "12", True, np.int64(40), np.float32(2.5), np.uint8(7), -0.0, 10**6,
           "", "pro", 1e308, np.bool_(False)]
    for r in rows:
        for key in list(r):
            if rng.random() < 0.08:
                r[key] = odd[rng.integers(len(odd))]
            elif rng.random() < 0.02:
                del r[key]
        if rng.random() < 0.02:
            r["unknown"] = 1  # the schema forbids other keys
    return rows


def test_lists_of_dicts_answer_as_their_json_texts(mlp):
    model = ember.Model.load(mlp["path"])
    rows = hostile_rows(400, 5)
    b = model.predict_batch(rows)
    assert 0 < b.valid < 400 and len(b.invalid) > 20
    same(b, model.predict_batch(texts(rows)))
    # Values only JSON text can carry (integers beyond 64 bits, nested objects) send
    # the whole batch that way, with the same answers.
    rows[3]["age"] = 2**70
    rows[7]["tenure"] = {"years": 3}
    same(model.predict_batch(rows), model.predict_batch(texts(rows)))


def test_frames_and_numpy_columns_answer_as_their_json_texts(mlp):
    model = ember.Model.load(mlp["path"])
    frame = customers(300, 8)
    frame.loc[::7, "income"] = np.nan               # float NaN: missing, so refused (required)
    frame["visits"] = frame["visits"].astype(np.int16)
    frame["age"] = frame["age"].astype(object)
    frame.loc[::11, "age"] = "old"                  # a string in an object column
    frame.loc[::13, "plan"] = None
    frame.loc[::17, "plan"] = "gold"
    rows = [{k: v for k, v in r.items()} for r in frame.to_dict("records")]
    from_frame = model.predict_batch(frame)
    assert 0 < from_frame.valid < 300
    same(from_frame, model.predict_batch(texts(rows)))
    columns = {"age": np.arange(50, dtype=np.uint64), "income": np.linspace(1e4, 9e4, 50, dtype=np.float32),
               "tenure": np.ones(100)[::2],  # strided: read in place
               "visits": (np.arange(50) % 9).astype(np.int8), "plan": np.array(["basic", "plus", "pro", "x", "pro"] * 10)}
    from_columns = model.predict_batch(columns)
    rows = [{k: columns[k][i].item() for k in columns} for i in range(50)]
    same(from_columns, model.predict_batch(texts(rows)))
    assert sorted(from_columns.invalid) == list(range(3, 50, 5))  # "x" is no plan
    assert all(e[0]["instance_path"] == "/plan" for e in from_columns.invalid.values())
    # booleans are not numbers for the schema: refused as their JSON "true" would be
    columns["visits"] = np.arange(50) % 2 == 0
    with pytest.raises(ember.InvalidArgument) as e:
        model.predict_batch(columns)
    assert e.value.errors[0]["instance_path"] == "/visits" and e.value.errors[0]["keyword"] == "type"


def test_changing_the_records_on_another_thread_never_crashes(mlp):
    model = ember.Model.load(mlp["path"])
    rows = [dict(r) for r in customers(2000, 9).to_dict("records")]
    stop = threading.Event()

    def mutate():
        k = 0
        while not stop.is_set():
            r = rows[k % len(rows)]
            r["plan"] = "".join(["p", "r", "o"])  # a new string object each time; the old one is freed
            r.pop("age", None) if k % 3 == 0 else r.__setitem__("age", float(k % 80 + 18))
            k += 1

    t = threading.Thread(target=mutate)
    t.start()
    try:
        for _ in range(30):
            b = model.predict_batch(rows)
            assert b.records == 2000
            assert np.isfinite(b.outputs["output"]).all()
    finally:
        stop.set()
        t.join()


@pytest.mark.parametrize("bad", [
    {"age": np.zeros((3, 2)), "plan": np.zeros(3)},
    {"age": np.zeros(3), "plan": np.zeros(2)},
    {1: np.zeros(3)},
])
def test_malformed_columns_are_invalid_argument(mlp, bad):
    model = ember.Model.load(mlp["path"])
    with pytest.raises(ember.InvalidArgument):
        model.predict_batch(bad)


def test_schemas_that_need_json_take_batches_as_json_text(tmp_path):
    from conftest import linear_model
    path = linear_model(tmp_path / "m")
    schema = json.loads((path / "schema.json").read_text())
    schema["properties"]["tags"] = {"type": "array", "items": {"type": "string"}, "maxItems": 2}
    (path / "schema.json").write_text(json.dumps(schema))
    model = ember.Model.load(path)
    assert not model.schema.accepts_columns()
    frame = pd.DataFrame({"a": [1.0, 2.0, np.inf, np.nan], "b": [1, 1, 1, 1]})
    b = model.predict_batch(frame)  # written as JSON text from the columns
    np.testing.assert_allclose(b.outputs["output"].reshape(-1), [3.5, 4.5])
    assert sorted(b.invalid) == [2, 3]  # an infinity refuses its record, not the call
    b = model.predict_batch([{"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": "x", "b": 1}])  # cells, as JSON text
    np.testing.assert_allclose(b.outputs["output"].reshape(-1), [3.5, 4.5])
    assert sorted(b.invalid) == [2]
    rows = [{"a": 1, "b": 2, "tags": ["x"]}, {"a": 1, "b": 2, "tags": ["x", "y", "z"]}]
    b = model.predict_batch(rows)  # values no column can hold: record by record
    assert len(b) == 1 and b.invalid[1][0]["keyword"] == "maxItems"
    b = model.predict_batch({"a": np.ones(2), "b": np.ones(2), "tags": [["p"], ["q", "r"]]})
    assert len(b) == 2


def test_large_floats_stay_numbers(linear):
    model = ember.Model.load(linear)
    big = 4.6458107801802396e21  # its shortest form is all digits: an integer beyond 64 bits
    assert model.predict({"a": big, "b": 1}).value() == pytest.approx(big)
    assert model.predict_batch([{"a": big, "b": 1}]).outputs["output"].reshape(-1)[0] == pytest.approx(big)
