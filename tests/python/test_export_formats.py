"""export_bundle's formats: "native" (the network lowered to ember's kernels, net.json)
and dynamic int8 quantization with its accuracy gate; each bundle is loaded and served by
ember and its answers compared with torch's on data the export did not see."""

import json
import os

import numpy as np
import pydantic
import pytest
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.preprocessing import StandardScaler
from torch import nn

import ember
from ember.bundle import BundleError

FIELDS = ["mean_radius", "mean_texture", "mean_smoothness", "worst_area", "worst_concavity", "worst_symmetry"]
COLUMNS = ["mean radius", "mean texture", "mean smoothness", "worst area", "worst concavity", "worst symmetry"]


class Net(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(width, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, 32), nn.ReLU(),
                                  nn.Linear(32, 1))

    def forward(self, x):
        return torch.sigmoid(self.body(x)).squeeze(-1)


class Gated(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.a = nn.Linear(width, 1)

    def forward(self, x):
        h = self.a(x)
        return (h * torch.sigmoid(h)).squeeze(-1)


@pytest.fixture(scope="module")
def cancer():
    """A network trained on half of the breast cancer data; the other half is for checking."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame[COLUMNS].rename(columns=dict(zip(COLUMNS, FIELDS)))
    y = data.target.to_numpy().astype(np.float32)
    train, test = frame.iloc[::2], frame.iloc[1::2]
    scaler = StandardScaler().fit(train)
    x = torch.tensor(scaler.transform(train), dtype=torch.float32)
    torch.manual_seed(2)
    net = Net(len(FIELDS))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.binary_cross_entropy(net(x), torch.tensor(y[::2])).backward()
        opt.step()
    net.eval()
    Tumour = pydantic.create_model("Tumour", __config__=pydantic.ConfigDict(extra="forbid"),
                                   **{f: (float, ...) for f in FIELDS})
    return {"net": net, "scaler": scaler, "train": train, "test": test, "schema": Tumour,
            "test_x": torch.tensor(scaler.transform(test), dtype=torch.float32)}


def served(bundle, frame):
    model = ember.Model.load(bundle)
    batch = model.predict_batch(frame)
    return np.asarray(batch.to_frame()["output"], dtype=np.float64), model


def test_native_format_writes_the_lowered_network_and_serves_it(cancer, tmp_path):
    from sklearn.compose import ColumnTransformer
    ct = ColumnTransformer([("num", cancer["scaler"], FIELDS)]).fit(cancer["train"])
    manifest = ember.export_bundle(tmp_path / "native", name="tumour", schema=cancer["schema"], pipeline=ct,
                                   model=cancer["net"], format="native")
    names = sorted(f["path"] for f in manifest["files"])
    assert names == ["chain.json", "net.json", "pipeline.json", "schema.json"]
    assert {f["path"]: f["role"] for f in manifest["files"]}["net.json"] == "model"
    assert manifest["lineage"]["environment"]["model_format"] == "native"
    chain = json.loads((tmp_path / "native" / "chain.json").read_text())
    assert chain["stages"] == [{"name": "primary", "type": "native", "path": "net.json"}]
    got, model = served(tmp_path / "native", cancer["test"])
    with torch.no_grad():
        want = cancer["net"](cancer["test_x"]).numpy()
    assert np.max(np.abs(got - want)) < 1e-5  # float32 rounding of the pipeline's scaling
    assert model.predict(cancer["test"].iloc[0].to_dict()).served_by == "primary"


def test_a_model_that_does_not_lower_is_refused_with_the_reason(cancer, tmp_path):
    with pytest.raises(BundleError, match="does not lower to ember's kernels.*aten::mul"):
        ember.export_bundle(tmp_path / "gated", name="gated", schema=cancer["schema"], model=Gated(len(FIELDS)),
                            format="native")
    assert not os.path.exists(tmp_path / "gated")
    assert [p for p in os.listdir(tmp_path) if p.startswith(".ember-bundle-")] == []
    with pytest.raises(BundleError, match="expected 'torchscript', 'native' or 'aoti'"):
        ember.export_bundle(tmp_path / "x", name="x", schema=cancer["schema"], model=cancer["net"], format="onnx")


def test_quantized_model_passes_its_gate_records_the_figures_and_serves(cancer, tmp_path):
    from sklearn.compose import ColumnTransformer
    ct = ColumnTransformer([("num", cancer["scaler"], FIELDS)]).fit(cancer["train"])
    manifest = ember.export_bundle(tmp_path / "int8", name="tumour", schema=cancer["schema"], pipeline=ct,
                                   model=cancer["net"], reference=cancer["train"],
                                   quantize={"max_abs_difference": 0.05, "max_changed_decisions": 0.02})
    metrics = manifest["lineage"]["metrics"]
    assert 0 < metrics["quantization.max_abs_difference"] <= 0.05
    assert 0 <= metrics["quantization.changed_decisions"] <= 0.02
    assert metrics["quantization.reference_rows"] == len(cancer["train"])
    assert "int8" in manifest["lineage"]["environment"]["quantization"]
    got, model = served(tmp_path / "int8", cancer["test"])
    quantized = torch.ao.quantization.quantize_dynamic(cancer["net"], {nn.Linear}, dtype=torch.qint8)
    with torch.no_grad():
        want_q = quantized(cancer["test_x"]).numpy()
        want_f = cancer["net"](cancer["test_x"]).numpy()
    assert np.max(np.abs(got - want_q)) < 1e-5  # ember serves the quantized model as torch runs it
    # The held-out half's decisions stay those of the float model, nearly all of them.
    assert np.mean((got > 0.5) != (want_f > 0.5)) <= 0.03
    assert model.predict(cancer["test"].iloc[0].to_dict()).served_by == "primary"
    # The gate's figures are the worst of the whole reference batch and each row alone.
    x = torch.tensor(cancer["scaler"].transform(cancer["train"]), dtype=torch.float32)
    with torch.no_grad():
        float_out = cancer["net"](x).double()
        alone = torch.cat([quantized(x[i:i + 1]) for i in range(len(x))]).double()
        batch = quantized(x).double()
    worst = max(float((float_out - alone).abs().max()), float((float_out - batch).abs().max()))
    assert metrics["quantization.max_abs_difference"] == pytest.approx(worst, rel=1e-6)


def test_quantization_beyond_the_limits_writes_nothing(cancer, tmp_path):
    with pytest.raises(BundleError, match=r"max abs difference .* \(limit 1e-09\).*not written"):
        ember.export_bundle(tmp_path / "strict", name="tumour", schema=cancer["schema"], model=cancer["net"],
                            quantize={"inputs": cancer["test_x"].numpy(), "max_abs_difference": 1e-9})
    assert not os.path.exists(tmp_path / "strict")
    with pytest.raises(BundleError, match="give 'inputs'"):
        ember.export_bundle(tmp_path / "none", name="tumour", schema=cancer["schema"], model=cancer["net"],
                            quantize={})
    with pytest.raises(BundleError, match="native format runs float32"):
        ember.export_bundle(tmp_path / "both", name="tumour", schema=cancer["schema"], model=cancer["net"],
                            format="native", quantize={"inputs": cancer["test_x"].numpy()})
    with pytest.raises(BundleError, match="non-empty matrix"):
        ember.export_bundle(tmp_path / "empty", name="tumour", schema=cancer["schema"], model=cancer["net"],
                            quantize={"inputs": np.zeros((0, 6))})


def test_aoti_format_compiles_a_package_that_ember_serves(cancer, tmp_path):
    from sklearn.compose import ColumnTransformer
    ct = ColumnTransformer([("num", cancer["scaler"], FIELDS)]).fit(cancer["train"])
    manifest = ember.export_bundle(tmp_path / "aoti", name="tumour", schema=cancer["schema"], pipeline=ct,
                                   model=cancer["net"], example_input=cancer["test_x"][:4], format="aoti")
    assert sorted(f["path"] for f in manifest["files"]) == ["chain.json", "model.pt2", "pipeline.json", "schema.json"]
    env = manifest["lineage"]["environment"]
    assert env["model_format"] == "aoti" and env["aoti_torch"] == torch.__version__
    assert env["aoti_compiler"] and "aoti_cpu_isa" in env
    got, model = served(tmp_path / "aoti", cancer["test"])
    with torch.no_grad():
        want = cancer["net"](cancer["test_x"]).numpy()
    assert np.max(np.abs(got - want)) < 1e-5
    assert model.predict(cancer["test"].iloc[0].to_dict()).served_by == "primary"
    with pytest.raises(BundleError, match="give example_input"):
        ember.export_bundle(tmp_path / "no_input", name="tumour", schema=cancer["schema"], model=cancer["net"],
                            format="aoti")
    with pytest.raises(BundleError, match="aoti format runs float32"):
        ember.export_bundle(tmp_path / "q", name="tumour", schema=cancer["schema"], model=cancer["net"],
                            format="aoti", quantize={"inputs": cancer["test_x"].numpy()})


@pytest.mark.parametrize("how", [{"format": "native"}, {"format": "aoti"},
                                 {"quantize": {"max_abs_difference": 0.05, "max_changed_decisions": 0.02}}])
def test_the_command_line_serves_every_format_through_a_chain_with_a_fallback(cancer, tmp_path, how):
    """ember predict on each bundle, its chain given a default stage behind the model: the
    answers are the Python package's, and a record the model cannot take is refused."""
    import subprocess
    from sklearn.compose import ColumnTransformer
    ct = ColumnTransformer([("num", cancer["scaler"], FIELDS)]).fit(cancer["train"])
    primary = {"native": {"name": "primary", "type": "native", "path": "net.json"},
               "aoti": {"name": "primary", "type": "aoti", "path": "model.pt2"}}.get(how.get("format"),
                                                                                   {"name": "primary", "type": "torchscript"})
    chain = {"format": "ember-chain", "version": 1,
             "stages": [primary, {"name": "default", "type": "default", "outputs": {"output": 0.5}}]}
    bundle = tmp_path / "bundle"
    ember.export_bundle(bundle, name="tumour", schema=cancer["schema"], pipeline=ct, model=cancer["net"],
                        reference=cancer["train"], example_input=cancer["test_x"][:4], chain=chain, **how)
    records = cancer["test"].iloc[:20]
    lines = [json.dumps({k: float(v) for k, v in row.items()}) for _, row in records.iterrows()]
    (tmp_path / "in.jsonl").write_text("\n".join(lines + ['{"mean_radius": "big"}']) + "\n")
    r = subprocess.run([os.environ.get("EMBER_BIN", "ember"), "predict", "--model", str(bundle), "--input",
                        str(tmp_path / "in.jsonl")], capture_output=True, text=True, timeout=300)
    answers = [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{"line"')]
    assert len(answers) == 21, r.stdout + r.stderr
    model = ember.Model.load(bundle)
    for answer, (_, row) in zip(answers, records.iterrows()):
        assert answer["served_by"] == "primary"
        assert abs(answer["outputs"]["output"] - model.predict(row.to_dict()).value()) < 1e-6
    assert answers[-1]["valid"] is False
    assert answers[-1]["errors"][0]["instance_path"] == "/mean_radius"
