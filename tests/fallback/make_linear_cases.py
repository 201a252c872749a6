"""Fits scikit-learn's linear models on its bundled data sets, exports them with
ember.sklearn.export_linear, and writes what scikit-learn predicts, for the C++ parity
test (tests/fallback/test_linear.cpp).

    python tests/fallback/make_linear_cases.py OUT_DIR
"""

import json
import os
import sys

import numpy as np
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
from ember.sklearn import export_linear  # noqa: E402


def standardized(x):
    # The chain's linear model sees preprocessed features; float32, as ember's rows are.
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x.astype(np.float32).astype(np.float64)


def case(out_dir, name, model, x, y):
    model.fit(x, y)
    export_linear(model, os.path.join(out_dir, f"linear_{name}.json"))
    expected = {"x": x.tolist()}
    if isinstance(model, LogisticRegression):
        expected["predict_index"] = [int(np.where(model.classes_ == c)[0][0]) for c in model.predict(x)]
        expected["predict_proba"] = model.predict_proba(x).tolist()
        d = model.decision_function(x)
        expected["decision_function"] = (d.reshape(len(x), -1)).tolist()
        expected["classes"] = [str(c) for c in model.classes_]
    else:
        expected["predict"] = model.predict(x).reshape(len(x), -1).tolist()
    with open(os.path.join(out_dir, f"linear_{name}_expected.json"), "w") as f:
        json.dump(expected, f)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    cancer = load_breast_cancer()
    wine = load_wine()
    xc, xw = standardized(cancer.data), standardized(wine.data)
    case(out_dir, "cancer_logistic", LogisticRegression(max_iter=5000), xc, cancer.target)
    case(out_dir, "cancer_linear", LinearRegression(), xc, cancer.data[:, 0])
    case(out_dir, "cancer_ridge", Ridge(alpha=0.5), xc, np.column_stack([cancer.data[:, 1], cancer.data[:, 2]]))
    case(out_dir, "wine_logistic", LogisticRegression(max_iter=5000, C=0.3), xw, wine.target)
    case(out_dir, "wine_ridge", Ridge(alpha=2.0), xw, wine.data[:, 0])
    # String labels: ember reports the class index, whose label is classes()[index].
    labels = np.array(["malignant", "benign"])[cancer.target]
    case(out_dir, "cancer_labels", LogisticRegression(max_iter=5000, C=0.1), xc, labels)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
