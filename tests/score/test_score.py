"""`ember score`: a data set through a model, driven through the real binary."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

EMBER = os.environ.get("EMBER_BIN", "ember")
CHURN = os.path.join(os.environ.get("EMBER_TEST_MODELS", ""), "churn")

try:
    import pyarrow  # noqa: F401
    import pyarrow.parquet as pq
except ImportError:  # pragma: no cover
    pq = None


def ember(*args, env=None, timeout=300):
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([EMBER, *args], capture_output=True, text=True, timeout=timeout, env=full_env)


def has_parquet():
    """Whether this ember reads Parquet (it says so when asked for a file it would read)."""
    if pq is None:
        return False
    probe = ember("score", "--model", CHURN, "--input", "missing.parquet", "--output", "missing.csv")
    return "without Parquet" not in probe.stderr


def customers(n, seed=11):
    """Records for the churn model, with some the schema refuses."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "id": [f"c{i:06d}" for i in range(n)],
        "tenure": rng.integers(0, 121, n),
        "monthly_charges": rng.uniform(10, 130, n),
        "autopay": rng.random(n) < 0.5,
        "plan": rng.choice(["basic", "plus", "pro"], n),
        "region": rng.choice(["west", "south", "east", "north"], n),
        "support_calls": pd.array(np.where(rng.random(n) < 0.2, None, rng.integers(0, 6, n)), dtype="Int64"),
        "segment": rng.choice(["a", "b"], n),  # neither a feature nor a key: not part of the record
    })
    df.loc[df.index % 97 == 3, "tenure"] = 500          # above the maximum
    df.loc[df.index % 131 == 4, "plan"] = "gold"        # not a category
    df.loc[df.index % 173 == 5, "monthly_charges"] = -1.0  # not > 0
    return df


def write_all(df, tmp_path):
    paths = {"csv": tmp_path / "data.csv", "jsonl": tmp_path / "data.jsonl"}
    df.to_csv(paths["csv"], index=False)
    df.to_json(paths["jsonl"], orient="records", lines=True, double_precision=15)
    if pq is not None:
        paths["parquet"] = tmp_path / "data.parquet"
        df.to_parquet(paths["parquet"], index=False, row_group_size=1500)
    return paths


def read_rejects(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def score(tmp_path, source, out_name, *extra, env=None):
    out = tmp_path / out_name
    result = ember("score", "--model", CHURN, "--input", str(source), "--output", str(out), "--key", "id",
                   "--no-progress", "--json", *extra, env=env)
    return result, out


def test_help_names_the_options():
    out = ember("score", "--help").stdout
    for option in ["--model", "--input", "--output", "--rejects", "--key", "--chunk-rows", "--threads", "--resume",
                   "--progress", "--served-by"]:
        assert option in out


def test_every_format_scores_the_same(tmp_path):
    df = customers(6000)
    paths = write_all(df, tmp_path)
    outputs = {}
    for fmt, path in paths.items():
        result, out = score(tmp_path, path, f"preds_{fmt}.csv", "--chunk-rows", "700")
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["rows"] == 6000
        assert summary["scored"] + summary["rejected"] == 6000
        outputs[fmt] = (out.read_text(), read_rejects(tmp_path / f"preds_{fmt}.rejects.jsonl"))
    first = outputs["csv"]
    for fmt, got in outputs.items():
        assert got[0] == first[0], fmt
        assert got[1] == first[1], fmt
    preds = pd.read_csv(tmp_path / "preds_csv.csv")
    assert list(preds.columns) == ["id", "output"]
    rejected_ids = {r["keys"]["id"] for r in first[1]}
    bad = df[(df.tenure > 120) | (df.plan == "gold") | (df.monthly_charges <= 0)]
    assert rejected_ids == set(bad.id)
    assert set(preds.id) == set(df.id) - rejected_ids
    assert list(preds.id) == [i for i in df.id if i not in rejected_ids]  # input order
    one = next(r for r in first[1] if r["row"] == 3)
    assert one["keys"] == {"id": "c000003"}
    assert one["errors"][0]["path"] == "/tenure"
    assert "maximum" in one["errors"][0]["message"]


def test_predictions_equal_ember_predict(tmp_path):
    df = customers(300, seed=5)
    df = df[(df.tenure <= 120) & (df.plan != "gold") & (df.monthly_charges > 0)].drop(columns=["segment"])
    records = tmp_path / "records.jsonl"
    df.drop(columns=["id"]).to_json(records, orient="records", lines=True, double_precision=15)
    predicted = subprocess.run([EMBER, "predict", "--model", CHURN, "--input", str(records)], capture_output=True,
                               text=True, check=True).stdout.splitlines()
    expected = [json.loads(line)["outputs"]["output"] for line in predicted if '"outputs"' in line]
    assert len(expected) == len(df)
    df.to_csv(tmp_path / "data.csv", index=False)
    result, out = score(tmp_path, tmp_path / "data.csv", "preds.csv")
    assert result.returncode == 0, result.stderr
    got = pd.read_csv(out)
    assert list(got.id) == list(df.id)
    # Blocks of 256 rows round in another kernel than one record alone: the last bit.
    np.testing.assert_allclose(got.output.to_numpy(np.float32), np.asarray(expected, np.float32), rtol=1e-6)
    alone, out1 = score(tmp_path, tmp_path / "data.csv", "alone.csv", "--block-rows", "1")
    assert alone.returncode == 0, alone.stderr
    np.testing.assert_array_equal(pd.read_csv(out1).output.to_numpy(np.float32), np.asarray(expected, np.float32))


def test_threads_and_chunks_do_not_change_the_answer(tmp_path):
    paths = write_all(customers(5000), tmp_path)
    texts = []
    for threads, chunk in [(1, 5000), (2, 333), (3, 1)]:
        result, out = score(tmp_path, paths["jsonl"], f"p{threads}.csv", "--threads", str(threads), "--chunk-rows",
                            str(chunk))
        assert result.returncode == 0, result.stderr
        texts.append((out.read_text(), (tmp_path / f"p{threads}.rejects.jsonl").read_text()))
    assert texts[0] == texts[1] == texts[2]


def test_rows_the_reader_cannot_take_are_rejected_not_fatal(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text(
        "id,tenure,monthly_charges,autopay,plan,region\n"
        "a,10,50.5,true,basic,west\n"
        "b,10,50.5\n"                                   # too few fields
        "\"c,\"\"1\"\"\",11,\"60\",false,\"pro\",\"north\"\n"  # quoted fields, quotes in one
        "d,abc,50,true,basic,west\n"                    # not a number: the schema says so
        "\n"                                             # blank: skipped
        "e,12,\"7\"x,true,basic,west\n"                 # text after a closing quote
        "f,,NaN,,,\n")                                  # all missing
    result, out = score(tmp_path, data, "preds.csv", "--rejects", str(tmp_path / "bad.jsonl"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["rows"] == 6 and summary["scored"] == 2
    preds = pd.read_csv(out)
    assert list(preds.id) == ["a", 'c,"1"']
    rejects = {r["keys"]["id"]: r for r in read_rejects(tmp_path / "bad.jsonl")}
    assert "fields where the header has 6" in rejects["b"]["errors"][0]["message"]
    assert rejects["d"]["errors"][0]["path"] == "/tenure"
    assert "quote" in rejects["e"]["errors"][0]["message"]
    assert {e["path"] for e in rejects["f"]["errors"]} >= {"/tenure", "/plan"}
    assert [r["row"] for r in read_rejects(tmp_path / "bad.jsonl")] == [1, 3, 4, 5]


def test_a_byte_order_mark_and_crlf_line_ends(tmp_path):
    data = tmp_path / "excel.csv"
    data.write_bytes(b"\xef\xbb\xbftenure,monthly_charges,autopay,plan,region,id\r\n"
                     b"10,50.5,TRUE,basic,west,a\r\n12,60,FALSE,pro,north,b\r\n")
    result, out = score(tmp_path, data, "preds.csv")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["scored"] == 2
    assert list(pd.read_csv(out).id) == ["a", "b"]


def test_json_lines_that_are_not_records_are_rejected(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(
        '{"id": 1, "tenure": 3, "monthly_charges": 20, "autopay": true, "plan": "plus", "region": "east"}\n'
        '[1, 2]\n'
        '{"id": "x\\"y", "tenure": 3, "monthly_charges": 20, "autopay": true, "plan": "plus", "region": "east"\n'
        '{"tenure": {"nested": 1}, "id": 4}\n'
        '{"id": null, "tenure": 7, "monthly_charges": 20.5, "autopay": false, "plan": "basic", "region": "west"}\n')
    result, out = score(tmp_path, data, "preds.csv")
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines() == ["id,output"] + out.read_text().splitlines()[1:]
    preds = pd.read_csv(out, keep_default_na=False)
    assert list(preds.id) == ["1", ""]  # a number's JSON text; null is empty
    rejects = read_rejects(tmp_path / "preds.rejects.jsonl")
    assert [r["row"] for r in rejects] == [1, 2, 3]
    assert all(r["errors"] for r in rejects)


def test_progress_bar_and_summary(tmp_path):
    paths = write_all(customers(3000), tmp_path)
    out = tmp_path / "p.csv"
    result = ember("score", "--model", CHURN, "--input", str(paths["csv"]), "--output", str(out), "--key", "id",
                   "--progress", "--chunk-rows", "500")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.strip().splitlines()
    bar = [line for line in lines if line.startswith("scoring [")]
    assert bar and "100.0%" in bar[-1] and "rows/s" in bar[-1] and "ETA" in bar[-1]
    assert "3,000 rows" in bar[-1]
    assert "scored ->" in lines[-1] and "rejected ->" in lines[-1]
    quiet = ember("score", "--model", CHURN, "--input", str(paths["csv"]), "--output", str(tmp_path / "q.csv"))
    assert quiet.returncode == 0
    assert "scoring [" not in quiet.stderr  # not a terminal, not asked for


@pytest.mark.parametrize("fault", ["stop@3", "kill@3"])
@pytest.mark.parametrize("out_format", ["csv", "parquet"])
def test_an_interrupted_run_resumes_to_the_same_output(tmp_path, fault, out_format):
    if out_format == "parquet" and not has_parquet():
        pytest.skip("built without Parquet")
    paths = write_all(customers(4000), tmp_path)
    whole, whole_out = score(tmp_path, paths["csv"], f"whole.{out_format}", "--chunk-rows", "500")
    assert whole.returncode == 0, whole.stderr
    first, out = score(tmp_path, paths["csv"], f"part.{out_format}", "--chunk-rows", "500", "--threads", "2",
                       env={"EMBER_SCORE_FAULT": fault})
    if fault.startswith("kill"):
        assert first.returncode == -signal.SIGKILL
    else:
        assert first.returncode == 130, first.stderr
        assert "--resume" in first.stderr
    assert not out.exists()  # only a complete output appears under its name
    progress = json.loads((tmp_path / f"part.{out_format}.progress").read_text())
    if fault.startswith("kill"):
        assert progress["chunks"] == 2  # killed before chunk 3's checkpoint
    else:
        assert progress["chunks"] >= 3  # the chunks in flight complete
    again, _ = score(tmp_path, paths["csv"], f"part.{out_format}", "--chunk-rows", "500")
    assert again.returncode == 1 and "--resume" in again.stderr
    resumed, _ = score(tmp_path, paths["csv"], f"part.{out_format}", "--chunk-rows", "500", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["resumed_at_row"] == progress["rows"]
    assert not (tmp_path / f"part.{out_format}.progress").exists()
    if out_format == "csv":
        assert out.read_text() == whole_out.read_text()
    else:
        assert pq.read_table(out).equals(pq.read_table(whole_out))
        assert not (tmp_path / "part.parquet.parts").exists()
    assert (tmp_path / "part.rejects.jsonl").read_text() == (tmp_path / "whole.rejects.jsonl").read_text()


def test_a_signal_stops_after_the_chunks_in_flight(tmp_path):
    df = customers(2000)
    big = tmp_path / "big.csv"
    df.to_csv(big, index=False)
    body = big.read_text().split("\n", 1)[1]
    with open(big, "a") as f:
        for _ in range(150):
            f.write(body)
    out = tmp_path / "p.csv"
    args = [EMBER, "score", "--model", CHURN, "--input", str(big), "--output", str(out), "--key", "id",
            "--chunk-rows", "200", "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    progress = tmp_path / "p.csv.progress"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(progress.read_text())["chunks"] >= 2:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.002)
    if proc.poll() is not None:
        pytest.skip("the run completed before it could be interrupted")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    done = json.loads(progress.read_text())["rows"]
    resumed = subprocess.run(args + ["--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after {done:,} rows" in resumed.stderr
    assert len(pd.read_csv(out)) + len(read_rejects(tmp_path / "p.rejects.jsonl")) == 2000 * 151


def test_resume_without_a_checkpoint_starts_from_the_beginning(tmp_path):
    paths = write_all(customers(500), tmp_path)
    result, out = score(tmp_path, paths["csv"], "p.csv", "--resume", "--registry", str(tmp_path / "unused"))
    assert result.returncode == 0, result.stderr
    assert "nothing to resume" in result.stderr
    assert json.loads(result.stdout)["rows"] == 500


def test_resume_refuses_a_changed_input(tmp_path):
    paths = write_all(customers(3000), tmp_path)
    first, _ = score(tmp_path, paths["csv"], "p.csv", "--chunk-rows", "500", env={"EMBER_SCORE_FAULT": "stop@1"})
    assert first.returncode == 130
    with open(paths["csv"], "a") as f:
        f.write("zz,1,20,true,basic,west,1,a\n")
    resumed, _ = score(tmp_path, paths["csv"], "p.csv", "--chunk-rows", "500", "--resume")
    assert resumed.returncode == 1
    assert "input_bytes" in resumed.stderr
    other, _ = score(tmp_path, paths["csv"], "p.csv", "--chunk-rows", "100", "--resume")
    assert other.returncode == 1


@pytest.mark.skipif(pq is None, reason="pyarrow is not installed")
def test_parquet_in_and_out_keeps_key_types(tmp_path):
    if not has_parquet():
        pytest.skip("built without Parquet")
    df = customers(2500)
    df["id"] = np.arange(len(df), dtype=np.int64) * 7
    df.to_parquet(tmp_path / "data.parquet", index=False, row_group_size=400)
    result, out = score(tmp_path, tmp_path / "data.parquet", "preds.parquet", "--served-by", "--chunk-rows", "300")
    assert result.returncode == 0, result.stderr
    table = pq.read_table(out)
    assert table.schema.field("id").type == pyarrow.int64()
    assert table.schema.field("output").type == pyarrow.float32()
    assert table.column_names == ["id", "output", "served_by"]
    assert set(table.column("served_by").to_pylist()) <= {"primary", "linear", "default"}
    csv_result, csv_out = score(tmp_path, tmp_path / "data.parquet", "preds.csv", "--chunk-rows", "300")
    assert csv_result.returncode == 0
    from_csv = pd.read_csv(csv_out)
    np.testing.assert_array_equal(from_csv.output.to_numpy(np.float32), table.column("output").to_numpy())
    assert list(from_csv.id) == table.column("id").to_pylist()


def test_bad_inputs_get_clear_errors(tmp_path):
    def error(*args):
        result = ember("score", "--model", CHURN, *args)
        assert result.returncode == 1, result
        line = result.stderr.strip().splitlines()[-1]
        assert line.startswith("ember: error: "), line
        return line

    paths = write_all(customers(50), tmp_path)
    out = str(tmp_path / "o.csv")
    assert "no such file" in error("--input", str(tmp_path / "none.csv"), "--output", out)
    assert "unknown format" in error("--input", str(tmp_path / "data.xlsx"), "--output", out)
    assert ".csv or .parquet" in error("--input", str(paths["csv"]), "--output", str(tmp_path / "o.jsonl"))
    assert "key column 'nope'" in error("--input", str(paths["csv"]), "--output", out, "--key", "nope")
    assert "same file" in error("--input", str(paths["csv"]), "--output", str(paths["csv"]))
    (tmp_path / "empty.csv").write_text("")
    assert "empty" in error("--input", str(tmp_path / "empty.csv"), "--output", out)
    (tmp_path / "dup.csv").write_text("tenure,tenure\n1,2\n")
    assert "twice" in error("--input", str(tmp_path / "dup.csv"), "--output", out)
    (tmp_path / "open.csv").write_text('id,plan\na,"basic\nb,plus\n')
    assert "never closed" in error("--input", str(tmp_path / "open.csv"), "--output", out)
    (tmp_path / "long.jsonl").write_text('{"plan": "' + "x" * 5000 + '"}\n')
    assert "longer than 1000 bytes" in error("--input", str(tmp_path / "long.jsonl"), "--output", out,
                                             "--max-record-bytes", "1000")
    assert not os.path.exists(out)
    assert not os.path.exists(out + ".progress")  # a run that failed before any chunk leaves nothing
    if has_parquet():
        raw = paths["parquet"].read_bytes()
        (tmp_path / "cut.parquet").write_bytes(raw[: len(raw) // 2])
        assert "cut.parquet" in error("--input", str(tmp_path / "cut.parquet"), "--output", out)
        (tmp_path / "junk.parquet").write_bytes(b"PAR1" + os.urandom(3000) + b"PAR1")
        assert "junk.parquet" in error("--input", str(tmp_path / "junk.parquet"), "--output", out)
        nested = pd.DataFrame({"id": [1], "tenure": [[1, 2]]})
        nested.to_parquet(tmp_path / "nested.parquet")
        assert "tenure" in error("--input", str(tmp_path / "nested.parquet"), "--output", out)
