"""Monitoring from Python with the C++ names: Metrics text (checked by prometheus_client's
parser), drift results (ember.compare, equal to `ember drift --json` on the same data),
a Monitor watching a model (windows, alerts, outcomes, report), and render_report."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import ember
from conftest import customers


def test_metrics_text_counts_the_requests_of_a_loaded_model(mlp):
    metrics = ember.Metrics()
    model = ember.Model.load(mlp["path"], metrics=metrics, name="churn")
    frame = customers(40, 3)
    model.predict_batch(frame)
    for row in frame.head(10).to_dict("records"):
        model.predict(row)
    with pytest.raises(ember.InvalidArgument):
        model.predict({"age": "old"})
    families = {f.name: f for f in text_string_to_metric_families(metrics.text())}
    requests = {tuple(sorted(s.labels.items())): s.value for s in families["ember_requests"].samples
                if s.name == "ember_requests_total"}
    assert requests[(("model", "churn"), ("version", ""))] == 51
    invalid = [s.value for s in families["ember_invalid_requests"].samples if s.name.endswith("_total")]
    assert invalid == [1]
    assert "ember_stage_calls" in families  # the model is watched: its stages are read
    assert metrics.text("openmetrics").rstrip().endswith("# EOF")
    with pytest.raises(ember.InvalidArgument):
        metrics.text("xml")


def shifted(n, seed):
    frame = customers(n, seed)
    frame["income"] = frame["income"] * 3  # moved far from the reference
    return frame


def test_compare_equals_the_cli_on_the_same_data(mlp, tmp_path):
    reference = ember.load_reference(mlp["path"] / "reference.json")
    assert reference.rows == 500 and "income" in reference.features and reference.outputs == ["output"]
    same = ember.compare(reference, customers(400, 21))
    moved = ember.compare(reference, shifted(400, 22))
    assert not same.dataset_drift
    income = {c.name: c for c in moved.features}["income"]
    assert income.drift and income.test == "ks" and income.p_value < 1e-6
    assert moved.drifted >= 1 and isinstance(moved.to_json(), str)
    # The CLI reads the same rows from a CSV: the same tests and numbers.
    csv = tmp_path / "current.csv"
    shifted(400, 22).to_csv(csv, index=False)
    cli = os.environ.get("EMBER_BIN")
    if not cli:
        pytest.skip("EMBER_BIN is not set")
    out = subprocess.run([cli, "drift", "--bundle", str(mlp["path"]), "--current", str(csv), "--json"],
                         capture_output=True, text=True, check=True).stdout
    from_cli = json.loads(out)
    table = ember.read_table(str(csv), ember.Schema.load(str(mlp["path"] / "schema.json")))
    assert table.rows == 400
    assert json.loads(ember.compare(reference, table).to_json()) == from_cli
    assert json.loads(moved.to_json()) == from_cli  # from the DataFrame: the same
    # reference.json is statistics, not data: the CLI says so rather than "no drift"
    wrong = subprocess.run([cli, "drift", "--schema", str(mlp["path"] / "schema.json"), "--reference",
                            str(mlp["path"] / "reference.json"), "--current", str(csv)], capture_output=True, text=True)
    assert wrong.returncode == 1 and "come with --bundle" in wrong.stderr


def test_a_monitor_watches_windows_alerts_outcomes_and_writes_a_report(mlp, tmp_path):
    alerts = []
    model_for_schema = ember.Model.load(mlp["path"])
    monitor = ember.Monitor.create(model_for_schema, mlp["path"] / "reference.json", model="churn", window_rows=200,
                                   outcomes=True, log_path=tmp_path / "predictions.jsonl", sample_rate=1.0,
                                   on_alert=alerts.append)
    model = ember.Model.load(mlp["path"], monitor=monitor)
    b = model.predict_batch(shifted(600, 4))
    assert b.valid == 600
    p = model.predict(customers(1, 5).to_dict("records")[0])
    monitor.record_outcome(p.request_id, 1.0)
    with pytest.raises(ember.NotFound):
        monitor.record_outcome(p.request_id, 1.0)  # joined already
    monitor.flush()
    windows = monitor.windows()
    assert sum(w["rows"] for w in windows) == 601
    assert windows[0]["drift"] is not None and windows[0]["drift"].dataset_drift in (True, False)
    assert any(a["kind"] == "feature_drift" and a["subject"] == "income" for a in alerts)
    assert any(a["kind"] == "feature_drift" for w in windows for a in w["alerts"])
    assert all(set(a) >= {"kind", "subject", "value", "threshold"} for a in monitor.active_alerts())
    assert monitor.outcomes()[0]["joined"] == 1
    counters = monitor.counters()
    assert counters["requests"] == 2 and counters["logged"] >= 1  # requests: the batch and the record
    assert (tmp_path / "predictions.jsonl").stat().st_size > 0
    html = monitor.report_html("churn this week")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "income" in html and "<script" not in html
    drift = ember.compare(ember.load_reference(mlp["path"] / "reference.json"), shifted(300, 6))
    page = ember.render_report(title="weekly", model="churn", drift=drift)
    assert "<svg" in page and "weekly" in page


def test_monitoring_inputs_are_checked(mlp, tmp_path):
    with pytest.raises(ember.NotFound):
        ember.load_reference(tmp_path / "missing.json")
    with pytest.raises(ember.InvalidArgument):
        ember.parse_reference('{"format": "ember-reference", "format_version": 9}')
    reference = ember.load_reference(mlp["path"] / "reference.json")
    with pytest.raises(ember.InvalidArgument, match="none of the reference's columns"):
        ember.compare(reference, {"unrelated": np.zeros(3)})
    with pytest.raises(ember.InvalidArgument):
        ember.compare(reference, {"age": np.zeros(3), "income": np.zeros(2)})
    with pytest.raises(ember.InvalidArgument):
        ember.Monitor.create(ember.Model.load(mlp["path"]), reference, window_rows=0)


def test_the_monitoring_and_rollout_example_runs(tmp_path):
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "monitor_and_rollout.py")
    out = subprocess.run([sys.executable, example, str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "('feature_drift', 'load')" in out.stdout
    assert "rollout: promoted" in out.stdout and "production is version 2" in out.stdout
    assert "<svg" in (tmp_path / "report.html").read_text()
