"""ember.sklearn refuses, by name, every step or option it cannot reproduce exactly."""

import os
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, PolynomialFeatures, StandardScaler

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
from ember.sklearn import UnsupportedError, export_pipeline  # noqa: E402

FRAME = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, np.nan], "b": [0.5, 0.1, 0.2, 0.3, 0.9],
                      "c": ["x", "y", "x", "z", "y"]})


def refused(est, tmp_path, fragment, frame=FRAME):
    est.fit(frame)
    with pytest.raises(UnsupportedError, match=fragment):
        export_pipeline(est, str(tmp_path / "p.json"))


def test_unsupported_steps_are_named(tmp_path):
    refused(Pipeline([("poly", PolynomialFeatures())]), tmp_path, "step 'pipeline/poly' \\(PolynomialFeatures\\)",
            FRAME[["b"]])
    refused(ColumnTransformer([("f", FunctionTransformer(np.exp, feature_names_out="one-to-one"), ["b"])]),
            tmp_path, "func=exp is not supported")


def test_unsupported_options_are_named(tmp_path):
    refused(ColumnTransformer([("imp", SimpleImputer(add_indicator=True), ["a"])]), tmp_path, "add_indicator")
    refused(ColumnTransformer([("oh", OneHotEncoder(min_frequency=2), ["c"])]), tmp_path, "infrequent")
    refused(ColumnTransformer([("oh", OneHotEncoder(handle_unknown="infrequent_if_exist"), ["c"])]), tmp_path,
            "handle_unknown")
    refused(ColumnTransformer([("s", StandardScaler(), ["b"])], remainder=StandardScaler()), tmp_path,
            "remainder estimator", FRAME[["a", "b"]].fillna(0))


def test_an_estimator_without_column_names_is_refused(tmp_path):
    est = Pipeline([("s", StandardScaler())]).fit(np.ones((4, 2)))
    with pytest.raises(UnsupportedError, match="not fitted on a DataFrame"):
        export_pipeline(est, str(tmp_path / "p.json"))


def test_supported_pipeline_exports(tmp_path):
    est = ColumnTransformer([("s", Pipeline([("i", SimpleImputer()), ("z", StandardScaler())]), ["a"]),
                             ("oh", OneHotEncoder(), ["c"])], remainder="passthrough").fit(FRAME)
    doc = export_pipeline(est, str(tmp_path / "p.json"))
    assert doc["format"] == "ember-pipeline"
    assert [i["kind"] for i in doc["inputs"]] == ["number", "number", "string"]
    assert doc["remainder"] == "passthrough"
    assert doc["output_names"] == list(est.get_feature_names_out())


def test_columns_by_name_and_by_index(tmp_path):
    est = ColumnTransformer([("s", StandardScaler(), ["b"]), ("t", StandardScaler(), [0])]).fit(FRAME[["a", "b"]].fillna(0))
    doc = export_pipeline(est, str(tmp_path / "p.json"))
    assert [t["columns"] for t in doc["transformers"]] == [["b"], ["a"]]
