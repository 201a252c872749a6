"""Fits scikit-learn preprocessing on real and synthetic data, exports it with
ember.sklearn, and writes what the C++ parity test needs: for each case the exported
pipeline.json, the input rows (unrounded float64, exact integers) and scikit-learn's
transform() of them (float64).

    python tests/pipeline/make_pipeline_cases.py OUT_DIR
"""

import json
import os
import sys

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (FunctionTransformer, KBinsDiscretizer, MaxAbsScaler, MinMaxScaler,
                                   OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
from ember.sklearn import export_pipeline, export_spec  # noqa: E402


def with_missing(frame, fraction, seed):
    rng = np.random.default_rng(seed)
    out = frame.copy()
    for col in out.columns:
        mask = rng.random(len(out)) < fraction
        out.loc[mask, col] = np.nan
    return out


def breast_cancer():
    data = load_breast_cancer(as_frame=True).frame.drop(columns=["target"])
    data = with_missing(data, 0.05, 1)
    cols = list(data.columns)
    ct = ColumnTransformer([
        ("std", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), cols[:10]),
        ("minmax", Pipeline([("impute", SimpleImputer(strategy="mean")),
                             ("scale", MinMaxScaler(feature_range=(-1, 1), clip=True))]), cols[10:18]),
        ("robust", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                             ("scale", RobustScaler(quantile_range=(10, 90)))]), cols[18:24]),
        ("maxabs", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value=0.5)),
                             ("scale", MaxAbsScaler())]), cols[24:28]),
        ("nomean", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler(with_mean=False))]), cols[28:29]),
        ("nostd", Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler(with_std=False))]), cols[2:4]),
        ("robust_nc", Pipeline([("impute", SimpleImputer()), ("scale", RobustScaler(with_centering=False))]),
         cols[4:6]),
        ("robust_ns", Pipeline([("impute", SimpleImputer()), ("scale", RobustScaler(with_scaling=False))]),
         cols[6:8]),
        ("log", Pipeline([("impute", SimpleImputer()),
                          ("log1p", FunctionTransformer(np.log1p, feature_names_out="one-to-one")),
                          ("bins", KBinsDiscretizer(n_bins=5, encode="onehot-dense", strategy="quantile",
                                                    quantile_method="averaged_inverted_cdf"))]), cols[29:30]),
        ("uniform", Pipeline([("impute", SimpleImputer()),
                              ("sqrt", FunctionTransformer(np.sqrt, feature_names_out="one-to-one")),
                              ("clip", FunctionTransformer(np.clip, kw_args={"a_min": 0.2, "a_max": 4.0},
                                                           feature_names_out="one-to-one")),
                              ("bins", KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="uniform"))]),
         cols[0:2]),
    ], remainder="drop")
    return ct, data.iloc[:400], data.iloc[400:]


def wine():
    data = load_wine(as_frame=True).frame.drop(columns=["target"])
    data = with_missing(data, 0.08, 2)
    pipe = Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())])
    return pipe, data.iloc[:120], data.iloc[120:]


def mixed():
    rng = np.random.default_rng(3)
    n = 300
    frame = pd.DataFrame({
        "income": rng.normal(50000, 15000, n),
        "age": rng.integers(18, 90, n).astype(float),
        "plan": rng.choice(["basic", "pro", "enterprise"], n).astype(object),
        "region": rng.choice(["north", "south", "east", "west", "centre"], n).astype(object),
        "churned": rng.choice(["yes", "no"], n).astype(object),
        "stars": rng.integers(1, 6, n),
        "score": rng.random(n),
        "weight": rng.normal(70, 10, n),
    })
    frame = with_missing(frame[["income", "age"]], 0.1, 4).join(frame.drop(columns=["income", "age"]))
    # Missing as NaN, as pandas 3 stores a None: pandas 2 keeps None in an object column,
    # which scikit-learn's SimpleImputer does not count as missing (JSON's null cannot
    # tell the two apart; ember counts both as missing).
    frame.loc[rng.random(n) < 0.1, "plan"] = np.nan
    train = frame.iloc[:200].copy()
    test = frame.iloc[200:].copy()
    test.loc[test.index[:5], "region"] = "atlantis"  # unseen at fit time
    test.loc[test.index[5:8], "plan"] = "platinum"   # unseen at fit time
    ct = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
         ["income", "age"]),
        ("plan", Pipeline([("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                           ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]), ["plan"]),
        ("region", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["region"]),
        ("churned", OneHotEncoder(drop="if_binary", sparse_output=False), ["churned"]),
        ("stars", OneHotEncoder(drop="first", sparse_output=False), ["stars"]),
        ("plan_given", OneHotEncoder(categories=[["pro", "basic", "enterprise", "gold"]], handle_unknown="ignore",
                                     sparse_output=False), ["plan"]),
        ("weight", "passthrough", ["weight"]),
        ("unused", "drop", ["income"]),
    ], remainder="passthrough")
    return ct, train, test


def exact():
    """Values that float32 would ruin: Unix timestamps, integer IDs above 2^24 and next to
    2^53, money with cents, magnitudes near 1e15, tiny values, negative zero."""
    rng = np.random.default_rng(5)
    n = 400
    ids = np.array([16_777_216 + k for k in range(-3, 37)] +
                   [2**53 - 2, 2**53 - 1, 2**53, 2**53 + 1, 2**53 + 2, 2**62 + 1, -(2**40) - 1], dtype=np.int64)
    frame = pd.DataFrame({
        "ts": 1.7e9 + rng.integers(0, 10**8, n) + rng.random(n),
        "money": rng.integers(-10**9, 10**9, n) / 100.0,
        "big": 1e15 + rng.normal(0, 1e9, n),
        "tiny": rng.random(n) * 1e-300,
        "signed": rng.choice([-0.0, 0.0, 1.5, -2.25], n),
        "user": rng.choice(ids, n),
    })
    train = frame.iloc[:250].copy()
    test = frame.iloc[250:].copy()
    test.loc[test.index[:3], "user"] = 16_777_216 + 1000  # unseen at fit time
    ct = ColumnTransformer([
        ("ts", StandardScaler(), ["ts"]),
        ("money", MinMaxScaler(), ["money"]),
        ("big", RobustScaler(), ["big"]),
        ("tiny", StandardScaler(), ["tiny"]),
        ("user", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["user"]),
        ("user_ord", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1), ["user"]),
    ], remainder="passthrough")
    return ct, train, test


def cell(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    return v


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    cases = []
    # Values go in unrounded, as a request brings them: ember must match in float64.
    for name, make in [("breast_cancer", breast_cancer), ("wine", wine), ("mixed", mixed), ("exact", exact)]:
        estimator, train, test = make()
        fitted = estimator.fit(train)
        path = os.path.join(out_dir, f"pipeline_{name}.json")
        doc = export_pipeline(fitted, path)
        strings = [i["name"] for i in doc["inputs"] if i["kind"] == "string"]
        spec = export_spec(fitted, [i["name"] for i in doc["inputs"]], string_columns=strings)
        expected = np.asarray(fitted.transform(test), dtype=np.float64)
        inputs = [i["name"] for i in doc["inputs"]]
        rows = [[cell(v) for v in row] for row in test[inputs].itertuples(index=False)]
        train_rows = [[cell(v) for v in row] for row in train[inputs].itertuples(index=False)]
        cases.append({"name": name, "pipeline": path, "rows": rows, "expected": expected.tolist(),
                      "output_names": doc["output_names"], "spec": spec, "train_rows": train_rows})
    with open(os.path.join(out_dir, "pipeline_cases.json"), "w") as f:
        json.dump(cases, f)
    print(f"{len(cases)} pipeline parity cases written to {out_dir}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
