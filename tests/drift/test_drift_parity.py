"""`ember drift --json` against Evidently's DataDriftPreset (the legacy report, whose
result names each column's test, score and verdict) and scipy's ks_2samp, on synthetic
data drawn here with seeds the implementation never saw.

Tolerances: p-values and exact statistics agree to 1e-6 absolutely (1e-9 relative for
distances computed from all the values); the Wasserstein distance from a bundle's
1001-point quantile sketch (reference > 1000 rows) agrees to 2% of the threshold."""

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from scipy import stats

EMBER = os.environ.get("EMBER_BIN", "ember")
evidently = pytest.importorskip("evidently")
from evidently.legacy.metric_preset import DataDriftPreset  # noqa: E402
from evidently.legacy.pipeline.column_mapping import ColumnMapping  # noqa: E402
from evidently.legacy.report import Report  # noqa: E402

# Evidently's stattest names -> ember's.
TESTS = {"K-S p_value": "ks", "chi-square p_value": "chi_square", "Z-test p_value": "z",
         "Wasserstein distance (normed)": "wasserstein", "Jensen-Shannon distance": "jensen_shannon"}

SCHEMA = {"type": "object", "properties": {
    "income": {"type": "number"},
    "age": {"type": "integer"},
    "visits": {"type": "integer"},
    "flag": {"type": "integer"},
    "score": {"type": "number"},
    "plan": {"type": "string", "enum": ["basic", "plus", "pro", "team"]},
    "region": {"type": "string", "enum": ["north", "south"]},
    "active": {"type": "boolean"}}}
NUMERICAL = ["income", "age", "visits", "flag", "score"]
CATEGORICAL = ["plan", "region", "active"]


def make(rng, n, shift=0.0, p_plan=(0.4, 0.3, 0.2, 0.1)):
    df = pd.DataFrame({
        "income": rng.lognormal(10 + shift, 0.5, n),
        "age": rng.integers(18, 80, n) + int(round(shift * 10)),
        "visits": rng.choice([0, 1, 2, 3], n, p=[0.4 - shift / 4, 0.3, 0.2, 0.1 + shift / 4]),
        "flag": rng.choice([0, 1], n, p=[0.7 - shift / 3, 0.3 + shift / 3]),
        "score": rng.normal(shift, 1, n),
        "plan": rng.choice(["basic", "plus", "pro", "team"], n, p=p_plan),
        "region": rng.choice(["north", "south"], n, p=[0.5 + shift / 3, 0.5 - shift / 3]),
        "active": rng.choice([True, False], n, p=[0.6, 0.4])})
    # Some missing values, which both sides leave out.
    df.loc[rng.random(n) < 0.03, "score"] = np.nan
    return df


def evidently_drift(ref, cur):
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=ref, current_data=cur,
               column_mapping=ColumnMapping(numerical_features=NUMERICAL, categorical_features=CATEGORICAL))
    for m in report.as_dict()["metrics"]:
        if m["metric"] == "DataDriftTable":
            return m["result"]
    raise AssertionError("no DataDriftTable in Evidently's report")


def write_jsonl(df, path):
    with open(path, "w") as f:
        for rec in df.to_dict(orient="records"):
            f.write(json.dumps({k: (None if isinstance(v, float) and np.isnan(v) else
                                    (v.item() if hasattr(v, "item") else v)) for k, v in rec.items()}) + "\n")


def ember_drift(tmp_path, ref, cur, ref_format="csv", extra=()):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    ref_path = tmp_path / f"ref.{ref_format}"
    cur_path = tmp_path / "cur.jsonl"
    if ref_format == "csv":
        ref.to_csv(ref_path, index=False)
    else:
        write_jsonl(ref, ref_path)
    write_jsonl(cur, cur_path)
    r = subprocess.run([EMBER, "drift", "--schema", str(schema), "--reference", str(ref_path), "--current",
                        str(cur_path), "--json", *extra], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def check_parity(ours, theirs, wasserstein_tol=1e-9):
    for name, ev in theirs["drift_by_columns"].items():
        mine = ours["features"][name]
        assert mine["test"] == TESTS[ev["stattest_name"]], (name, mine["test"], ev["stattest_name"])
        assert mine["threshold"] == pytest.approx(ev["stattest_threshold"])
        score = mine["p_value"] if mine["p_value"] is not None else mine["statistic"]
        tol = wasserstein_tol * 0.1 if mine["test"] == "wasserstein" else 1e-6
        assert score == pytest.approx(ev["drift_score"], abs=tol, rel=1e-6), (name, score, ev["drift_score"])
        if abs(score - ev["stattest_threshold"]) > tol:
            assert mine["drift"] == ev["drift_detected"], name
    assert ours["dataset_drift"] == theirs["dataset_drift"]
    assert ours["drifted_share"] == pytest.approx(theirs["share_of_drifted_columns"])


@pytest.mark.parametrize("seed,shift", [(101, 0.0), (202, 0.15), (303, 0.4)])
def test_small_reference_matches_evidently(tmp_path, seed, shift):
    # 600 reference rows: KS, chi-square and z-tests.
    rng = np.random.default_rng(seed)
    ref, cur = make(rng, 600), make(rng, 450, shift, p_plan=(0.35, 0.3, 0.2, 0.15))
    ours = ember_drift(tmp_path, ref, cur)
    theirs = evidently_drift(ref, cur)
    check_parity(ours, theirs)
    assert {ours["features"][c]["test"] for c in ours["features"]} == {"ks", "chi_square", "z"}


@pytest.mark.parametrize("seed,shift", [(404, 0.0), (505, 0.3)])
def test_large_reference_matches_evidently(tmp_path, seed, shift):
    # 4000 reference rows: Wasserstein (normed) and Jensen-Shannon.
    rng = np.random.default_rng(seed)
    ref, cur = make(rng, 4000), make(rng, 3000, shift)
    ours = ember_drift(tmp_path, ref, cur, ref_format="jsonl")
    theirs = evidently_drift(ref, cur)
    check_parity(ours, theirs)
    assert {ours["features"][c]["test"] for c in ours["features"]} == {"wasserstein", "jensen_shannon"}


def test_reference_statistics_in_a_bundle_match_evidently(tmp_path):
    # The bundle keeps 1001 quantiles of a 20,000-row reference, not the rows: the
    # Wasserstein distance is approximated, the verdicts must still agree.
    rng = np.random.default_rng(606)
    ref, cur = make(rng, 20000), make(rng, 5000, 0.12)
    schema = tmp_path / "model" / "schema.json"
    schema.parent.mkdir()
    schema.write_text(json.dumps(SCHEMA))
    ref.to_csv(tmp_path / "ref.csv", index=False)
    r = subprocess.run([EMBER, "reference", "--schema", str(schema), "--data", str(tmp_path / "ref.csv"), "--out",
                        str(schema.parent / "reference.json")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([EMBER, "bundle", "create", str(schema.parent), "--out", str(tmp_path / "bundle"), "--name", "parity"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    write_jsonl(cur, tmp_path / "cur.jsonl")
    r = subprocess.run([EMBER, "drift", "--bundle", str(tmp_path / "bundle"), "--current", str(tmp_path / "cur.jsonl"),
                        "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    check_parity(json.loads(r.stdout), evidently_drift(ref, cur), wasserstein_tol=0.02)


@pytest.mark.parametrize("n1,n2,seed", [(40, 40, 1), (300, 700, 2), (999, 1000, 3), (1000, 9000, 4), (800, 25000, 5)])
def test_ks_matches_scipy(tmp_path, n1, n2, seed):
    # Exact distribution (equal and unequal sizes) and, past 10,000 a side, the one-sample
    # distribution at n1*n2/(n1+n2): scipy's method="auto".
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n1)
    b = rng.normal(0.08, 1.1, n2)
    schema = {"type": "object", "properties": {"x": {"type": "number"}}}
    (tmp_path / "s.json").write_text(json.dumps(schema))
    pd.DataFrame({"x": a}).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame({"x": b}).to_csv(tmp_path / "b.csv", index=False)
    r = subprocess.run([EMBER, "drift", "--schema", str(tmp_path / "s.json"), "--reference", str(tmp_path / "a.csv"),
                        "--current", str(tmp_path / "b.csv"), "--json"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    mine = json.loads(r.stdout)["features"]["x"]
    theirs = stats.ks_2samp(a, b)
    assert mine["test"] == "ks"
    assert mine["statistic"] == pytest.approx(theirs.statistic, abs=1e-9)
    assert mine["p_value"] == pytest.approx(theirs.pvalue, abs=1e-6, rel=1e-4)


def test_bonferroni_divides_p_value_thresholds(tmp_path):
    rng = np.random.default_rng(707)
    ref, cur = make(rng, 500), make(rng, 500, 0.1)
    plain = ember_drift(tmp_path, ref, cur)
    corrected = ember_drift(tmp_path, ref, cur, extra=["--bonferroni"])
    tests = sum(1 for c in plain["features"].values() if c["p_value"] is not None)
    for name, c in corrected["features"].items():
        assert c["threshold"] == pytest.approx(plain["features"][name]["threshold"] / tests)
        assert c["drift"] == (c["p_value"] < c["threshold"] if c["test"] != "ks" else c["p_value"] <= c["threshold"])
