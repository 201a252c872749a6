"""What the benchmark scripts share: finding a benchmark program in the build, and running
it with interleaved repetitions to get every repetition's result by benchmark name."""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def arguments(doc, extra=None):
    """The options every benchmark script takes (--build, --repetitions, --min-time);
    `extra(parser)` may add more."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"), help="the CMake build folder")
    parser.add_argument("--repetitions", type=int, default=9)
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per repetition")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def program(build, name):
    """The path of bench/<name> in the build, or exits with a clear error."""
    path = os.path.join(build, "bench", name)
    if not os.path.exists(path):
        print(f"error: {path} not found; build with EMBER_BUILD_BENCH=ON (scripts/build does)", file=sys.stderr)
        sys.exit(1)
    return path


def run(binary, env, repetitions, min_time, raw_json=None):
    """Runs a Google Benchmark program with random interleaving; returns
    {benchmark name: [one result dict per repetition]}."""
    cmd = [binary, f"--benchmark_repetitions={repetitions}", "--benchmark_enable_random_interleaving=true",
           f"--benchmark_min_time={min_time}", "--benchmark_format=json"]
    out = subprocess.run(cmd, env=dict(os.environ, **env), check=True, capture_output=True, text=True).stdout
    if raw_json:
        with open(raw_json, "w") as f:
            f.write(out)
    runs = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") == "iteration":
            runs.setdefault(b["run_name"], []).append(b)
    return runs


def real_time_us(result):
    """One repetition's time per iteration, in microseconds."""
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[result["time_unit"]]
    return result["real_time"] * scale
