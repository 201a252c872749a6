"""Trains the demo model: a small PyTorch classifier on scikit-learn's bundled breast
cancer data set, with the feature standardisation folded into the module, and saves
it as TorchScript for ember. Also writes a few held-out rows for the demo to score,
and PyTorch's own predictions for them, so the demo can show that ember agrees.

Then the same task the way it is served: OUT_DIR/patient/ is a model directory that
ember::Model loads. Its schema.json comes from pydantic, pipeline.json from a fitted
scikit-learn ColumnTransformer (imputation + scaling), model.pt is an MLP trained on the
pipeline's output, linear.json a LogisticRegression fallback, and chain.json the chain:
the MLP, then the linear model, then a cache of recent answers, then a default.

    python examples/train_demo_model.py OUT_DIR
"""

import json
import os
import sys

import numpy as np
import pandas as pd
import pydantic
import torch
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bindings", "python"))
from ember.sklearn import export_linear, export_pipeline  # noqa: E402


class Classifier(nn.Module):
    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Probability that each row (30 raw features) is benign."""
        return torch.sigmoid(self.net((x - self.mean) / self.std)).squeeze(-1)


class ScaledClassifier(nn.Module):
    """The served model: it takes the pipeline's output (30 standardised features)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(30, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x)).squeeze(-1)


def write_model_dir(target, names, x_train, y_train, schema, requests_path):
    """A model directory for ember::Model and `ember predict`."""
    os.makedirs(target, exist_ok=True)
    frame = pd.DataFrame(x_train.astype(np.float64), columns=names)
    pipeline = ColumnTransformer([
        ("scaled", Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())]), names)])
    x = pipeline.fit_transform(frame).astype(np.float32)
    export_pipeline(pipeline, os.path.join(target, "pipeline.json"))
    model = ScaledClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=0.003, weight_decay=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y_train)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.binary_cross_entropy(model(xt), yt).backward()
        opt.step()
    torch.jit.script(model.eval()).save(os.path.join(target, "model.pt"))
    export_linear(LogisticRegression(max_iter=2000).fit(x, y_train), os.path.join(target, "linear.json"))
    with open(os.path.join(target, "schema.json"), "w") as f:
        json.dump(schema, f, indent=1)
    chain = {
        "format": "ember-chain", "version": 1,
        "budget_ms": 50,
        "confidence": {"output": "output", "threshold": 0.8},
        "stages": [
            {"name": "mlp", "type": "torchscript",
             "breaker": {"sliding_window_size": 20, "minimum_number_of_calls": 10, "failure_rate_threshold": 50,
                         "wait_duration_in_open_state_ms": 30000}},
            {"name": "linear", "type": "linear", "path": "linear.json", "output": "positive_proba"},
            {"name": "cache", "type": "cache", "capacity": 10000, "ttl_ms": 600000},
            {"name": "default", "type": "default", "outputs": {"output": 0.5}},
        ],
    }
    with open(os.path.join(target, "chain.json"), "w") as f:
        json.dump(chain, f, indent=1)
    with open(requests_path) as src, open(os.path.join(target, "requests.jsonl"), "w") as dst:
        dst.write(src.read())


def main(out_dir: str) -> int:
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        data.data.astype(np.float32), data.target.astype(np.float32), test_size=0.25, random_state=0,
        stratify=data.target)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    model = Classifier(xt.mean(dim=0), xt.std(dim=0) + 1e-6)
    opt = torch.optim.Adam(model.parameters(), lr=0.003, weight_decay=1e-3)
    loss_fn = nn.BCELoss()
    for _ in range(120):
        opt.zero_grad()
        loss = loss_fn(model(xt), yt)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        test_pred = model(torch.from_numpy(x_test))
    accuracy = float(((test_pred > 0.5).float().numpy() == y_test).mean())

    torch.jit.script(model).save(os.path.join(out_dir, "model.pt"))
    rows = x_test[:5]
    with open(os.path.join(out_dir, "rows.txt"), "w") as f:
        for row in rows:
            f.write(" ".join(repr(float(v)) for v in row) + "\n")
    with open(os.path.join(out_dir, "request.json"), "w") as f:
        json.dump(rows.tolist(), f)
    with torch.no_grad():
        expected = model(torch.from_numpy(rows)).tolist()
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump({"probability_benign": expected, "labels": y_test[:5].tolist()}, f)
    # The request schema, from a pydantic model whose fields are the 30 features with the
    # range each had in training (ember flags values outside it).
    fields = {}
    for j, name in enumerate(data.feature_names):
        lo, hi = float(x_train[:, j].min()), float(x_train[:, j].max())
        extra = {"x-ember-training-range": {"min": lo, "max": hi}}
        fields[name.replace(" ", "_")] = (float, pydantic.Field(ge=0, json_schema_extra=extra))
    Patient = pydantic.create_model("Patient", **fields)
    with open(os.path.join(out_dir, "schema.json"), "w") as f:
        json.dump(Patient.model_json_schema(), f, indent=1)
    names = list(fields)
    with open(os.path.join(out_dir, "requests.jsonl"), "w") as f:
        for row in rows:
            f.write(json.dumps(dict(zip(names, map(float, row)))) + "\n")
        bad = dict(zip(names, map(float, rows[0])))
        bad["mean_radius"] = -3.0
        bad["worst_area"] = "large"
        del bad["mean_texture"]
        f.write(json.dumps(bad) + "\n")
        far = dict(zip(names, map(float, rows[1])))
        far["mean_area"] = 99999.0
        f.write(json.dumps(far) + "\n")
    write_model_dir(os.path.join(out_dir, "patient"), names, x_train, y_train, Patient.model_json_schema(),
                    os.path.join(out_dir, "requests.jsonl"))
    print(f"trained on {len(x_train)} rows; held-out accuracy {accuracy:.3f} on {len(x_test)} rows")
    print("PyTorch's predictions for the 5 demo rows:", " ".join(f"{p:.4f}" for p in expected))
    print("true labels (1 = benign):                 ", " ".join(str(int(v)) for v in y_test[:5]))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
