"""`ember rollout ab`: the two-proportion z-test, Welch's t-test and sample sizes against
scipy (and statsmodels' proportions_ztest) on data drawn here."""

import json
import math
import os
import subprocess

import numpy as np
import pytest
from scipy import stats

EMBER = os.environ.get("EMBER_BIN", "ember")


def ab(tmp_path, arms, *extra):
    with open(tmp_path / "outcomes.jsonl", "w") as f:
        for name, values in arms.items():
            for v in values:
                f.write(json.dumps({"arm": name, "outcome": float(v)}) + "\n")
    r = subprocess.run([EMBER, "rollout", "ab", "--outcomes", str(tmp_path / "outcomes.jsonl"), "--json", *extra],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("seed,effect", [(1, 0.0), (2, 0.03), (3, 0.08)])
def test_proportions_match_statsmodels(tmp_path, seed, effect):
    rng = np.random.default_rng(seed)
    a = (rng.random(4000) < 0.20).astype(int)
    b = (rng.random(3500) < 0.20 + effect).astype(int)
    out = ab(tmp_path, {"a": a, "b": b})
    assert out["test"] == "two_proportion_z"
    c = out["comparisons"]["b"]
    p1, p2 = a.mean(), b.mean()
    pooled = (a.sum() + b.sum()) / (len(a) + len(b))
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (1 / len(a) + 1 / len(b)))
    assert c["statistic"] == pytest.approx(z, rel=1e-9)
    assert c["p_value"] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9, abs=1e-15)
    try:
        from statsmodels.stats.proportion import proportions_ztest
        zs, ps = proportions_ztest([b.sum(), a.sum()], [len(b), len(a)])
        assert c["statistic"] == pytest.approx(zs, rel=1e-9) and c["p_value"] == pytest.approx(ps, rel=1e-9, abs=1e-15)
    except ImportError:
        pass
    half = stats.norm.ppf(0.975) * math.sqrt(p1 * (1 - p1) / len(a) + p2 * (1 - p2) / len(b))
    assert c["ci"] == pytest.approx([p2 - p1 - half, p2 - p1 + half], rel=1e-9)
    assert c["significant"] == (c["p_value"] < 0.05)


@pytest.mark.parametrize("seed,shift,n1,n2", [(4, 0.0, 50, 80), (5, 0.3, 200, 150), (6, 1.0, 12, 9)])
def test_welch_matches_scipy(tmp_path, seed, shift, n1, n2):
    rng = np.random.default_rng(seed)
    a = rng.normal(10, 2, n1)
    b = rng.normal(10 + shift, 3, n2)
    out = ab(tmp_path, {"control": a, "treatment": b})
    assert out["test"] == "welch_t"
    c = out["comparisons"]["treatment"]
    r = stats.ttest_ind(b, a, equal_var=False)
    assert c["statistic"] == pytest.approx(r.statistic, rel=1e-9)
    assert c["p_value"] == pytest.approx(r.pvalue, rel=1e-8, abs=1e-15)
    ci = r.confidence_interval(0.95)
    assert c["ci"] == pytest.approx([ci.low, ci.high], rel=1e-8)
    assert c["dof"] == pytest.approx(r.df, rel=1e-9)


def test_sample_sizes_match_the_formula_with_scipy(tmp_path):
    rng = np.random.default_rng(7)
    a = (rng.random(2000) < 0.1).astype(int)
    out = ab(tmp_path, {"a": a, "b": a[::-1]}, "--effect", "0.02", "--power", "0.9")
    p1 = a.mean()
    p2 = p1 + 0.02
    za, zb = stats.norm.ppf(0.975), stats.norm.ppf(0.9)
    pbar = (p1 + p2) / 2
    n = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / 0.02 ** 2
    assert out["sample_size_per_arm"] == math.ceil(n - 1e-9)
    x = rng.normal(50, 8, 500)
    out = ab(tmp_path, {"a": x, "b": x + 1}, "--effect", "1.5", "--alpha", "0.01")
    sd = np.std(x, ddof=1)
    n = 2 * ((stats.norm.ppf(0.995) + stats.norm.ppf(0.8)) * sd / 1.5) ** 2
    assert out["sample_size_per_arm"] == math.ceil(n - 1e-9)


def test_bad_outcomes(tmp_path):
    (tmp_path / "one.jsonl").write_text('{"arm": "a", "outcome": 1}\n')
    r = subprocess.run([EMBER, "rollout", "ab", "--outcomes", str(tmp_path / "one.jsonl")], capture_output=True, text=True)
    assert r.returncode == 1 and "two arms" in r.stderr
    (tmp_path / "bad.jsonl").write_text('{"arm": "a", "outcome": 1}\n{"arm": "b", "outcome": "yes"}\n')
    r = subprocess.run([EMBER, "rollout", "ab", "--outcomes", str(tmp_path / "bad.jsonl")], capture_output=True, text=True)
    assert r.returncode == 1 and "bad.jsonl:2" in r.stderr
    (tmp_path / "flat.jsonl").write_text('{"arm": "a", "outcome": 2}\n{"arm": "a", "outcome": 2}\n'
                                         '{"arm": "b", "outcome": 2}\n{"arm": "b", "outcome": 2}\n')
    r = subprocess.run([EMBER, "rollout", "ab", "--outcomes", str(tmp_path / "flat.jsonl")], capture_output=True, text=True)
    assert r.returncode == 1 and "neither arm varies" in r.stderr
