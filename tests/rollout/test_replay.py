"""`ember rollout replay`: recorded traffic through a canary plan on simulated time. A
candidate as good as the control is promoted; one that falls back more, or answers
differently, is aborted at the first step; the JSON contract scripts rely on; bad input."""

import json
import os
import subprocess

import numpy as np
import pytest

EMBER = os.environ.get("EMBER_BIN", "ember")

PLAN = {"steps": [{"weight": 5, "min_requests": 150}, {"weight": 25, "min_requests": 300},
                  {"weight": 100, "min_requests": 300}],
        "checks": [{"metric": "error_rate", "max": 0.02, "min_samples": 100},
                   {"metric": "fallback_rate", "max": 0.05, "min_samples": 100},
                   {"metric": "disagreement", "max": 0.05, "tolerance": 0.05, "min_samples": 100},
                   {"metric": "outcome", "min": 0.7, "min_samples": 100}]}


def model(path, coef, intercept=-0.2):
    path.mkdir()
    (path / "schema.json").write_text(json.dumps({"type": "object", "properties": {
        "x1": {"type": "number"}, "x2": {"type": "number"}}, "required": ["x1", "x2"], "additionalProperties": False}))
    (path / "linear.json").write_text(json.dumps({
        "format": "ember-linear", "version": 1, "estimator": "LogisticRegression", "classes": [0, 1],
        "coef": [coef], "intercept": [intercept]}))
    (path / "chain.json").write_text(json.dumps({"format": "ember-chain", "version": 1, "stages": [
        {"name": "linear", "type": "linear", "path": "linear.json", "output": "positive_proba"},
        {"name": "default", "type": "default", "outputs": {"output": 0.5}}]}))
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6000, 2))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - 1.0 * x[:, 1] - 0.2)))
    y = (rng.random(6000) < p).astype(int)
    with open(tmp / "traffic.jsonl", "w") as f:
        for i in range(len(x)):
            f.write(json.dumps({"record": {"x1": float(x[i, 0]), "x2": float(x[i, 1])}, "key": f"user-{i}",
                                "outcome": int(y[i]), "t_ms": 1000 * i}) + "\n")
    (tmp / "plan.json").write_text(json.dumps(PLAN))
    return {"tmp": tmp, "control": model(tmp / "control", [1.5, -1.0]),
            "same": model(tmp / "same", [1.5, -1.0]), "other": model(tmp / "other", [0.2, 1.2])}


def replay(s, candidate, *extra):
    r = subprocess.run([EMBER, "rollout", "replay", "--plan", str(s["tmp"] / "plan.json"), "--control", str(s["control"]),
                        "--candidate", str(candidate), "--traffic", str(s["tmp"] / "traffic.jsonl"), "--json", *extra],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_good_candidate_is_promoted(setup):
    out = replay(setup, setup["same"])
    assert out["decision"] == "promoted", out
    assert out["step_reached"] == 3 and out["weight"] == 100
    assert out["arms"]["candidate"]["requests"] >= 150 + 300 + 300
    assert out["arms"]["control"]["requests"] > 0
    assert {c["metric"]: c["result"] for c in out["checks"]} == {
        "error_rate": "passed", "fallback_rate": "passed", "disagreement": "passed", "outcome": "passed"}
    # Simulated time and keyed routing: the same traffic decides the same way.
    again = replay(setup, setup["same"])
    assert (again["decision"], again["arms"]) == (out["decision"], out["arms"])


def test_a_candidate_that_falls_back_is_aborted(setup):
    out = replay(setup, setup["same"], "--candidate-inject", "linear=throw,p=0.2", "--seed", "3")
    assert out["decision"] == "aborted", out
    assert out["step_reached"] == 1 and out["weight"] == 0
    assert "fallback_rate" in out["reason"]
    assert out["arms"]["candidate"]["requests"] <= 100 + 50


def test_a_candidate_that_answers_differently_is_aborted(setup):
    out = replay(setup, setup["other"])
    assert out["decision"] == "aborted", out
    assert "disagreement" in out["reason"] or "outcome" in out["reason"]
    assert out["step_reached"] == 1


def test_traffic_that_ends_early_pauses(setup, tmp_path):
    lines = (setup["tmp"] / "traffic.jsonl").read_text().splitlines()[:500]
    (tmp_path / "short.jsonl").write_text("\n".join(lines) + "\n")
    r = subprocess.run([EMBER, "rollout", "replay", "--plan", str(setup["tmp"] / "plan.json"), "--control",
                        str(setup["control"]), "--candidate", str(setup["same"]), "--traffic", str(tmp_path / "short.jsonl"),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["decision"] == "paused" and "traffic ended" in out["reason"]


def test_bad_input_and_usage(setup, tmp_path):
    base = [EMBER, "rollout", "replay", "--control", str(setup["control"]), "--candidate", str(setup["same"])]
    assert subprocess.run([EMBER, "rollout"], capture_output=True).returncode == 2
    assert subprocess.run(base + ["--traffic", "t.jsonl"], capture_output=True).returncode == 2  # no --plan
    (tmp_path / "bad-plan.json").write_text(json.dumps({"steps": [{"weight": 50}, {"weight": 10}]}))
    r = subprocess.run(base + ["--plan", str(tmp_path / "bad-plan.json"), "--traffic", str(setup["tmp"] / "traffic.jsonl")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "steps[1].weight" in r.stderr
    (tmp_path / "bad.jsonl").write_text('{"record": {"x1": 1, "x2": 2}}\n{"x1": 1}\n')
    r = subprocess.run(base + ["--plan", str(setup["tmp"] / "plan.json"), "--traffic", str(tmp_path / "bad.jsonl")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "bad.jsonl:2" in r.stderr
    (tmp_path / "back.jsonl").write_text('{"record": {"x1": 1, "x2": 2}, "t_ms": 10}\n{"record": {"x1": 1, "x2": 2}, "t_ms": 5}\n')
    r = subprocess.run(base + ["--plan", str(setup["tmp"] / "plan.json"), "--traffic", str(tmp_path / "back.jsonl")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "backwards" in r.stderr
    r = subprocess.run([EMBER, "rollout", "replay", "--plan", str(setup["tmp"] / "plan.json"), "--control", "churn@production",
                        "--candidate", str(setup["same"]), "--traffic", str(setup["tmp"] / "traffic.jsonl")],
                       capture_output=True, text=True, env={k: v for k, v in os.environ.items() if k != "EMBER_REGISTRY"})
    assert r.returncode == 1 and "--registry" in r.stderr
