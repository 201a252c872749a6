"""From a fitted scikit-learn + PyTorch model to predictions served by ember, in Python.

    python examples/python/quickstart.py OUT_DIR
"""

import sys
from typing import Literal

import numpy as np
import pandas as pd
import pydantic
import torch
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import ember


class Customer(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    age: float
    income: float
    plan: Literal["basic", "pro"]


def main(out: str) -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"age": rng.uniform(18, 90, 200), "income": rng.lognormal(10, 0.5, 200),
                          "plan": rng.choice(["basic", "pro"], 200)})
    pre = ColumnTransformer([("num", StandardScaler(), ["age", "income"]), ("plan", OneHotEncoder(), ["plan"])])
    pre.fit(train)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1), torch.nn.Sigmoid())

    # The ten lines: export a bundle, load it, predict one record and a batch.
    ember.export_bundle(f"{out}/churn", name="churn", schema=Customer, pipeline=pre, model=net,
                        example_input=torch.zeros(1, 4), overwrite=True)
    model = ember.Model.load(f"{out}/churn")
    p = model.predict({"age": 42, "income": 52000, "plan": "pro"})
    print(f"churn probability {p.value():.3f}, served by {p.served_by} in {p.latency_us:.0f} us")
    batch = model.predict_batch(train)
    print(batch.to_frame().describe().loc[["count", "mean"]])
    try:
        model.predict({"age": "old", "income": 1, "plan": "gold"})
    except ember.InvalidArgument as e:
        print([(err["instance_path"], err["message"]) for err in e.errors])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-out")
