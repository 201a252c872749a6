"""Batch scoring throughput: `ember score` against the Python stack and against ember's
own execute ceiling, on 1 and 2 threads, in one run; and Spark and Ray with 1 and 2
workers (--scale-out).

    python bench/run_score_bench.py [--build build] [--repetitions 5] [--rows 200000] [--scale-out]

The model is bench/run_predict_bench.py's (30 features, ColumnTransformer to 70 columns,
MLP 70-64-64-1 in TorchScript). The data: --rows records with an id column, as CSV and
as Parquet. Measured, rows per second (median of the repetitions):

- Python stack: pandas.read_csv in chunks of 10,000 -> ColumnTransformer.transform ->
  the TorchScript module (torch.set_num_threads(1 or 2)) -> predictions with their ids
  appended to a CSV file; likewise from Parquet (pyarrow batches of 10,000).
- ember score, CSV -> CSV and Parquet -> Parquet, --threads 1 and 2 (the loop's own time,
  from its --json summary; the Python stack's loop is timed the same way, without
  interpreter start-up or imports).
- the execute ceiling: Model::execute on rows already validated and preprocessed, 10,000
  at a time in blocks of 256 (bench_predict's BM_ExecuteCeiling), 1 and 2 threads.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

import benchlib
import run_predict_bench as rp

CHUNK = 10000


def python_stack(ct, module, source, out_path, threads, parquet):
    torch.set_num_threads(threads)
    columns = rp.NUMERIC + rp.CATEGORICAL
    start = time.perf_counter()
    rows = 0
    with open(out_path, "w") as out, torch.no_grad():
        out.write("id,output\n")
        chunks = (b.to_pandas() for b in pq.ParquetFile(source).iter_batches(batch_size=CHUNK)) if parquet else \
            pd.read_csv(source, chunksize=CHUNK)
        for chunk in chunks:
            x = ct.transform(chunk[columns]).astype(np.float32)
            p = module(torch.from_numpy(x)).numpy()
            pd.DataFrame({"id": chunk["id"].to_numpy(), "output": p}).to_csv(out, header=False, index=False)
            rows += len(chunk)
    return rows / (time.perf_counter() - start)


def ember_score(ember, model_dir, source, out_path, threads):
    result = subprocess.run([ember, "score", "--model", model_dir, "--input", source, "--output", out_path,
                             "--key", "id", "--threads", str(threads), "--no-progress", "--json"],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["rows_per_second"]


def scale_out(model_dir, parquet, repetitions):
    """Spark (local[n]) and Ray (n actors) rows/s for n = 1, 2: wall time of a full run."""
    # run_predict_bench put the source tree's ember (no extension) first: use the installed one.
    source = os.path.join(benchlib.ROOT, "bindings", "python")
    sys.path[:] = [p for p in sys.path if os.path.abspath(p) != source]
    for name in [m for m in sys.modules if m == "ember" or m.startswith("ember.")]:
        del sys.modules[name]
    import ember.ray
    import ember.spark
    import ray
    from pyspark.sql import SparkSession
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Five copies of the data: enough rows that a run is not mostly the engines' start-up
    # (Ray starts a new actor pool, and loads the model in it, for every run).
    copies = 5
    rows = copies * pq.ParquetFile(parquet).metadata.num_rows
    out = {}
    for n in (1, 2):
        spark = (SparkSession.builder.master(f"local[{n}]").config("spark.ui.enabled", "false")
                 .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(CHUNK)).getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        df = spark.read.parquet(*([parquet] * copies)).repartition(2 * n).cache()
        df.count()
        times = []
        for _ in range(repetitions + 1):  # the first run starts the Python workers
            start = time.perf_counter()
            ember.spark.score(df, model_dir, keys=["id"]).write.mode("overwrite").format("noop").save()
            times.append(time.perf_counter() - start)
        out[f"spark {n}"] = rows / statistics.median(times[1:])
        spark.stop()
        ray.init(num_cpus=n, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = ray.data.read_parquet([parquet] * copies, override_num_blocks=4 * n).materialize()
        times = []
        for _ in range(repetitions + 1):
            start = time.perf_counter()
            ember.ray.score(ds, model_dir, keys=["id"], workers=n, batch_size=CHUNK, num_cpus=0.5).materialize()
            times.append(time.perf_counter() - start)
        out[f"ray {n}"] = rows / statistics.median(times[1:])
        ray.shutdown()
    return out


def main():
    args = benchlib.arguments(__doc__, lambda p: (p.add_argument("--rows", type=int, default=200000),
                                                   p.add_argument("--scale-out", action="store_true")))
    ember = os.path.join(args.build, "apps", "ember", "ember")
    bench_predict = benchlib.program(args.build, "bench_predict")
    with tempfile.TemporaryDirectory() as tmp:
        _, ct, module, _ = rp.build(tmp)
        frame = rp.make_frame(args.rows, np.random.default_rng(5))
        frame.insert(0, "id", np.arange(args.rows, dtype=np.int64))
        csv, parquet = os.path.join(tmp, "data.csv"), os.path.join(tmp, "data.parquet")
        frame.to_csv(csv, index=False)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), parquet, row_group_size=100000)
        results = {}
        for rep in range(args.repetitions):
            for threads in (1, 2):
                for name, fn in [
                        (f"python csv {threads}", lambda: python_stack(ct, module, csv, os.path.join(tmp, "py.csv"),
                                                                        threads, False)),
                        (f"python parquet {threads}", lambda: python_stack(ct, module, parquet,
                                                                            os.path.join(tmp, "py.csv"), threads,
                                                                            True)),
                        (f"ember csv {threads}", lambda: ember_score(ember, tmp, csv, os.path.join(tmp, "e.csv"),
                                                                      threads)),
                        (f"ember parquet {threads}", lambda: ember_score(ember, tmp, parquet,
                                                                          os.path.join(tmp, "e.parquet"), threads))]:
                    results.setdefault(name, []).append(fn())
        out = subprocess.run([bench_predict, f"--benchmark_repetitions={args.repetitions}",
                              "--benchmark_filter=BM_ExecuteCeiling", f"--benchmark_min_time={args.min_time}",
                              "--benchmark_format=json"],
                             env=dict(os.environ, EMBER_BENCH_DATA=tmp, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
                             capture_output=True, text=True, check=True).stdout
        runs = {}
        for b in json.loads(out)["benchmarks"]:
            if b.get("run_type") == "iteration":
                runs.setdefault(b["run_name"], []).append(b)
        for threads in (1, 2):
            name = f"BM_ExecuteCeiling/real_time/threads:{threads}"
            results[f"ceiling {threads}"] = [r["items_per_second"] for r in runs[name]]
        report(args, {k: statistics.median(v) for k, v in results.items()})
        if args.scale_out:
            scaled = scale_out(tmp, parquet, max(1, args.repetitions // 2))
            for engine in ("spark", "ray"):
                one, two = scaled[f"{engine} 1"], scaled[f"{engine} 2"]
                print(f"  {engine}: 1 worker {one:,.0f} rows/s, 2 workers {two:,.0f} rows/s ({two / one:.2f}x)")


def report(args, med):
    print(f"rows: {args.rows:,}, repetitions: {args.repetitions} (medians, rows/s)")
    for threads in (1, 2):
        print(f"\n{threads} thread{'s' if threads > 1 else ''}:")
        ceiling = med[f"ceiling {threads}"]
        for fmt in ("csv", "parquet"):
            e, p = med[f"ember {fmt} {threads}"], med[f"python {fmt} {threads}"]
            print(f"  {fmt:8s} ember score {e:12,.0f}   Python stack {p:10,.0f} ({e / p:5.1f}x)   "
                  f"ceiling {ceiling:12,.0f} (ember at {e / ceiling:5.1%})")
    for fmt in ("csv", "parquet"):
        print(f"  {fmt}: ember 2 threads / 1 thread {med[f'ember {fmt} 2'] / med[f'ember {fmt} 1']:.2f}x, "
              f"Python {med[f'python {fmt} 2'] / med[f'python {fmt} 1']:.2f}x, "
              f"ceiling {med['ceiling 2'] / med['ceiling 1']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
