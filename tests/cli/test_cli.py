"""The `ember` command-line tool, driven through its real binary."""

import json
import os
import subprocess

import pytest

EMBER = os.environ.get("EMBER_BIN", "ember")
MODELS = os.environ.get("EMBER_TEST_MODELS", "")


def model(name):
    return os.path.join(MODELS, name)


def ember(*args, stdin=None):
    return subprocess.run([EMBER, *args], input=stdin, capture_output=True, text=True, timeout=120)


def write_json(tmp_path, doc, name="input.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


def assert_error(result, code_name, fragment=""):
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"ember: error: {code_name}: "), lines[0]
    assert fragment in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["--help"], ["info", "--help"], ["run", "--help"], ["validate", "--help"], ["transform", "--help"], ["predict", "--help"]])
def test_help(args):
    result = ember(*args)
    assert result.returncode == 0
    assert "Usage" in result.stdout or "usage" in result.stdout.lower()


def test_run_help_documents_options():
    out = ember("run", "--help").stdout
    for option in ["--input", "--device", "--warmup", "--threads", "--output", "--no-optimize"]:
        assert option in out


def test_version():
    result = ember("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("ember ")


def test_usage_errors_exit_2():
    assert ember().returncode == 2
    assert ember("frobnicate").returncode == 2
    result = ember("run", model("mlp.pt"))  # --input is required
    assert result.returncode == 2
    assert "input" in result.stderr
    assert ember("run", model("mlp.pt"), "-i", "x.json", "--warmup", "-3").returncode == 2


def test_info_text():
    result = ember("info", model("mlp.pt"))
    assert result.returncode == 0, result.stderr
    assert "forward(Tensor x) -> Tensor" in result.stdout
    assert "parameters:  6337" in result.stdout
    assert "x: Tensor" in result.stdout
    size = os.path.getsize(model("mlp.pt"))
    assert f"({size} bytes)" in result.stdout


def test_info_json_lists_every_method():
    result = ember("info", model("extra_method.pt"), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [m["name"] for m in doc["methods"]] == ["forward", "describe"]
    assert doc["methods"][1]["arguments"] == [{"name": "k", "type": "int"}]
    assert doc["parameter_count"] == 3 * 2 + 2


def test_info_errors(tmp_path):
    assert_error(ember("info", str(tmp_path / "missing.pt")), "NotFound", "missing.pt")
    text = tmp_path / "text.pt"
    text.write_text("not a model")
    assert_error(ember("info", str(text)), "InvalidArgument", "not a TorchScript archive")
    whole = open(model("mlp.pt"), "rb").read()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole[: len(whole) // 2])
    assert_error(ember("info", str(cut)), "DataLoss", "truncated")


def test_run_matches_pytorch(tmp_path):
    ref = json.load(open(model("mlp_io.json")))
    path = write_json(tmp_path, ref["input"])
    result = ember("run", model("mlp.pt"), "--input", path, "--warmup", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert list(out) == ["output"]
    got = out["output"]
    assert len(got) == 16
    for g, w in zip(got, ref["output"]):
        assert g[0] == pytest.approx(w[0], abs=1e-5)


def test_run_from_stdin_to_file(tmp_path):
    target = tmp_path / "out.json"
    result = ember("run", model("tuple_output.pt"), "-i", "-", "-o", str(target), stdin="[[1, 2], [3, 4.5]]")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert json.loads(target.read_text()) == {"0": [3, 7.5], "1": [[2, 4], [6, 9]]}


def test_run_named_inputs(tmp_path):
    path = write_json(tmp_path, {"scale": [2, 3], "features": [1, 1]})
    result = ember("run", model("two_inputs.pt"), "-i", path, "--no-optimize")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"output": [3, 4]}


def test_run_typed_input_and_dict_output(tmp_path):
    path = write_json(tmp_path, {"dtype": "int64", "data": [[5, -7]]})
    result = ember("run", model("identity.pt"), "-i", path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"output": [[5, -7]]}
    path = write_json(tmp_path, [[0.5, 1, 1.5, 2]])
    out = json.loads(ember("run", model("dict_output.pt"), "-i", path).stdout)
    assert list(out) == ["logits", "probs"]
    assert sum(out["probs"][0]) == pytest.approx(1.0, abs=1e-6)


def test_run_writes_non_finite_outputs_as_strings(tmp_path):
    path = write_json(tmp_path, [-1, 0, 1])
    result = ember("run", model("log.pt"), "-i", path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"output": ["NaN", "-Infinity", 0]}


def test_run_bad_json_names_the_byte(tmp_path):
    path = write_json(tmp_path, "[[1, 2], [3,")
    assert_error(ember("run", model("mlp.pt"), "-i", path), "InvalidArgument", "not valid JSON (byte")
    path = write_json(tmp_path, "[NaN]")
    assert_error(ember("run", model("mlp.pt"), "-i", path), "InvalidArgument", "not valid JSON")


@pytest.mark.parametrize(
    "doc, fragment",
    [
        ([[1, 2], [3]], "/1: ragged array"),
        ([[1, 2], [3, "x"]], "/1/1: expected a number, got string"),
        ({"x": [[1], 2]}, "/x/1: expected an array"),
        ({"x": {"dtype": "int8", "data": [300]}}, "/x/0: 300 does not fit int8"),
        ({"x": {"dtype": "int64", "data": [1.5]}}, "expected an integer"),
        ({"x": {"dtype": "complex", "data": [1]}}, "unknown dtype 'complex'"),
        ([1e39], "overflows float32"),
        ('"hello"', "must be an array"),
        ({}, "names no inputs"),
    ],
)
def test_run_bad_inputs_have_paths(tmp_path, doc, fragment):
    path = write_json(tmp_path, doc)
    assert_error(ember("run", model("mlp.pt"), "-i", path), "InvalidArgument", fragment)


def test_run_deep_nesting_is_refused_not_crashed(tmp_path):
    depth = 100000
    path = write_json(tmp_path, "[" * depth + "1" + "]" * depth)
    assert_error(ember("run", model("mlp.pt"), "-i", path), "InvalidArgument", "more than 32 dimensions")


def test_run_oversized_input_is_refused(tmp_path):
    path = write_json(tmp_path, [[0.0] * 32] * 100)
    assert_error(ember("run", model("mlp.pt"), "-i", path, "--max-input-bytes", "100"), "InvalidArgument", "over the limit")


def test_run_model_errors(tmp_path):
    path = write_json(tmp_path, [[1.0] * 5])
    assert_error(ember("run", model("mlp.pt"), "-i", path), "Internal", "forward() failed")
    path = write_json(tmp_path, {"features": [1]})
    assert_error(ember("run", model("two_inputs.pt"), "-i", path), "InvalidArgument", "missing input 'scale'")
    assert_error(ember("run", model("mlp.pt"), "-i", str(tmp_path / "nope.json")), "NotFound", "nope.json")
    path = write_json(tmp_path, [-3.0])
    assert_error(ember("run", model("raises.pt"), "-i", path), "Internal", "negative total is not allowed")


def test_run_unavailable_device(tmp_path):
    path = write_json(tmp_path, [[0.0] * 32])
    assert_error(ember("run", model("mlp.pt"), "-i", path, "--device", "quantum"), "InvalidArgument", "bad device")
    result = ember("run", model("mlp.pt"), "-i", path, "--device", "cuda:0")
    if result.returncode == 0:
        pytest.skip("CUDA is available here")
    assert_error(result, "FailedPrecondition", "CUDA is not available")


def test_verbose_logs_to_stderr_only(tmp_path):
    path = write_json(tmp_path, [[0.0] * 32])
    result = ember("run", model("mlp.pt"), "-i", path, "-v")
    assert result.returncode == 0
    assert "loaded" in result.stderr
    assert list(json.loads(result.stdout)) == ["output"]  # stdout holds only the JSON


SCHEMA = {
    "type": "object",
    "properties": {
        "age": {"type": "integer", "maximum": 120, "x-ember-training-range": {"min": 18, "max": 90}},
        "name": {"type": "string"},
    },
    "required": ["age"],
}


def test_validate_reports_each_error_with_its_line_and_path(tmp_path):
    schema = write_json(tmp_path, SCHEMA, "schema.json")
    records = tmp_path / "records.jsonl"
    records.write_text('{"age": 30}\n{"age": 212, "name": 3}\n\n[1, 2]\n{"age": 5}\n{"age": \n')
    result = ember("validate", "--schema", schema, "--input", str(records))
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "line 2: /age: 212 is greater than the maximum 120",
        "line 2: /name: expected string, got 3",
        "line 4: /: expected object, got an array",
        "line 5: flagged: age",
        "line 6: /: invalid JSON at byte 8: unexpected end of input, expected a value",
        "5 records: 2 valid, 3 invalid, 1 flagged",
    ]


def test_validate_json_output_and_success_exit(tmp_path):
    schema = write_json(tmp_path, SCHEMA, "schema.json")
    result = ember("validate", "-s", schema, "-i", "-", "--format", "json", stdin='{"age": 40}\n{"age": 10}\n')
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {"line": 2, "valid": True, "errors": [], "flagged": ["age"]}
    assert lines[-1] == {"summary": {"records": 2, "valid": 2, "invalid": 0, "flagged": 1}}


def test_validate_coerce_policy(tmp_path):
    schema = write_json(tmp_path, SCHEMA, "schema.json")
    assert ember("validate", "-s", schema, "-i", "-", stdin='{"age": "40"}\n').returncode == 1
    assert ember("validate", "-s", schema, "-i", "-", "--policy", "coerce", stdin='{"age": "40"}\n').returncode == 0


def test_validate_bad_schema_and_files(tmp_path):
    bad = write_json(tmp_path, {"type": "object", "properties": {"a": {"type": "string", "format": "email"}}}, "s.json")
    assert_error(ember("validate", "-s", bad, "-i", "-", stdin="{}\n"), "InvalidArgument", "unsupported keyword 'format'")
    assert_error(ember("validate", "-s", str(tmp_path / "none.json"), "-i", "-"), "NotFound", "none.json")
    schema = write_json(tmp_path, SCHEMA, "schema.json")
    assert_error(ember("validate", "-s", schema, "-i", str(tmp_path / "none.jsonl")), "NotFound", "none.jsonl")
    assert ember("validate", "-s", schema, "-i", "-", "--policy", "maybe").returncode == 2


def test_transform_csv_and_jsonl(tmp_path):
    pipeline = model("pipeline_mixed.json")
    rows = tmp_path / "rows.csv"
    rows.write_text('income,age,plan,region,churned,stars,score,weight\n52000,33,pro,north,no,3,0.5,70\n'
                    ',,,"south, far",yes,5,0.1,80.5\n')
    out = tmp_path / "out.csv"
    result = ember("transform", "--pipeline", pipeline, "--input", str(rows), "--output", str(out))
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("num__income,num__age,plan__plan_basic")
    assert len(lines) == 3
    assert len(lines[1].split(",")) == len(lines[0].split(","))
    assert "2 rows transformed, 0 failed" in result.stderr
    jsonl = ember("transform", "-p", pipeline, "-i", "-", "--format", "jsonl",
                  stdin='{"income": 52000, "age": 33, "plan": "pro", "region": "north", "churned": "no", '
                        '"stars": 3, "score": 0.5, "weight": 70}\n')
    assert jsonl.returncode == 0, jsonl.stderr
    assert jsonl.stdout.splitlines()[1] == lines[1]


def test_transform_reports_bad_rows_with_line_and_column(tmp_path):
    rows = tmp_path / "rows.csv"
    rows.write_text("income,age,plan,region,churned,stars,score,weight\nabc,40,basic,east,no,1,0.3,60\n"
                    "41000,50,pro,west,maybe,2,0.9,61\n1,2,pro,west,no,2,\"0.9,62\n")
    result = ember("transform", "-p", model("pipeline_mixed.json"), "-i", str(rows))
    assert result.returncode == 1
    assert "line 2: column 'income': expected a number, got \"abc\"" in result.stderr
    assert "line 3: column 'churned': unknown category 'maybe'" in result.stderr
    assert "line 4: unterminated quote" in result.stderr
    assert "0 rows transformed, 3 failed" in result.stderr


def test_transform_usage_errors(tmp_path):
    rows = tmp_path / "rows.txt"
    rows.write_text("x\n")
    assert_error(ember("transform", "-p", model("pipeline_mixed.json"), "-i", str(rows)), "InvalidArgument",
                 "use --format")
    header = tmp_path / "rows.csv"
    header.write_text("income,age\n1,2\n")
    assert_error(ember("transform", "-p", model("pipeline_mixed.json"), "-i", str(header)), "InvalidArgument",
                 "no column 'plan'")
    assert_error(ember("transform", "-p", str(tmp_path / "none.json"), "-i", str(header)), "NotFound", "none.json")


# --- predict ---------------------------------------------------------------------

CHURN = os.path.join(MODELS, "churn")


def predict(*args, stdin=None):
    result = ember("predict", "--model", CHURN, *args, stdin=stdin)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return result, lines


def requests(n):
    with open(os.path.join(CHURN, "requests.jsonl")) as f:
        return f.read().splitlines()[:n]


def test_predict_answers_each_line_and_summarises():
    with open(os.path.join(CHURN, "expected.json")) as f:
        expected = json.load(f)["primary"]
    result, lines = predict("--input", os.path.join(CHURN, "requests.jsonl"))
    assert result.returncode == 0, result.stderr
    records, summary = lines[:-1], lines[-1]["summary"]
    assert len(records) == len(expected)
    for rec, want in zip(records, expected):
        assert rec["served_by"] == "primary"
        assert rec["skipped"] == []
        assert abs(rec["outputs"]["output"] - want) < 1e-5
        assert rec["latency_us"] > 0
        assert isinstance(rec["needs_review"], bool)
    assert summary["answered"] == len(expected)
    assert summary["served_by"] == {"primary": len(expected), "linear": 0, "cache": 0, "default": 0}
    assert f"{len(expected)} records" in result.stderr


def test_predict_reports_invalid_lines_and_goes_on(tmp_path):
    lines = requests(2)
    lines.insert(1, '{"tenure": 500, "plan": "gold"}')
    lines.insert(2, "{not json")
    lines.insert(3, "")
    result, out = predict("--input", write_json(tmp_path, "\n".join(lines) + "\n", "in.jsonl"))
    assert result.returncode == 1
    assert [r["line"] for r in out[:-1]] == [1, 2, 3, 5]
    bad = out[1]
    assert bad["valid"] is False
    paths = {e["instance_path"] for e in bad["errors"]}
    assert {"/tenure", "/plan", ""} <= paths
    assert out[2]["errors"][0]["keyword"] == "json"
    assert out[3]["served_by"] == "primary"
    assert out[-1]["summary"]["invalid"] == 2
    assert out[-1]["summary"]["answered"] == 2


def test_predict_with_injected_faults_shows_the_chain_answering(tmp_path):
    stdin = "\n".join(requests(12)) + "\n"
    result, out = predict("--input", "-", "--inject", "primary=throw", "--output", str(tmp_path / "p.jsonl"), stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert out == []  # everything went to the file
    recs = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert all(r["served_by"] == "linear" for r in recs[:-1])
    codes = [r["skipped"][0]["code"] for r in recs[:-1]]
    assert codes[:5] == ["Internal"] * 5
    assert codes[5:] == ["Unavailable"] * 7  # the breaker opened after 5 failures
    assert recs[-1]["summary"]["served_by"]["linear"] == 12


def test_predict_hang_is_cut_at_the_budget():
    stdin = "\n".join(requests(3)) + "\n"
    result, out = predict("--input", "-", "--inject", "primary=hang:2s", "--budget-ms", "20", stdin=stdin)
    assert result.returncode == 0, result.stderr
    for rec in out[:-1]:
        assert rec["served_by"] == "linear"
        assert rec["skipped"][0]["code"] == "DeadlineExceeded"
        assert rec["latency_us"] < 500_000


@pytest.mark.parametrize("args,fragment", [
    (["--inject", "primary"], "expected STAGE=FAULT"),
    (["--inject", "primary=explode"], "unknown kind 'explode'"),
    (["--inject", "gpu=throw"], "cannot inject faults into stage 'gpu'"),
])
def test_predict_bad_injection(args, fragment):
    result = ember("predict", "--model", CHURN, "--input", "-", *args, stdin="")
    assert_error(result, "InvalidArgument", fragment)


def test_predict_missing_model_and_input(tmp_path):
    assert_error(ember("predict", "--model", str(tmp_path / "none"), "--input", "-", stdin=""), "NotFound")
    assert_error(ember("predict", "--model", CHURN, "--input", str(tmp_path / "none.jsonl")), "NotFound")
    assert ember("predict", "--input", "-").returncode == 2


def test_info_says_which_path_runs_the_model_and_writes_the_native_network(tmp_path):
    result = ember("info", model("mlp.pt"))
    assert "runs on:     ember's native kernels: linear 32->64, relu" in result.stdout
    net = tmp_path / "net.json"
    assert ember("info", model("mlp.pt"), "--native-out", str(net)).returncode == 0
    assert json.loads(net.read_text())["format"] == "ember-net"
    refused = ember("info", model("native/gated.pt"), "--native-out", str(tmp_path / "no.json"))
    assert refused.returncode != 0 and "aten::mul" in refused.stderr
    doc = json.loads(ember("info", model("native/gated.pt"), "--format", "json").stdout)
    assert doc["engine"] == "libtorch" and "aten::mul" in doc["engine_reason"]


def test_run_native_off_and_require_agree(tmp_path):
    ref = json.load(open(model("mlp_io.json")))
    path = write_json(tmp_path, ref["input"])
    outs = [json.loads(ember("run", model("mlp.pt"), "--input", path, "--native", mode).stdout)["output"]
            for mode in ("off", "require")]
    for a, b in zip(*outs):
        assert a[0] == pytest.approx(b[0], rel=1e-6, abs=1e-6)
    refused = ember("run", model("native/gated.pt"), "--input", path, "--native", "require")
    assert refused.returncode != 0 and "native path was required" in refused.stderr


def test_info_and_run_an_aoti_package(tmp_path):
    info = ember("info", model("aoti/mlp.pt2"))
    assert info.returncode == 0, info.stderr
    assert "(AOTInductor package)" in info.stdout and "float32 [-1, 70]" in info.stdout
    rows = [[(i * j % 7) / 7.0 - 0.5 for j in range(70)] for i in range(3)]
    path = write_json(tmp_path, rows)
    package = json.loads(ember("run", model("aoti/mlp.pt2"), "--input", path).stdout)["output"]
    script = json.loads(ember("run", model("aoti/mlp.pt"), "--input", path, "--native", "off").stdout)["output"]
    for a, b in zip(package, script):
        assert a[0] == pytest.approx(b[0], abs=1e-5)
    foreign = ember("run", model("aoti/foreign_torch.pt2"), "--input", path)
    assert foreign.returncode != 0 and "compiled with torch 1.0.0" in foreign.stderr
    named = write_json(tmp_path, {"x": rows})
    assert "positional inputs" in ember("run", model("aoti/mlp.pt2"), "--input", named).stderr
