"""export_bundle(..., reference=df): the reference statistics written in Python equal
those `ember reference` computes in C++ from the same rows, the model's outputs
included, and `ember drift --bundle` finds a shifted feature with them."""

import json
import os
import subprocess
import sys
from typing import Literal, Optional

import numpy as np
import pydantic
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
import ember  # noqa: E402
from ember.reference import schema_columns  # noqa: E402

EMBER = os.environ.get("EMBER_BIN", "ember")
NUMERIC = ["mean radius", "mean texture", "worst area"]
FIELDS = [f.replace(" ", "_") for f in NUMERIC]


class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.lin = nn.Linear(width, 1)

    def forward(self, x):
        return torch.sigmoid(self.lin(x))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    data = load_breast_cancer(as_frame=True)
    frame = data.frame[NUMERIC].rename(columns=dict(zip(NUMERIC, FIELDS)))
    rng = np.random.default_rng(8)
    frame["grade"] = rng.choice(["low", "mid", "high"], len(frame), p=[0.5, 0.3, 0.2])
    frame["clinic"] = rng.integers(0, 4, len(frame))  # few distinct numbers
    frame = frame[FIELDS + ["clinic", "grade"]]
    ct = ColumnTransformer([("scale", StandardScaler(), FIELDS + ["clinic"]),
                            ("onehot", OneHotEncoder(), ["grade"])])
    width = ct.fit_transform(frame).shape[1]
    torch.manual_seed(1)
    net = Net(width)
    # The schema lists the features in the pipeline's input order.
    Case = pydantic.create_model("Case", __config__=pydantic.ConfigDict(extra="forbid"),
                                 **{f: (float, ...) for f in FIELDS}, clinic=(int, ...),
                                 grade=(Literal["low", "mid", "high"], ...))
    tmp = tmp_path_factory.mktemp("export-ref")
    ember.export_bundle(tmp / "bundle", name="case", schema=Case, pipeline=ct, model=net,
                        example_input=torch.zeros(1, width), reference=frame)
    frame.to_csv(tmp / "train.csv", index=False)
    return {"tmp": tmp, "frame": frame, "bundle": tmp / "bundle"}


def test_python_and_cpp_reference_statistics_agree(bundle):
    tmp = bundle["tmp"]
    manifest = json.loads((bundle["bundle"] / "manifest.json").read_text())
    assert {f["path"]: f["role"] for f in manifest["files"]}["reference.json"] == "reference"
    py = json.loads((bundle["bundle"] / "reference.json").read_text())
    r = subprocess.run([EMBER, "reference", "--model", str(bundle["bundle"]), "--data", str(tmp / "train.csv"),
                        "--out", str(tmp / "cpp.json")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    cpp = json.loads((tmp / "cpp.json").read_text())
    assert py["rows"] == cpp["rows"] == len(bundle["frame"])
    assert [c["name"] for c in py["features"]] == [c["name"] for c in cpp["features"]]
    for a, b in zip(py["features"] + py["outputs"], cpp["features"] + cpp["outputs"]):
        assert a["name"] == b["name"] and a["kind"] == b["kind"]
        assert (a["count"], a["missing"]) == (b["count"], b["missing"])
        if a["kind"] == "categorical":
            assert a["categories"] == b["categories"] and a["other"] == b["other"]
            continue
        # The model's outputs: torch in Python and LibTorch in C++, float32 both.
        tol = 1e-6 if a in py["outputs"] else 1e-12
        for key in ("mean", "std", "min", "max"):
            assert a[key] == pytest.approx(b[key], rel=tol, abs=tol), (a["name"], key)
        for key in ("values", "quantiles"):
            assert (key in a) == (key in b)
            if key in a:
                assert np.allclose(a[key], b[key], rtol=tol, atol=tol), (a["name"], key)
        assert ("distinct" in a) == ("distinct" in b)
    clinic = next(c for c in py["features"] if c["name"] == "clinic")
    assert [d[0] for d in clinic["distinct"]] == [0, 1, 2, 3]
    assert [c["name"] for c in py["outputs"]] == ["output"]


def test_drift_against_the_bundle_finds_the_shifted_feature(bundle):
    tmp = bundle["tmp"]
    cur = bundle["frame"].sample(400, random_state=3).copy()
    cur["worst_area"] = cur["worst_area"] * 1.6
    with open(tmp / "cur.jsonl", "w") as f:
        for rec in cur.to_dict(orient="records"):
            f.write(json.dumps({k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()}) + "\n")
    r = subprocess.run([EMBER, "drift", "--bundle", str(bundle["bundle"]), "--current", str(tmp / "cur.jsonl"), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    drifted = {name for name, c in out["features"].items() if c["drift"]}
    assert drifted == {"worst_area"}


def test_schema_columns_reads_pydantic_schemas():
    class Address(pydantic.BaseModel):
        city: Literal["paris", "oslo"]
        zip_code: str

    class Person(pydantic.BaseModel):
        age: Optional[int] = None
        score: float
        member: bool
        name: str
        address: Address

    assert schema_columns(Person.model_json_schema()) == [
        ("age", "numerical"), ("score", "numerical"), ("member", "categorical"), ("address.city", "categorical")]
