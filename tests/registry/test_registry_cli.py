"""A model trained in Python, exported with ember.export_bundle, then published,
approved, signed, aliased, resolved and served through the `ember` tool; and the
registry commands' contracts (forms and JSON keys scripts depend on) and errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pydantic
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
import ember  # noqa: E402

EMBER = os.environ.get("EMBER_BIN", "ember")
FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst area", "worst concavity"]
FIELDS = [f.replace(" ", "_") for f in FEATURES]


def run(*args, env=None, check=True):
    full_env = dict(os.environ)
    full_env.pop("EMBER_REGISTRY", None)  # only what a test sets
    full_env.update(env or {})
    r = subprocess.run([EMBER, *args], capture_output=True, text=True, timeout=120, env=full_env)
    if check and r.returncode != 0:
        raise AssertionError(f"ember {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x):
        return torch.sigmoid(self.net(x)).squeeze(-1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small classifier on scikit-learn's breast cancer data, exported as a bundle."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame[FEATURES].rename(columns=dict(zip(FEATURES, FIELDS)))
    y = data.target.to_numpy().astype(np.float32)
    ct = ColumnTransformer([("scale", StandardScaler(), FIELDS)])
    x = ct.fit_transform(frame).astype(np.float32)
    torch.manual_seed(3)
    net = Net(len(FIELDS))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        nn.functional.binary_cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        opt.step()
    Tumour = pydantic.create_model("Tumour", __config__=pydantic.ConfigDict(extra="forbid"),
                                   **{f: (float, ...) for f in FIELDS})
    tmp = tmp_path_factory.mktemp("trained")
    train_csv = tmp / "train.csv"
    frame.to_csv(train_csv, index=False)
    chain = {"format": "ember-chain", "version": 1, "stages": [
        {"name": "primary", "type": "torchscript", "device": "cpu"},
        {"name": "linear", "type": "linear", "path": "linear.json", "output": "positive_proba"},
        {"name": "default", "type": "default", "outputs": {"output": 0.5}}]}
    # Ten lines from a fitted model to a bundle:
    manifest = ember.export_bundle(
        tmp / "bundle", name="tumour", schema=Tumour, pipeline=ct, model=net,
        example_input=torch.zeros(1, len(FIELDS)), chain=chain,
        fallbacks={"linear.json": LogisticRegression(max_iter=1000).fit(x, y)},
        data=[str(train_csv)], metrics={"accuracy": 0.93}, hyperparameters={"lr": 0.05, "epochs": 100},
        description="malignant or benign")
    records = frame.sample(20, random_state=1)
    with open(tmp / "requests.jsonl", "w") as f:
        for _, row in records.iterrows():
            f.write(json.dumps({k: float(v) for k, v in row.items()}) + "\n")
    with torch.no_grad():
        expected = net(torch.from_numpy(ct.transform(records).astype(np.float32))).numpy()
    return {"dir": tmp, "bundle": str(tmp / "bundle"), "manifest": manifest, "expected": expected,
            "requests": str(tmp / "requests.jsonl"), "rows": len(frame)}


def test_export_bundle_writes_a_manifest_with_lineage(trained):
    m = trained["manifest"]
    roles = {f["path"]: f["role"] for f in m["files"]}
    assert roles == {"schema.json": "schema", "pipeline.json": "pipeline", "model.pt": "model",
                     "chain.json": "chain", "linear.json": "fallback"}
    lineage = m["lineage"]
    assert lineage["data"][0]["rows"] == trained["rows"]
    assert len(lineage["data"][0]["sha256"]) == 64
    assert lineage["environment"]["torch"] == torch.__version__
    assert "scikit-learn" in lineage["environment"]
    assert lineage["hyperparameters"] == {"lr": 0.05, "epochs": 100}
    assert lineage["metrics"] == {"accuracy": 0.93}
    out = run("bundle", "verify", trained["bundle"], "--json")
    assert json.loads(out.stdout)["ok"] is True


def test_export_bundle_refuses_bad_arguments(tmp_path):
    with pytest.raises(ember.BundleError, match="name"):
        ember.export_bundle(tmp_path / "b", name="../x", schema={"type": "object"})
    with pytest.raises(ember.BundleError, match="schema"):
        ember.export_bundle(tmp_path / "b", name="x", schema=42)
    with pytest.raises(ember.BundleError, match="metric"):
        ember.export_bundle(tmp_path / "b", name="x", schema={"type": "object"}, metrics={"auc": float("nan")})
    assert not (tmp_path / "b").exists()  # nothing half-written
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ember.BundleError, match="not empty"):
        ember.export_bundle(tmp_path / "full", name="x", schema={"type": "object"})


def test_published_approved_signed_aliased_resolved_and_served(trained, tmp_path):
    reg = str(tmp_path / "reg")
    run("registry", "init", reg)
    out = run("registry", "publish", "--registry", reg, trained["bundle"], "--actor", "alice", "--note", "first")
    assert out.stdout.strip().splitlines()[-1] == "1"
    run("registry", "policy", "--registry", reg, "--protect", "production", "--approvals", "1", "--actor", "admin")
    key = str(tmp_path / "release")
    run("bundle", "keygen", "--out", key)
    run("registry", "policy", "--registry", reg, "--trust-key", key + ".pub", "--actor", "admin")
    refused = run("registry", "alias", "--registry", reg, "tumour@production", "1", "--actor", "alice", check=False)
    assert refused.returncode == 1 and "PermissionDenied" in refused.stderr and "approval" in refused.stderr
    run("registry", "approve", "--registry", reg, "tumour/1", "--actor", "bob", "--note", "metrics checked")
    refused = run("registry", "alias", "--registry", reg, "tumour@production", "1", "--actor", "alice", check=False)
    assert "signature" in refused.stderr
    run("registry", "sign", "--registry", reg, "tumour/1", "--key", key + ".key", "--actor", "release")
    run("registry", "alias", "--registry", reg, "tumour@production", "1", "--actor", "alice", "--reason", "launch")
    resolved = run("registry", "resolve", "--registry", reg, "tumour@production").stdout.strip().splitlines()
    assert resolved[0] == "tumour/1" and os.path.isdir(resolved[-1])

    for how in (["--registry", reg], []):
        env = None if how else {"EMBER_REGISTRY": reg}
        out = run("predict", *how, "--model", "tumour@production", "--input", trained["requests"], env=env)
        lines = [json.loads(line) for line in out.stdout.splitlines()]
        got = np.array([line["outputs"]["output"] for line in lines[:-1]])
        assert all(line["served_by"] == "primary" for line in lines[:-1])
        np.testing.assert_allclose(got, trained["expected"], rtol=1e-5, atol=1e-6)

    show = json.loads(run("registry", "show", "--registry", reg, "tumour/1", "--json").stdout)
    assert show["aliases"] == ["production"]
    assert [a["actor"] for a in show["approvals"]] == ["bob"]
    assert len(show["signed_by"]) == 1
    assert show["lineage"]["metrics"] == {"accuracy": 0.93}
    listing = json.loads(run("registry", "list", "--registry", reg, "--json").stdout)
    assert [(v["name"], v["version"]) for v in listing] == [("tumour", 1)]
    audit = json.loads(run("registry", "audit", "--registry", reg, "--json").stdout)
    assert [e["event"] for e in audit] == ["init", "publish", "policy", "trust_key", "approve", "sign", "alias"]
    run("registry", "audit", "--registry", reg, "--verify")
    run("registry", "check", "--registry", reg, "--deep")


def test_history_rollback_and_time_travel(trained, tmp_path):
    reg = str(tmp_path / "reg")
    run("registry", "init", reg)
    for _ in range(3):
        run("registry", "publish", "--registry", reg, trained["bundle"])
    run("registry", "alias", "--registry", reg, "tumour@production", "1", "--expect", "none")
    stale = run("registry", "alias", "--registry", reg, "tumour@production", "2", "--expect", "3", check=False)
    assert stale.returncode == 1 and "Aborted" in stale.stderr
    run("registry", "alias", "--registry", reg, "tumour@production", "2", "--expect", "1", "--reason", "better")
    run("registry", "alias", "--registry", reg, "tumour@production", "3")
    history = json.loads(run("registry", "history", "--registry", reg, "tumour@production", "--json").stdout)
    assert [(h["from"], h["to"]) for h in history] == [(0, 1), (1, 2), (2, 3)]
    assert history[1]["reason"] == "better"
    at = history[1]["at"]
    assert run("registry", "history", "--registry", reg, "tumour@production", "--at", at).stdout.strip() == "2"
    assert run("registry", "history", "--registry", reg, "tumour@production", "--at", "0").stdout.strip() == "0"
    out = run("registry", "rollback", "--registry", reg, "tumour@production", "--json")
    assert json.loads(out.stdout)["to"] == 2
    assert run("registry", "resolve", "--registry", reg, "tumour@production").stdout.splitlines()[0] == "tumour/2"


def test_a_tampered_blob_never_serves(trained, tmp_path):
    reg = str(tmp_path / "reg")
    run("registry", "init", reg)
    run("registry", "publish", "--registry", reg, trained["bundle"])
    show = json.loads(run("registry", "show", "--registry", reg, "tumour/1", "--json").stdout)
    sha = next(f["sha256"] for f in show["files"] if f["path"] == "model.pt")
    blob = os.path.join(reg, "blobs", "sha256", sha[:2], sha)
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    out = run("predict", "--registry", reg, "--model", "tumour/1", "--input", trained["requests"], check=False)
    assert out.returncode == 1 and "DataLoss" in out.stderr and "model.pt" in out.stderr
    assert run("registry", "check", "--registry", reg, "--deep", check=False).returncode == 1
    audit = json.loads(run("registry", "audit", "--registry", reg, "--json").stdout)
    assert audit[-1]["event"] == "verify_failed"


def test_export_import_and_gc(trained, tmp_path):
    reg, other = str(tmp_path / "reg"), str(tmp_path / "other")
    run("registry", "init", reg)
    run("registry", "init", other)
    run("registry", "publish", "--registry", reg, trained["bundle"])
    run("registry", "publish", "--registry", reg, trained["bundle"])
    run("registry", "export", "--registry", reg, "tumour/1", "--out", str(tmp_path / "exported"))
    out = run("registry", "import", "--registry", other, str(tmp_path / "exported"))
    assert out.stdout.strip() == "1"
    run("registry", "delete", "--registry", reg, "tumour/1")
    gc = json.loads(run("registry", "gc", "--registry", reg, "--json").stdout)
    assert gc["blobs_removed"] == 0  # version 2 shares every file
    run("registry", "tag", "--registry", reg, "tumour/2", "stage=candidate")
    tagged = json.loads(run("registry", "list", "--registry", reg, "--tag", "stage=candidate", "--json").stdout)
    assert [v["version"] for v in tagged] == [2]


@pytest.mark.parametrize("args,code,fragment", [
    (["registry", "publish", "--registry", "/nonexistent/reg", "."], "NotFound", "registry init"),
    (["registry", "resolve", "x@y"], "InvalidArgument", "EMBER_REGISTRY"),
    (["bundle", "verify", "/nonexistent"], "NotFound", "manifest"),
])
def test_errors_are_one_clear_line(args, code, fragment):
    r = run(*args, check=False)
    assert r.returncode == 1
    assert r.stderr.strip().startswith(f"ember: error: {code}: "), r.stderr
    assert fragment in r.stderr


@pytest.mark.parametrize("sub", ["init", "publish", "list", "show", "resolve", "alias", "history", "approve", "rollback",
                                 "tag", "verify", "check", "audit", "gc", "export", "import", "sign", "policy"])
def test_every_registry_command_has_help(sub):
    r = run("registry", sub, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout


def test_bundle_create_from_a_model_directory(trained, tmp_path):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for f in ("schema.json", "pipeline.json", "model.pt", "chain.json", "linear.json"):
        (model_dir / f).write_bytes((trained["dir"] / "bundle" / f).read_bytes())
    out = run("bundle", "create", str(model_dir), "--name", "tumour", "--out", str(tmp_path / "b"), "--metric", "auc=0.9")
    assert out.stdout.strip().splitlines()[-1] == str(tmp_path / "b")
    info = json.loads(run("bundle", "verify", str(tmp_path / "b"), "--json").stdout)
    assert info["name"] == "tumour" and len(info["files"]) == 5
    bad = run("bundle", "create", str(model_dir), "--name", "tumour", "--out", str(tmp_path / "b"), check=False)
    assert bad.returncode == 1 and "AlreadyExists" in bad.stderr


def test_an_encrypted_registry_serves_with_its_key_only(trained, tmp_path):
    reg, key = str(tmp_path / "reg"), str(tmp_path / "registry.key")
    out = run("registry", "init", reg, "--encrypt", key)
    assert "encrypted" in out.stdout and os.stat(key).st_mode & 0o077 == 0
    assert run("registry", "publish", "--registry", reg, "--key-file", key, trained["bundle"]).stdout.strip() == "1"
    model_pt = open(os.path.join(trained["bundle"], "model.pt"), "rb").read()
    for root, _, names in os.walk(os.path.join(reg, "blobs")):
        for n in names:
            assert model_pt[:4096] not in open(os.path.join(root, n), "rb").read()
    out = run("predict", "--model", "tumour/1", "--input", trained["requests"],
              env={"EMBER_REGISTRY": reg, "EMBER_REGISTRY_KEY_FILE": key})
    got = np.array([json.loads(line)["outputs"]["output"] for line in out.stdout.splitlines()[:-1]])
    np.testing.assert_allclose(got, trained["expected"], rtol=1e-5, atol=1e-6)
    no_key = run("predict", "--registry", reg, "--model", "tumour/1", "--input", trained["requests"], check=False)
    assert no_key.returncode == 1 and "FailedPrecondition" in no_key.stderr and "encrypted" in no_key.stderr
    other = tmp_path / "other.key"
    other.write_text("b" * 64 + "\n")
    wrong = run("registry", "resolve", "--registry", reg, "--key-file", str(other), "tumour/1", check=False)
    assert wrong.returncode == 1 and "PermissionDenied" in wrong.stderr


def test_lineage_collects_the_git_commit_and_dirty_flag(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, text=True)  # noqa: E731
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "x")
    (repo / "train.py").write_text("print(1)\n")
    git("add", "train.py")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "y")
    head = git("rev-parse", "HEAD").stdout.strip()
    assert ember.bundle.collect_code(str(repo)) == {"commit": head, "repository": "", "dirty": False}
    (repo / "train.py").write_text("print(2)\n")
    assert ember.bundle.collect_code(str(repo))["dirty"] is True
    assert ember.bundle.collect_code(str(tmp_path))["commit"] == ""  # not a work tree
    manifest = ember.export_bundle(tmp_path / "b", name="m", schema={"type": "object"},
                                   code={"commit": "abc", "repository": "r", "dirty": False},
                                   environment={"cuda": "none"}, data=[{"uri": "s3://x/y", "rows": 5}])
    assert manifest["lineage"]["code"]["commit"] == "abc"
    assert manifest["lineage"]["environment"]["cuda"] == "none"
    assert manifest["lineage"]["data"] == [{"uri": "s3://x/y", "rows": 5}]


def test_a_progress_bar_while_hashing_large_files(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "schema.json").write_text('{"type": "object"}')
    (model / "weights.bin").write_bytes(os.urandom(20 << 20))
    out = run("bundle", "create", str(model), "--name", "big", "--out", str(tmp_path / "b"), "--progress")
    assert "hashing [" in out.stderr and "100.0%" in out.stderr and "MiB/s" in out.stderr
    quiet = run("bundle", "verify", str(tmp_path / "b"))  # stderr is not a terminal: no bar
    assert quiet.stderr == ""
