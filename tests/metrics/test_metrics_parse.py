"""The metrics text of `ember predict --metrics-out`, read by prometheus_client's own
parsers (the text format 0.0.4 and the strict OpenMetrics one)."""

import json
import os
import subprocess

import pytest
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.parser import text_string_to_metric_families

EMBER = os.environ.get("EMBER_BIN", "ember")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    model = tmp / "churn-model"
    model.mkdir()
    (model / "schema.json").write_text(json.dumps({
        "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"], "additionalProperties": False}))
    (model / "linear.json").write_text(json.dumps({
        "format": "ember-linear", "version": 1, "estimator": "LinearRegression", "coef": [[1.0, 2.0]],
        "intercept": [0.5]}))
    (model / "chain.json").write_text(json.dumps({"format": "ember-chain", "version": 1, "stages": [
        {"name": "linear", "type": "linear", "path": "linear.json"},
        {"name": "default", "type": "default", "outputs": {"output": 0}}]}))
    records = tmp / "records.jsonl"
    lines = [json.dumps({"a": i, "b": 1}) for i in range(40)] + ['{"a": "bad"}', "{}"]
    records.write_text("\n".join(lines) + "\n")
    out = {}
    for fmt in ("prometheus", "openmetrics"):
        path = tmp / f"metrics.{fmt}"
        r = subprocess.run([EMBER, "predict", "--model", str(model), "--input", str(records), "--metrics-out", str(path),
                            "--metrics-format", fmt], capture_output=True, text=True, timeout=60)
        assert r.returncode == 1, r.stderr  # two records are invalid
        out[fmt] = path.read_text()
    return out


def samples(families):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def check(values):
    labels = (("model", "churn-model"), ("version", ""))
    assert values[("ember_requests_total", labels)] == 42
    assert values[("ember_invalid_requests_total", labels)] == 2
    assert values[("ember_served_total", tuple(sorted(labels + (("stage", "linear"),))))] == 40
    count = values[("ember_request_latency_seconds_count", labels)]
    assert count == 40
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in values.items()
                     if k[0] == "ember_request_latency_seconds_bucket")
    assert buckets[-1] == (float("inf"), count)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))


def test_prometheus_text_format(run):
    families = list(text_string_to_metric_families(run["prometheus"]))
    names = [f.name for f in families]
    assert len(names) == len(set(names))  # each family once
    types = {f.name: f.type for f in families}
    assert types["ember_requests"] == "counter"
    assert types["ember_request_latency_seconds"] == "histogram"
    check(samples(families))


def test_openmetrics_strict_parser(run):
    assert run["openmetrics"].endswith("# EOF\n")
    check(samples(om_parser.text_string_to_metric_families(run["openmetrics"])))


@pytest.mark.skipif(not os.environ.get("EMBER_METRICS_ENDPOINT"), reason="the example is not built")
def test_the_example_serves_metrics_that_prometheus_client_reads():
    import socket
    import time
    import urllib.request

    with socket.socket() as s:  # a free port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    models = os.environ["EMBER_TEST_MODELS"]
    proc = subprocess.Popen([os.environ["EMBER_METRICS_ENDPOINT"], os.path.join(models, "churn"),
                             os.path.join(models, "churn", "requests.jsonl"), str(port), "3"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().startswith(b"serving")
        time.sleep(0.5)
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        values = samples(text_string_to_metric_families(text))
        assert values[("ember_requests_total", (("model", "churn"), ("version", "1")))] > 0
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                     headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        om = urllib.request.urlopen(req, timeout=10).read().decode()
        assert list(om_parser.text_string_to_metric_families(om))
    finally:
        proc.wait(timeout=30)
