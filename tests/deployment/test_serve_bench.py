"""`ember serve-bench`: the swap script. 8 client threads, a version swap every 10 ms
for 6 seconds (EMBER_SWAP_SECONDS), batching on and off: no request may fail, and at
least 100 swaps must happen. Also the JSON keys scripts depend on."""

import json
import os
import subprocess

import pytest

EMBER = os.environ.get("EMBER_BIN", "ember")
SECONDS = os.environ.get("EMBER_SWAP_SECONDS", "6")
KEYS = {"requests", "failed", "rps", "p50_us", "p99_us", "swaps", "batches", "mean_batch_rows"}


def run(*args, check=True):
    env = dict(os.environ)
    env.pop("EMBER_REGISTRY", None)
    r = subprocess.run([EMBER, *args], capture_output=True, text=True, timeout=300, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"ember {' '.join(args)}: {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def linear_model(path, weight):
    path.mkdir(parents=True)
    (path / "schema.json").write_text(json.dumps({
        "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"], "additionalProperties": False}))
    (path / "linear.json").write_text(json.dumps({
        "format": "ember-linear", "version": 1, "estimator": "LinearRegression", "coef": [[weight, 2.0]],
        "intercept": [0.5]}))
    (path / "chain.json").write_text(json.dumps({"format": "ember-chain", "version": 1, "stages": [
        {"name": "linear", "type": "linear", "path": "linear.json"},
        {"name": "default", "type": "default", "outputs": {"output": 0}}]}))
    return path


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    reg = str(tmp / "reg")
    run("registry", "init", reg)
    for weight in (1.0, 3.0):
        model = linear_model(tmp / f"model{weight}", weight)
        run("bundle", "create", str(model), "--name", "m", "--out", str(tmp / f"bundle{weight}"))
        run("registry", "publish", "--registry", reg, str(tmp / f"bundle{weight}"))
    run("registry", "alias", "--registry", reg, "m@production", "1")
    records = tmp / "records.jsonl"
    records.write_text("".join(json.dumps({"a": i % 7, "b": i % 3}) + "\n" for i in range(100)))
    return {"reg": reg, "records": str(records), "tmp": tmp}


@pytest.mark.parametrize("batching", ["on", "off"])
def test_no_request_fails_across_100_swaps(registry, batching):
    out = run("serve-bench", "--registry", registry["reg"], "--model", "m@production", "--input", registry["records"],
              "--clients", "8", "--seconds", SECONDS, "--swap-every-ms", "10", "--batching", batching,
              "--max-queue-delay-us", "200", "--json")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert KEYS <= set(result)
    assert result["failed"] == 0, result["first_error"]
    assert result["swaps"] >= 100
    assert set(result["answers_by_version"]) == {"1", "2"}
    assert result["requests"] > 0
    assert (result["batches"] > 0) == (batching == "on")
    # The alias itself was not moved by the benchmark.
    assert run("registry", "resolve", "--registry", registry["reg"], "m@production").stdout.startswith("m/1")


def test_a_directory_reloads_and_bad_input_is_an_error(registry):
    model = linear_model(registry["tmp"] / "dir-model", 2.0)
    out = run("serve-bench", "--model", str(model), "--input", registry["records"], "--clients", "2", "--seconds", "0.5",
              "--swap-every-ms", "50")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["failed"] == 0 and result["swaps"] >= 3
    empty = registry["tmp"] / "empty.jsonl"
    empty.write_text("\n")
    bad = run("serve-bench", "--model", str(model), "--input", str(empty), "--seconds", "0.1", check=False)
    assert bad.returncode == 1 and "no records" in bad.stderr
    usage = run("serve-bench", "--model", str(model), "--input", registry["records"], "--batching", "maybe", check=False)
    assert usage.returncode == 2
