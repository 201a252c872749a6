"""The CI model gate (examples/model_gate), built by gate.sh against the ember Conan
package that `conan create` put in the cache (scripts/conan; the profile is in
GATE_CONAN_PROFILE), run on a candidate that passes and on three that must fail: other
answers, a schema that breaks production's records, and a slower network."""

import json
import os
import random
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GATE = os.path.join(ROOT, "examples", "model_gate", "gate.sh")
MAKE_MODEL = os.path.join(ROOT, "test_package", "make_model.py")


def make_model(out, *args):
    subprocess.run([sys.executable, MAKE_MODEL, str(out), *args], check=True, timeout=300)
    return str(out)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    if "GATE_CONAN_PROFILE" not in os.environ:
        pytest.skip("run through scripts/test, after scripts/conan (GATE_CONAN_PROFILE names its profile)")
    root = tmp_path_factory.mktemp("gate")
    rng = random.Random(11)
    # Logits within +-4: no answer saturates, so a change of the bias shows in every one.
    records = [json.dumps({"x": round(rng.uniform(-3, 3), 3), "y": round(rng.uniform(-3, 3), 3)}) for _ in range(60)]
    records += ['{"x": 500, "y": 1}', '{"x": "left", "y": 1}']  # production refuses these
    (root / "records.jsonl").write_text("\n".join(records) + "\n")
    production = make_model(root / "production")
    env = dict(os.environ, GATE_BUILD_DIR=str(root / "build"), GATE_CONAN_ARGS="--no-remote")
    golden = root / "golden.jsonl"
    r = gate(env, "record", "--model", production, "--records", str(root / "records.jsonl"), "--out", str(golden))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "62 golden records (60 answered, 2 refused)" in r.stdout
    return {"root": root, "env": env, "production": production, "golden": str(golden)}


def gate(env, *args):
    return subprocess.run([GATE, *args], capture_output=True, text=True, timeout=900, env=env)


def check(work, candidate, *extra):
    report = work["root"] / (os.path.basename(candidate) + ".json")
    r = gate(work["env"], "check", "--candidate", candidate, "--production", work["production"],
             "--golden", work["golden"], "--json", str(report), *extra)
    return r, (json.loads(report.read_text()) if report.exists() else None)


def test_the_same_model_passes(work):
    r, report = check(work, make_model(work["root"] / "same"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip().endswith("model_gate: passed")
    assert report["passed"] and report["failures"] == []
    assert report["golden"]["max_abs_difference"] == 0 and report["schema"]["breaking_changes"] == []
    assert report["latency"]["records"] == 60 and 0.5 < report["latency"]["ratio"] < 1.5


def test_other_answers_fail_beyond_the_tolerance_only(work):
    drifted = make_model(work["root"] / "drifted", "--weights", "0.8", "-0.5", "0.11")
    r, report = check(work, drifted)
    assert r.returncode == 1 and "FAIL 60 of 62 golden records differ" in r.stdout, r.stdout
    assert not report["passed"] and len(report["golden"]["mismatches"]) == 60
    r, report = check(work, drifted, "--tolerance", "3e-3")  # 0.01 on the logit: at most 0.0025 on p
    assert r.returncode == 0, r.stdout
    assert 1e-4 < report["golden"]["max_abs_difference"] <= 0.0025


def test_a_schema_that_breaks_production_records_fails(work):
    r, report = check(work, make_model(work["root"] / "renamed", "--rename-y", "z"))
    assert r.returncode == 1
    assert report["schema"]["breaking_changes"] == ["feature 'y' is gone", "feature 'z' is new and required"]
    assert "FAIL schema: feature 'y' is gone" in r.stdout
    assert "the candidate refuses it" in report["golden"]["mismatches"][0]["problem"]
    assert report["latency"]["measured"] is False  # no record both answer: nothing to time
    assert "latency not measured" in r.stdout


def test_a_slower_model_fails_the_latency_budget(work):
    r, report = check(work, make_model(work["root"] / "slow", "--slow", "200"))
    assert r.returncode == 1, r.stdout
    assert report["golden"]["mismatches"] == [] and report["schema"]["breaking_changes"] == []
    assert report["latency"]["ratio"] > 1.5 and [f[:8] for f in report["failures"]] == ["latency:"]


def test_bad_usage_and_input_are_refused_with_exit_status_2(work):
    r = gate(work["env"], "check", "--candidate", work["production"], "--production", work["production"])
    assert r.returncode == 2 and "missing --golden" in r.stderr
    bad = work["root"] / "bad.jsonl"
    bad.write_text('{"record": {"x": 1, "y": 2}, "outputs": {"output": [0.5]}}\n{"record": \n')
    r, _ = check(work, work["production"], "--golden", str(bad))
    assert r.returncode == 2 and "not a golden record" in r.stderr
    r, _ = check(work, work["production"], "--tolerance", "-1")
    assert r.returncode == 2 and "--tolerance needs a positive number" in r.stderr
    r = gate(work["env"], "check", "--candidate", str(work["root"] / "nowhere"), "--production", work["production"],
             "--golden", work["golden"])
    assert r.returncode == 2 and "nowhere" in r.stderr
