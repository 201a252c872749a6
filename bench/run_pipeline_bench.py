"""Runs bench_pipeline (ember) and times scikit-learn's ColumnTransformer on the same
rows, in one run, and prints medians and ratios.

    python bench/run_pipeline_bench.py [--build build] [--repetitions 9]

The pipeline: 25 numeric features (mean imputation + StandardScaler) and 5 string
categoricals (most_frequent imputation + OneHotEncoder, 9 categories each: 45 columns),
fitted on 5,000 synthetic rows with 5% missing values. scikit-learn is timed on a
one-row DataFrame (single) and on 1,024 rows (batch).
Goals: <= 0.5 us per row; >= 3 M rows/s in batches on one core; >= 1,000x faster than
scikit-learn on a single row and >= 10x on batches.
"""

import json
import os
import statistics
import sys
import time

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import benchlib
from benchlib import ROOT

sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
from ember.sklearn import export_pipeline  # noqa: E402

NUMERIC = [f"x{i:02d}" for i in range(25)]
CATEGORICAL = [f"c{i}" for i in range(5)]


def make_frame(n, seed):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(i, 1 + i / 10, n) for i, name in enumerate(NUMERIC)})
    for name in CATEGORICAL:
        frame[name] = rng.choice([f"{name}_v{k}" for k in range(9)], n).astype(object)
    mask = rng.random(frame.shape) < 0.05
    frame = frame.mask(mask)
    return frame


def time_sklearn(ct, rows, repetitions):
    single = []
    for _ in range(repetitions):
        n = 200
        start = time.perf_counter()
        for k in range(n):
            ct.transform(rows.iloc[[k % len(rows)]])
        single.append((time.perf_counter() - start) / n * 1e6)
    batch = []
    for _ in range(repetitions):
        start = time.perf_counter()
        ct.transform(rows)
        batch.append(len(rows) / (time.perf_counter() - start))
    return statistics.median(single), statistics.median(batch)


def main() -> int:
    args = benchlib.arguments(__doc__)
    binary = benchlib.program(args.build, "bench_pipeline")
    data = os.path.join(args.build, "bench", "pipeline-data")
    os.makedirs(data, exist_ok=True)
    ct = ColumnTransformer([
        ("num", Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())]), NUMERIC),
        ("cat", Pipeline([("impute", SimpleImputer(strategy="most_frequent")),
                          ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False))]), CATEGORICAL),
    ])
    ct.fit(make_frame(5000, 1))
    doc = export_pipeline(ct, os.path.join(data, "pipeline.json"))
    rows = make_frame(1024, 2)
    cells = [[None if (isinstance(v, float) and np.isnan(v)) else v for v in r]
             for r in rows[[i["name"] for i in doc["inputs"]]].itertuples(index=False)]
    with open(os.path.join(data, "rows.json"), "w") as f:
        json.dump(cells, f)

    runs = benchlib.run(binary, {"EMBER_BENCH_DATA": data, "OMP_NUM_THREADS": "1"}, args.repetitions, args.min_time)
    row_us = statistics.median(benchlib.real_time_us(r) for r in runs["BM_TransformRow"])
    batch_rate = statistics.median(r["items_per_second"] for r in runs["BM_TransformBatch1024"])
    sk_row_us, sk_rate = time_sklearn(ct, rows, args.repetitions)

    print(f"pipeline: 30 inputs -> {len(doc['output_names'])} outputs; medians of {args.repetitions} repetitions")
    print(f"{'':24} {'ember':>14} {'scikit-learn':>14} {'ratio':>9}  goal")
    print(f"{'single row (us)':24} {row_us:>14.3f} {sk_row_us:>14.1f} {sk_row_us / row_us:>8.0f}x  "
          f"<= 0.5 us {'met' if row_us <= 0.5 else 'MISSED'}; >= 1000x {'met' if sk_row_us / row_us >= 1000 else 'MISSED'}")
    print(f"{'batch of 1,024 (rows/s)':24} {batch_rate:>14,.0f} {sk_rate:>14,.0f} {batch_rate / sk_rate:>8.1f}x  "
          f">= 3 M/s {'met' if batch_rate >= 3e6 else 'MISSED'}; >= 10x {'met' if batch_rate / sk_rate >= 10 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
