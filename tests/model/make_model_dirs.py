"""Builds the model directories the Model and CLI tests load: a small churn classifier
made the way a data scientist would (pydantic schema, scikit-learn ColumnTransformer,
PyTorch MLP, LogisticRegression fallback), exported for ember, plus the predictions
Python makes for a set of requests, which ember must reproduce.

    python tests/model/make_model_dirs.py OUT_DIR

Writes OUT_DIR/churn/ (schema.json, pipeline.json, model.pt, linear.json, chain.json,
requests.jsonl, expected.json) and OUT_DIR/churn_wide.pt (a model for 12 columns, which
this pipeline does not produce).
"""

import enum
import json
import os
import sys
from typing import Literal, Optional

import numpy as np
import pandas as pd
import pydantic
import torch
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
from ember.sklearn import export_linear, export_pipeline  # noqa: E402

NUMERIC = ["tenure", "monthly_charges", "support_calls", "autopay"]
CATEGORICAL = ["plan", "region"]


class Plan(str, enum.Enum):
    basic = "basic"
    plus = "plus"
    pro = "pro"


class Customer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    tenure: int = pydantic.Field(ge=0, le=120)
    monthly_charges: float = pydantic.Field(gt=0, json_schema_extra={"x-ember-training-range": {"min": 10, "max": 130}})
    support_calls: Optional[int] = pydantic.Field(default=None, ge=0)
    autopay: bool
    plan: Plan
    region: Literal["north", "south", "east", "west"]


class MLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probability of churn, one per row."""
        return torch.sigmoid(self.net(x)).squeeze(-1)


def make_frame(n, rng):
    frame = pd.DataFrame({
        "tenure": rng.integers(0, 121, n).astype(float),
        "monthly_charges": rng.uniform(10, 130, n),
        "support_calls": rng.poisson(2, n).astype(float),
        "autopay": rng.integers(0, 2, n).astype(float),
        "plan": rng.choice(["basic", "plus", "pro"], n).astype(object),
        "region": rng.choice(["north", "south", "east", "west"], n).astype(object),
    })
    frame.loc[rng.random(n) < 0.1, "support_calls"] = np.nan
    logit = (-0.03 * frame["tenure"] + 0.02 * frame["monthly_charges"] + 0.4 * frame["support_calls"].fillna(2)
             - 0.8 * frame["autopay"] + (frame["plan"] == "basic") * 0.7 - 0.5)
    churn = (rng.random(n) < 1 / (1 + np.exp(-logit.to_numpy()))).astype(np.float32)
    return frame, churn


def records(frame):
    out = []
    for row in frame.itertuples(index=False):
        r = row._asdict()
        rec = {"tenure": int(r["tenure"]), "monthly_charges": float(r["monthly_charges"]),
               "autopay": bool(r["autopay"]), "plan": r["plan"], "region": r["region"]}
        if not np.isnan(r["support_calls"]):
            rec["support_calls"] = int(r["support_calls"])
        out.append(rec)
    return out


def main(out_dir):
    rng = np.random.default_rng(7)
    torch.manual_seed(7)
    target = os.path.join(out_dir, "churn")
    os.makedirs(target, exist_ok=True)
    frame, churn = make_frame(4000, rng)
    ct = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), CATEGORICAL),
    ])
    x = ct.fit_transform(frame).astype(np.float32)
    width = x.shape[1]
    model = MLP(width)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(x), torch.from_numpy(churn)
    for _ in range(200):
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    torch.jit.script(model).save(os.path.join(target, "model.pt"))
    torch.jit.script(MLP(width + 1).eval()).save(os.path.join(out_dir, "churn_wide.pt"))
    linear = LogisticRegression(max_iter=2000).fit(x.astype(np.float64), churn)
    export_linear(linear, os.path.join(target, "linear.json"))
    export_pipeline(ct, os.path.join(target, "pipeline.json"))
    with open(os.path.join(target, "schema.json"), "w") as f:
        json.dump(Customer.model_json_schema(), f, indent=1)
    chain = {
        "format": "ember-chain", "version": 1,
        "confidence": {"output": "output", "threshold": 0.6},
        "stages": [
            {"name": "primary", "type": "torchscript", "device": "cpu",
             "breaker": {"sliding_window_size": 10, "minimum_number_of_calls": 5, "wait_duration_in_open_state_ms": 60000}},
            {"name": "linear", "type": "linear", "path": "linear.json", "output": "positive_proba"},
            {"name": "cache", "type": "cache", "capacity": 1000, "ttl_ms": 600000},
            {"name": "default", "type": "default", "outputs": {"output": 0.5}},
        ],
    }
    with open(os.path.join(target, "chain.json"), "w") as f:
        json.dump(chain, f, indent=1)

    # Requests, and what Python predicts for them: the same validated values, through
    # the same ColumnTransformer (on float32 values, as ember's rows are) and model.
    test, _ = make_frame(50, rng)
    reqs = records(test)
    reqs[3]["plan"] = "plus"
    reqs[4]["region"] = "west"
    for r in reqs:
        Customer.model_validate(r)  # every request is valid for pydantic
    with open(os.path.join(target, "requests.jsonl"), "w") as f:
        for r in reqs:
            f.write(json.dumps(r) + "\n")
    rows = pd.DataFrame([{**{k: np.nan for k in ["support_calls"]}, **r} for r in reqs])
    rows["autopay"] = rows["autopay"].astype(float)
    for col in ["tenure", "monthly_charges", "support_calls", "autopay"]:
        rows[col] = rows[col].astype(np.float32).astype(np.float64)
    features = ct.transform(rows[NUMERIC + CATEGORICAL]).astype(np.float32)
    with torch.no_grad():
        mlp = model(torch.from_numpy(features)).numpy().tolist()
    lin = linear.predict_proba(features.astype(np.float64))[:, 1].tolist()
    with open(os.path.join(target, "expected.json"), "w") as f:
        json.dump({"primary": mlp, "linear": lin, "width": width}, f)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
