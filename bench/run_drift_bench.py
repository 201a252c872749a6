"""A full drift evaluation of 100,000 rows x 30 columns (20 numbers, 10 categories; a
third of them drifted), ember against Evidently's DataDriftPreset on the same data in
the same run; and what watching one request costs the request thread (bench_monitor).

    .venv/bin/python bench/run_drift_bench.py [--rows 100000] [--repetitions 5]

ember is timed twice: in-process (reference statistics with every value kept, then
every column compared: bench_drift, reading the CSV files excluded) and end to end
(`ember drift --json`, reading the CSV files included). Evidently is timed from the
pandas DataFrames already in memory (Dataset.from_pandas + Report.run). Medians."""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


def make(rng, n, drift):
    cols = {}
    for i in range(20):
        shift = 0.25 if drift and i % 3 == 0 else 0.0
        kind = i % 4
        if kind == 0:
            cols[f"n{i}"] = rng.normal(shift, 1, n)
        elif kind == 1:
            cols[f"n{i}"] = rng.lognormal(3 + shift, 0.7, n)
        elif kind == 2:
            cols[f"n{i}"] = rng.integers(0, 500, n) + int(shift * 100)
        else:
            p = np.array([0.4, 0.3, 0.15, 0.1, 0.05])
            if shift:
                p = p[::-1]
            cols[f"n{i}"] = rng.choice(5, n, p=p)  # few distinct values: Jensen-Shannon
    for i in range(10):
        k = 4 + 5 * i
        p = np.linspace(1, 2, k)
        if drift and i % 3 == 0:
            p = p[::-1] ** 2
        cols[f"c{i}"] = rng.choice([f"v{j}" for j in range(k)], n, p=p / p.sum())
    return pd.DataFrame(cols)


def main():
    args = benchlib.arguments(__doc__, lambda p: p.add_argument("--rows", type=int, default=100_000))
    data = os.path.join(args.build, "bench", "drift-data")
    os.makedirs(data, exist_ok=True)
    rng = np.random.default_rng(2026)
    ref, cur = make(rng, args.rows, False), make(rng, args.rows, True)
    ref_csv, cur_csv = os.path.join(data, "ref.csv"), os.path.join(data, "cur.csv")
    ref.to_csv(ref_csv, index=False)
    cur.to_csv(cur_csv, index=False)
    reps = max(args.repetitions, 1)

    bench = benchlib.program(args.build, "bench_drift")
    inproc = json.loads(subprocess.run([bench, ref_csv, cur_csv, str(reps), "1"], check=True, capture_output=True,
                                       text=True).stdout)
    inproc2 = json.loads(subprocess.run([bench, ref_csv, cur_csv, str(reps), "2"], check=True, capture_output=True,
                                        text=True).stdout)
    ember_bin = os.path.join(args.build, "apps", "ember", "ember")
    cli_s, ours = [], None
    for _ in range(reps):
        t = time.perf_counter()
        out = subprocess.run([ember_bin, "drift", "--reference", ref_csv, "--current", cur_csv, "--json"], check=True,
                             capture_output=True, text=True).stdout
        cli_s.append(time.perf_counter() - t)
        ours = json.loads(out)

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
    dd = DataDefinition(numerical_columns=[c for c in ref.columns if c.startswith("n")],
                        categorical_columns=[c for c in ref.columns if c.startswith("c")])
    ev_s, snap = [], None
    for _ in range(max(reps // 2, 1)):
        t = time.perf_counter()
        snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur, data_definition=dd),
                                               Dataset.from_pandas(ref, data_definition=dd))
        ev_s.append(time.perf_counter() - t)
    theirs = {}
    for m in snap.dict()["metrics"]:
        name = m["metric_name"]
        if name.startswith("ValueDrift(column="):
            col = name[len("ValueDrift(column="):].split(",")[0]
            theirs[col] = m["value"]
    agree = sum(1 for c, v in theirs.items()
                if abs((ours["features"][c]["p_value"] if ours["features"][c]["p_value"] is not None
                        else ours["features"][c]["statistic"]) - v) <= 1e-6 * max(1.0, abs(v)))
    ev = statistics.median(ev_s)
    print(f"drift of {args.rows:,} rows x {len(ref.columns)} columns ({inproc['drifted']} drifted), medians:")
    print(f"  Evidently DataDriftPreset (anchor)      {ev:9.3f} s   ({len(ev_s)} runs)")
    print(f"  ember, in-process evaluation, 1 thread {inproc['evaluate_s']:9.3f} s   {ev / inproc['evaluate_s']:7.1f}x faster")
    print(f"  ember, in-process evaluation, 2 threads{inproc2['evaluate_s']:9.3f} s   {ev / inproc2['evaluate_s']:7.1f}x faster")
    print(f"  ember drift --json, CSV reading incl.  {statistics.median(cli_s):9.3f} s   "
          f"{ev / statistics.median(cli_s):7.1f}x faster   (reading alone {inproc['read_s']:.3f} s)")
    print(f"  scores equal to Evidently's (1e-6): {agree} of {len(theirs)} columns")

    monitor = benchlib.program(args.build, "bench_monitor")
    runs = benchlib.run(monitor, {}, reps, args.min_time)
    print("watching one request of 30 features (Monitor::on_request), medians:")
    for name, label in (("BM_MetricsRecordAnchor/real_time/threads:1", "metrics observer (anchor), 1 thread"),
                        ("BM_MonitorRecord/real_time/threads:1", "monitor, 1 thread"),
                        ("BM_MonitorRecord/real_time/threads:2", "monitor, 2 threads")):
        wall = statistics.median(benchlib.real_time_us(r) * 1e3 for r in runs[name])
        cpu = statistics.median(r["cpu_time"] * {"ns": 1, "us": 1e3}[r["time_unit"]] for r in runs[name])
        print(f"  {label:38s} wall {wall:7.1f} ns   request thread {cpu:7.1f} ns = {cpu / 30:5.1f} ns per feature")


if __name__ == "__main__":
    main()
