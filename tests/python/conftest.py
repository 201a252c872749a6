"""Fixtures for the Python package's tests: a linear model directory (no LibTorch
needed) and a bundle of a scikit-learn ColumnTransformer + PyTorch MLP exported with
ember.export_bundle, with the reference predictions scikit-learn and torch give."""

import json
from typing import Literal

import numpy as np
import pandas as pd
import pydantic
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch import nn

import ember

NUMERIC = ["age", "income", "tenure", "visits"]


def linear_model(path, weight=1.0):
    """output = weight * a + 2 b + 0.5"""
    path.mkdir(parents=True)
    (path / "schema.json").write_text(json.dumps({"type": "object", "properties": {
        "a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"], "additionalProperties": False}))
    (path / "linear.json").write_text(json.dumps({"format": "ember-linear", "version": 1,
                                                  "estimator": "LinearRegression", "coef": [[weight, 2]],
                                                  "intercept": [0.5]}))
    (path / "chain.json").write_text(json.dumps({"format": "ember-chain", "version": 1, "stages": [
        {"name": "linear", "type": "linear", "path": "linear.json"}]}))
    return path


@pytest.fixture()
def linear(tmp_path):
    return linear_model(tmp_path / "linear")


class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x):
        return torch.sigmoid(self.body(x))


def customers(n, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(18, 90, n).astype(float), "income": rng.lognormal(10, 0.5, n),
                         "tenure": rng.uniform(0, 20, n), "visits": rng.poisson(4, n).astype(float),
                         "plan": rng.choice(["basic", "plus", "pro"], n)})


@pytest.fixture(scope="session")
def mlp(tmp_path_factory):
    """A bundle, and `expect(frame)`: the probabilities scikit-learn + torch give."""
    train = customers(500, 1)
    ct = ColumnTransformer([("num", StandardScaler(), NUMERIC), ("plan", OneHotEncoder(), ["plan"])])
    width = ct.fit_transform(train).shape[1]
    torch.manual_seed(3)
    net = Net(width).eval()
    Customer = pydantic.create_model("Customer", __config__=pydantic.ConfigDict(extra="forbid"),
                                     **{f: (float, ...) for f in NUMERIC},
                                     plan=(Literal["basic", "plus", "pro"], ...))
    path = tmp_path_factory.mktemp("mlp") / "bundle"
    ember.export_bundle(path, name="churn", schema=Customer, pipeline=ct, model=net,
                        example_input=torch.zeros(1, width), reference=train)

    def expect(frame):
        with torch.no_grad():
            x = torch.tensor(np.asarray(ct.transform(frame), dtype=np.float32))
            return net(x).numpy().reshape(-1)

    return {"path": path, "expect": expect}


@pytest.fixture()
def reg(tmp_path):
    """A registry with two versions of "churn": linear models of weight 1 and 3."""
    registry = ember.Registry.init(tmp_path / "reg")
    for i, weight in enumerate([1.0, 3.0], start=1):
        ember.export_bundle(tmp_path / f"b{i}", name="churn", schema=str(linear_model(tmp_path / f"m{i}", weight) / "schema.json"),
                            chain=None, extra_files={"linear.json": str(tmp_path / f"m{i}" / "linear.json"),
                                                     "chain.json": str(tmp_path / f"m{i}" / "chain.json")})
        assert registry.publish(tmp_path / f"b{i}", "alice", f"v{i}") == i
    return registry
