"""ember.sklearn.export_linear: what it writes, and what it refuses."""

import json
import os
import sys

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
from sklearn.svm import LinearSVC

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
from ember.sklearn import UnsupportedError, export_linear  # noqa: E402

X, Y = load_wine(return_X_y=True)
X = (X - X.mean(axis=0)) / X.std(axis=0)


def test_logistic_multinomial(tmp_path):
    model = LogisticRegression(max_iter=2000).fit(X, Y)
    doc = export_linear(model, tmp_path / "linear.json")
    assert json.loads((tmp_path / "linear.json").read_text()) == doc
    assert doc["format"] == "ember-linear" and doc["version"] == 1
    assert doc["estimator"] == "LogisticRegression"
    assert doc["classes"] == [0, 1, 2]
    assert doc["multi_class"] == "multinomial"
    assert np.array(doc["coef"]).shape == (3, 13)
    assert np.allclose(doc["coef"], model.coef_, rtol=0, atol=0)  # every digit kept


def test_binary_and_string_labels():
    labels = np.where(Y == 0, "a", "b")
    doc = export_linear(LogisticRegression(max_iter=2000).fit(X, labels))
    assert doc["classes"] == ["a", "b"]
    assert len(doc["coef"]) == 1


def test_regressions_one_and_two_targets():
    one = export_linear(LinearRegression().fit(X, X[:, 0] * 2 + 1))
    assert len(one["coef"]) == 1 and len(one["intercept"]) == 1
    two = export_linear(Ridge().fit(X, np.column_stack([X[:, 0], X[:, 1]])))
    assert len(two["coef"]) == 2 and len(two["intercept"]) == 2
    without = export_linear(Ridge(fit_intercept=False).fit(X, X[:, 0]))
    assert without["intercept"] == [0.0]


@pytest.mark.parametrize("estimator", [Lasso(), LinearSVC()])
def test_other_estimators_are_refused_by_name(estimator):
    with pytest.raises(UnsupportedError, match=type(estimator).__name__):
        export_linear(estimator.fit(X, Y))


def test_unfitted_is_refused():
    with pytest.raises(UnsupportedError, match="not fitted"):
        export_linear(LogisticRegression())
