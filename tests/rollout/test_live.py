"""`ember rollout start | status | pause | resume | abort | promote | serve` on a registry:
the rollout the registry keeps, a serving process that drives it (aborting a worse
candidate, promoting a good one), commands from another process, the JSON keys scripts
rely on, and bad usage."""

import json
import os
import subprocess

import numpy as np
import pytest

EMBER = os.environ.get("EMBER_BIN", "ember")

PLAN = {"steps": [{"weight": 10, "min_requests": 100}, {"weight": 50, "min_requests": 150},
                  {"weight": 100, "min_requests": 150}],
        "checks": [{"metric": "error_rate", "max": 0.02, "min_samples": 80},
                   {"metric": "fallback_rate", "max": 0.05, "min_samples": 80},
                   {"metric": "outcome", "min": 0.7, "min_samples": 80}]}


def run(*args, expect=0):
    r = subprocess.run([EMBER, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert r.returncode == expect, (args, r.stdout, r.stderr)
    return r


def last_json(r):
    return json.loads(r.stdout.strip().splitlines()[-1])


def model(path, coef):
    path.mkdir()
    (path / "schema.json").write_text(json.dumps({"type": "object", "properties": {
        "x1": {"type": "number"}, "x2": {"type": "number"}}, "required": ["x1", "x2"], "additionalProperties": False}))
    (path / "linear.json").write_text(json.dumps({
        "format": "ember-linear", "version": 1, "estimator": "LogisticRegression", "classes": [0, 1],
        "coef": [coef], "intercept": [-0.2]}))
    (path / "chain.json").write_text(json.dumps({"format": "ember-chain", "version": 1, "stages": [
        {"name": "linear", "type": "linear", "path": "linear.json", "output": "positive_proba"},
        {"name": "default", "type": "default", "outputs": {"output": 0.5}}]}))
    return path


@pytest.fixture()
def reg(tmp_path):
    """A registry with churn/1 (production), churn/2 (as good) and churn/3 (worse)."""
    registry = tmp_path / "reg"
    run("registry", "init", registry)
    for i, coef in enumerate([[1.5, -1.0], [1.5, -1.0], [-1.5, 1.0]], start=1):
        run("bundle", "create", model(tmp_path / f"m{i}", coef), "--name", "churn", "--out", tmp_path / f"b{i}")
        run("registry", "publish", tmp_path / f"b{i}", "--registry", registry, "--actor", "alice")
    run("registry", "alias", "churn@production", 1, "--registry", registry, "--actor", "alice")
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4000, 2))
    p = 1 / (1 + np.exp(-(1.5 * x[:, 0] - 1.0 * x[:, 1] - 0.2)))
    y = (rng.random(len(x)) < p).astype(int)
    with open(tmp_path / "traffic.jsonl", "w") as f:
        for i in range(len(x)):
            f.write(json.dumps({"record": {"x1": float(x[i, 0]), "x2": float(x[i, 1])}, "key": f"user-{i % 1500}",
                                "outcome": int(y[i])}) + "\n")
    (tmp_path / "plan.json").write_text(json.dumps(PLAN))
    return {"dir": registry, "tmp": tmp_path, "r": ["--registry", registry, "--actor", "ops"]}


def status(reg):
    return last_json(run("rollout", "status", "churn@production", *reg["r"], "--json"))


def serve(reg, *extra):
    return last_json(run("rollout", "serve", "churn@production", *reg["r"], "--traffic", reg["tmp"] / "traffic.jsonl",
                         "--json", *extra))


def alias(reg):
    shown = json.loads(run("registry", "show", "churn@production", "--registry", reg["dir"], "--json").stdout)
    return shown["version"]


def test_a_good_candidate_is_promoted_live_and_the_alias_moves(reg):
    started = last_json(run("rollout", "start", "churn@production", "--candidate", "churn/2", "--plan",
                            reg["tmp"] / "plan.json", *reg["r"], "--reason", "retrained", "--json"))
    for key in ("rollout", "model", "alias", "control", "candidate", "state", "step", "steps", "weight", "reason",
                "revision", "plan", "analysis"):
        assert key in started
    assert (started["state"], started["step"], started["weight"], started["control"], started["candidate"]) == \
        ("running", 1, 10, 1, 2)
    out = serve(reg)
    assert out["decision"] == "promoted", out
    assert out["step_reached"] == 3 and out["weight"] == 100
    assert out["arms"]["candidate"]["requests"] >= 100 + 150 + 150
    assert out["served"]["control"] + out["served"]["candidate"] == 4000
    assert alias(reg) == 2
    s = status(reg)
    assert s["state"] == "promoted" and s["analysis"]["state"] == "promoted"
    assert {c["metric"]: c["result"] for c in s["analysis"]["checks"]} == {
        "error_rate": "passed", "fallback_rate": "passed", "outcome": "passed"}
    audit = run("registry", "audit", "--registry", reg["dir"]).stdout
    assert audit.count("rollout_step") == 2 and "rollout_promote" in audit


def test_a_worse_candidate_is_aborted_live_and_the_alias_stays(reg):
    run("rollout", "start", "--model", "churn@production", "--candidate", "3", "--plan", reg["tmp"] / "plan.json",
        *reg["r"])
    out = serve(reg)
    assert out["decision"] == "aborted", out
    assert out["step_reached"] == 1 and out["weight"] == 0
    assert "outcome" in out["reason"]
    assert out["arms"]["candidate"]["requests"] < 300
    assert alias(reg) == 1
    # After the abort every request went to the control.
    again = serve(reg)
    assert again["decision"] == "aborted" and again["served"] == {"control": 4000}


def test_a_fault_drill_on_the_candidate_aborts_it_for_its_fallbacks(reg):
    run("rollout", "start", "churn@production", "--candidate", "2", "--plan", reg["tmp"] / "plan.json", *reg["r"])
    out = serve(reg, "--candidate-inject", "linear=throw,p=0.3", "--seed", "4")
    assert out["decision"] == "aborted", out
    assert "fallback_rate" in out["reason"]


def test_pause_resume_abort_promote_from_the_command_line(reg):
    run("rollout", "start", "churn@production", "--candidate", "2", "--plan", reg["tmp"] / "plan.json", *reg["r"])
    paused = last_json(run("rollout", "pause", "churn@production", *reg["r"], "--reason", "holiday", "--json"))
    assert paused["state"] == "paused" and paused["reason"] == "holiday" and paused["weight"] == 10
    run("rollout", "pause", "churn@production", *reg["r"], expect=1)  # not running
    out = serve(reg)  # no decisions while paused; the weight holds
    assert out["decision"] == "paused"
    assert 0 < out["served"]["candidate"] < 4000 * 0.2
    assert status(reg)["state"] == "paused"
    resumed = last_json(run("rollout", "resume", "churn@production", *reg["r"], "--json"))
    assert resumed["state"] == "running"
    promoted = last_json(run("rollout", "promote", "churn@production", *reg["r"], "--reason", "looks fine", "--json"))
    assert promoted["state"] == "promoted" and promoted["weight"] == 100
    assert alias(reg) == 2
    aborted = last_json(run("rollout", "abort", "churn@production", *reg["r"], "--reason", "complaints", "--json"))
    assert aborted["state"] == "aborted" and aborted["weight"] == 0
    assert alias(reg) == 1  # an abort after a promotion rolls the alias back
    history = last_json(run("rollout", "status", "churn@production", *reg["r"], "--all", "--json"))
    assert [h["state"] for h in history] == ["aborted"]
    run("rollout", "start", "churn@production", "--candidate", "3", "--plan", reg["tmp"] / "plan.json", *reg["r"])
    run("rollout", "start", "churn@production", "--candidate", "2", "--plan", reg["tmp"] / "plan.json", *reg["r"],
        expect=1)  # one at a time
    assert len(last_json(run("rollout", "status", "churn@production", *reg["r"], "--all", "--json"))) == 2


def test_no_rollout_serves_the_alias_alone(reg):
    out = serve(reg)
    assert out["decision"] == "none" and out["served"] == {"control": 4000}
    run("rollout", "status", "churn@production", *reg["r"], expect=1)


def test_bad_input(reg):
    plan = reg["tmp"] / "plan.json"
    r = run("rollout", "start", "churn@production", "--candidate", "9", "--plan", plan, *reg["r"], expect=1)
    assert "NotFound" in r.stderr
    r = run("rollout", "start", "churn@production", "--candidate", "fraud/2", "--plan", plan, *reg["r"], expect=1)
    assert "not a version of churn" in r.stderr
    r = run("rollout", "start", "churn@production", "--candidate", "two", "--plan", plan, *reg["r"], expect=1)
    (reg["tmp"] / "bad.json").write_text('{"steps": [{"weight": 50}, {"weight": 10}], "checks": []}')
    r = run("rollout", "start", "churn@production", "--candidate", "2", "--plan", reg["tmp"] / "bad.json", *reg["r"],
            expect=1)
    assert "rollout plan" in r.stderr
    (reg["tmp"] / "trunc.json").write_text('{"steps": [{"weight": 5')
    run("rollout", "start", "churn@production", "--candidate", "2", "--plan", reg["tmp"] / "trunc.json", *reg["r"],
        expect=1)
    run("rollout", "start", "churn@production", "--candidate", "2", "--plan", reg["tmp"] / "missing.json", *reg["r"],
        expect=1)
    run("rollout", "start", "churn", "--candidate", "2", "--plan", plan, *reg["r"], expect=1)  # no alias
    run("rollout", "status", *reg["r"], expect=1)  # no alias at all
    run("rollout", "status", "churn@production", "--model", "churn@production", *reg["r"], expect=1)  # twice
    run("rollout", "start", "churn@production", "--plan", plan, *reg["r"], expect=2)  # --candidate missing
    run("rollout", "start", "churn@production", "--candidate", "2", "--plan", plan, "--registry",
        reg["tmp"] / "nowhere", expect=1)
    run("rollout", "start", "churn@production", "--candidate", "2", "--plan", plan, *reg["r"])
    (reg["tmp"] / "bad.jsonl").write_text('{"record": {"x1": 1, "x2": 2}}\nnot json\n')
    r = run("rollout", "serve", "churn@production", *reg["r"], "--traffic", reg["tmp"] / "bad.jsonl", expect=1)
    assert "bad.jsonl:2" in r.stderr
