"""`ember report` end to end: predictions from `ember predict` with outcomes joined, the
page rendered by headless Chromium (Debian's), which must load it without errors and
draw the plots; and the command-line contract of `ember drift` / `ember reference`."""

import json
import os
import re
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pandas as pd
import pytest

EMBER = os.environ.get("EMBER_BIN", "ember")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def run(*args, timeout=120):
    return subprocess.run([EMBER, *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("report") / "model"
    d.mkdir()
    (d / "schema.json").write_text(json.dumps({"type": "object", "properties": {
        "income": {"type": "number"}, "tenure": {"type": "integer"},
        "plan": {"type": "string", "enum": ["basic", "plus", "pro"]}},
        "required": ["income", "tenure", "plan"], "additionalProperties": False}))
    (d / "linear.json").write_text(json.dumps({
        "format": "ember-linear", "version": 1, "estimator": "LogisticRegression", "classes": [0, 1],
        "coef": [[0.00002, -0.05, 0.3]], "intercept": [-0.5]}))
    (d / "chain.json").write_text(json.dumps({"format": "ember-chain", "version": 1, "stages": [
        {"name": "linear", "type": "linear", "path": "linear.json", "output": "positive_proba"},
        {"name": "default", "type": "default", "outputs": {"output": 0.5}}]}))
    return d


def frame(rng, n, shift=0.0):
    return pd.DataFrame({"income": rng.lognormal(10 + shift, 0.4, n), "tenure": rng.integers(0, 60, n),
                         "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2])})


def png_pixels(path):
    """Decodes an 8-bit RGB(A) PNG (what Chromium writes) into rows of bytes."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, channels, rows


def test_report_from_predictions_renders_in_chromium(tmp_path, model):
    rng = np.random.default_rng(2026)
    ref, cur = frame(rng, 20000), frame(rng, 20000, 0.3)
    ref.to_csv(tmp_path / "ref.csv", index=False)
    cur.to_json(tmp_path / "cur.jsonl", orient="records", lines=True)
    r = run("predict", "--model", model, "--input", tmp_path / "cur.jsonl", "--output", tmp_path / "pred.jsonl",
            "--inject", "linear=throw,p=0.1", "--seed", "3")
    assert r.returncode == 0, r.stderr
    # Ground truth arrives later: join it to each answer as "outcome".
    lines = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    with open(tmp_path / "joined.jsonl", "w") as f:
        for rec in lines:
            if "outputs" in rec:
                p = rec["outputs"]["output"]
                rec["outcome"] = int(rng.random() < (p[0] if isinstance(p, list) else p))
            f.write(json.dumps(rec) + "\n")
    out = tmp_path / "report.html"
    r = run("report", "--schema", model / "schema.json", "--reference", tmp_path / "ref.csv", "--current",
            tmp_path / "cur.jsonl", "--predictions", tmp_path / "joined.jsonl", "--out", out, "--title", "churn, week 49")
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    # Aggregates only: 20,000 rows each side, and the page stays small.
    assert len(html) < 200_000
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert html.count("<svg") >= 3 + 1 + 1  # three features, one latency plot, served_by over time
    for name in ("income", "tenure", "plan", "served_by", "Outcomes per version", "linear", "default"):
        assert name in html
    assert "churn, week 49" in html

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/bootstrap installs it)")
    shot = tmp_path / "shot.png"
    env = dict(os.environ, HOME=str(tmp_path))
    r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,2000",
                        "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", out.as_uri()],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert not re.search(r"CONSOLE|Uncaught|Refused to load", r.stderr), r.stderr
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", out.as_uri()],
                         capture_output=True, text=True, timeout=120, env=env)
    assert dom.returncode == 0, dom.stderr
    assert dom.stdout.count("<svg") == html.count("<svg") and dom.stdout.count("<rect") > 50
    # The plots are drawn: the reference's blue and the current data's orange are on screen.
    width, height, channels, rows = png_pixels(shot)
    assert (width, height) == (1200, 2000)
    colors = set()
    for row in rows[::4]:
        for x in range(0, width * channels, channels * 4):
            colors.add(bytes(row[x:x + 3]))
    assert bytes.fromhex("4c78a8") in colors and bytes.fromhex("f58518") in colors


def test_drift_and_reference_usage_and_bad_input(tmp_path, model):
    (tmp_path / "ref.csv").write_text("income,tenure,plan\n1,2,basic\n3,4,pro\n")
    (tmp_path / "cur.csv").write_text("income,tenure,plan\n1,2,basic\n")
    # Bad usage: 2; drift or not: 0; unreadable input: 1.
    assert run("drift", "--current", tmp_path / "cur.csv", "--json").returncode == 2
    assert run("drift", "--reference", tmp_path / "ref.csv").returncode == 2
    assert run("drift", "--reference", tmp_path / "ref.csv", "--current", tmp_path / "cur.csv", "--drift-share", "7").returncode == 2
    r = run("drift", "--reference", tmp_path / "ref.csv", "--current", tmp_path / "cur.csv", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["features"]) == {"income", "tenure", "plan"}
    for c in out["features"].values():
        assert {"test", "statistic", "p_value", "threshold", "drift"} <= set(c)
    assert isinstance(out["dataset_drift"], bool)
    (tmp_path / "bad.jsonl").write_text('{"income": 1}\n{"income": \n')
    r = run("drift", "--schema", model / "schema.json", "--reference", tmp_path / "ref.csv", "--current", tmp_path / "bad.jsonl")
    assert r.returncode == 1 and "bad.jsonl:2" in r.stderr
    r = run("drift", "--schema", model / "schema.json", "--reference", tmp_path / "nope.csv", "--current", tmp_path / "cur.csv")
    assert r.returncode == 1 and "nope.csv" in r.stderr
    # A bundle without reference statistics says so.
    r = run("bundle", "create", model, "--out", tmp_path / "b", "--name", "churn")
    assert r.returncode == 0, r.stderr
    r = run("drift", "--bundle", tmp_path / "b", "--current", tmp_path / "cur.csv")
    assert r.returncode == 1 and "no reference statistics" in r.stderr
    # ember reference with the model records its outputs too, and the bundle carries it.
    r = run("reference", "--model", model, "--data", tmp_path / "ref.csv", "--out", tmp_path / "reference.json")
    assert r.returncode == 0, r.stderr
    stats = json.loads((tmp_path / "reference.json").read_text())
    assert stats["format"] == "ember-reference" and stats["rows"] == 2
    assert [c["name"] for c in stats["outputs"]] == ["output"]
    assert run("reference", "--data", tmp_path / "ref.csv").returncode == 2  # neither --schema nor --model
