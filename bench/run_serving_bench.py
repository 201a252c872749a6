"""Dynamic batching: 16 client threads drive a Deployment of the 70 -> 64 -> 64 -> 1 MLP
(the model of run_predict_bench.py) with batching off and on, through `ember
serve-bench`, beside the ceiling: the raw TorchScript forward at batch 32 on one thread
(bench_serving), in one run. Prints medians of the repetitions and the goals.

    python bench/run_serving_bench.py [--build build] [--repetitions 3] [--seconds 3]

Needs build/bench/predict-data (run bench/run_predict_bench.py once to make it).
Goals: batching on >= 3.5x the unbatched throughput and >= 80 % of the ceiling's rows/s,
with p99 <= max queue delay + one batch's execution + 10 %.
"""

import json
import os
import statistics
import subprocess
import sys

import benchlib

CONFIGS = [("off", 32, 100), ("on", 16, 100), ("on", 32, 100), ("on", 32, 500), ("on", 8, 100)]


def main():
    args = benchlib.arguments(__doc__, lambda p: p.add_argument("--seconds", type=float, default=3.0))
    data = os.path.join(args.build, "bench", "predict-data")
    if not os.path.exists(os.path.join(data, "model.pt")):
        print(f"error: {data} not found; run bench/run_predict_bench.py once to make it", file=sys.stderr)
        sys.exit(1)
    ember = os.path.join(args.build, "apps", "ember", "ember")
    ceiling_bin = benchlib.program(args.build, "bench_serving")
    runs = benchlib.run(ceiling_bin, {"EMBER_BENCH_MODEL": os.path.join(data, "model.pt"), "EMBER_BENCH_WIDTH": "70"},
                        args.repetitions, args.min_time)
    forward = {name: statistics.median(benchlib.real_time_us(r) for r in results) for name, results in runs.items()}
    batch32_us = forward["BM_RawForward/32"]
    ceiling = 32 / batch32_us * 1e6
    results = {}
    for rep in range(args.repetitions):
        for batching, rows, delay in CONFIGS:
            out = subprocess.run([ember, "serve-bench", "--model", data, "--input", os.path.join(data, "records.jsonl"),
                                  "--clients", "16", "--seconds", str(args.seconds), "--batching", batching,
                                  "--max-batch-rows", str(rows), "--max-queue-delay-us", str(delay), "--json"],
                                 capture_output=True, text=True, check=True).stdout
            results.setdefault((batching, rows, delay), []).append(json.loads(out.strip().splitlines()[-1]))
    print(f"raw forward, one thread: batch 1 {forward['BM_RawForward/1']:.2f} us, batch 32 {batch32_us:.2f} us "
          f"(ceiling {ceiling:,.0f} rows/s)")
    base = statistics.median(r["rps"] for r in results[("off", 32, 100)])
    print(f"{'batching':8} {'rows':>5} {'delay':>7} {'req/s':>10} {'x off':>7} {'% ceiling':>10} {'p50 us':>8} "
          f"{'p99 us':>8} {'rows/batch':>10} {'p99 bound':>10}")
    for (batching, rows, delay), rs in results.items():
        rps = statistics.median(r["rps"] for r in rs)
        p50 = statistics.median(r["p50_us"] for r in rs)
        p99 = statistics.median(r["p99_us"] for r in rs)
        mean_rows = statistics.median(r["mean_batch_rows"] for r in rs)
        bound = (delay + batch32_us * rows / 32) * 1.1 if batching == "on" else float("nan")
        print(f"{batching:8} {rows:5} {delay:6}us {rps:10,.0f} {rps / base:6.2f}x {rps / ceiling * 100:9.1f}% "
              f"{p50:8.1f} {p99:8.1f} {mean_rows:10.1f} {bound:10.1f}")


if __name__ == "__main__":
    main()
