"""Monitoring and a canary rollout from Python: Prometheus metrics, a drift monitor with a
report, and a RolloutController that moves production to a retrained version.

    python examples/python/monitor_and_rollout.py OUT_DIR
"""

import sys
from typing import Any, Dict, List

import numpy as np
import pandas as pd
import pydantic
import torch
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import StandardScaler

import ember


class Reading(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    load: float
    temperature: float


def bundle(out: str, version: int, train: pd.DataFrame) -> str:
    pre = ColumnTransformer([("num", StandardScaler(), ["load", "temperature"])]).fit(train)
    torch.manual_seed(version)
    net = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1), torch.nn.Sigmoid())
    path = f"{out}/bundle-{version}"
    ember.export_bundle(path, name="sensor", schema=Reading, pipeline=pre, model=net,
                        example_input=torch.zeros(1, 2), reference=train, overwrite=True)
    return path


def main(out: str) -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"load": rng.normal(50, 10, 500), "temperature": rng.normal(20, 3, 500)})
    registry = ember.Registry.init(f"{out}/registry")
    for version in (1, 2):
        registry.publish(bundle(out, version, train), actor="ci")
    registry.set_alias("sensor", "production", 1, actor="ci", reason="first")

    # Metrics for Prometheus and a monitor that compares each 200 requests with training.
    alerts: List[Dict[str, Any]] = []
    metrics = ember.Metrics()
    monitor = ember.Monitor.create(ember.Model.load("sensor@production", registry=registry),
                                   f"{out}/bundle-1/reference.json", model="sensor", window_rows=200,
                                   on_alert=alerts.append)
    model = ember.Model.load("sensor@production", registry=registry, metrics=metrics, monitor=monitor)
    today = pd.DataFrame({"load": rng.normal(65, 10, 600), "temperature": rng.normal(20, 3, 600)})
    model.predict_batch(today)
    monitor.flush()
    print("alerts:", sorted({(a["kind"], a["subject"]) for a in alerts}))
    print(metrics.text().splitlines()[0])
    drift = ember.compare(ember.load_reference(f"{out}/bundle-1/reference.json"), today)
    print("load drifted:", {c.name: c.drift for c in drift.features})
    with open(f"{out}/report.html", "w") as f:
        f.write(monitor.report_html("sensor today"))

    # A canary of version 2: 20 %, then everyone, promoted when its error rate stays low.
    registry.start_rollout("sensor", "production", 2, {
        "steps": [{"weight": 20, "min_requests": 100}, {"weight": 100, "min_requests": 100}],
        "checks": [{"metric": "error_rate", "max": 0.01}], "evaluate_every": 20}, actor="ci")
    controller = ember.RolloutController.create(registry, "sensor@production",
                                                 on_event=lambda e: print("rollout:", e["kind"]))
    rows = today.to_dict("records")
    for i in range(3000):
        prediction, arm = controller.predict(rows[i % len(rows)], key=f"sensor-{i}")
        if controller.record()["state"] != "running":
            break
    controller.wait_idle(10_000)
    print("production is version", registry.resolve("sensor@production")["version"])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-out/python")
