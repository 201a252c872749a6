"""Runs bench_executor (ember vs raw LibTorch forward) and prints medians and ratios.

    python bench/run_executor_bench.py [--build build] [--repetitions 9] [--min-time 0.2]

The model is generated into the build folder first. Every benchmark is repeated with
random interleaving, so slow phases of a noisy machine hit both sides alike; the
table gives the median of the repetitions and the overhead of ember over raw forward.
The goal: ember adds at most max(10%, 1 us) to raw forward at batch 1.
"""

import os
import statistics
import subprocess
import sys

import benchlib
from benchlib import ROOT


def main() -> int:
    args = benchlib.arguments(__doc__, lambda p: p.add_argument("--json", help="also write the raw JSON here"))

    binary = benchlib.program(args.build, "bench_executor")
    model_dir = os.path.join(args.build, "bench", "models")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "models", "make_models.py"), model_dir, "--only", "mlp"],
                   check=True, stdout=subprocess.DEVNULL)
    results = benchlib.run(binary, {"EMBER_BENCH_MODEL": os.path.join(model_dir, "mlp.pt"), "OMP_NUM_THREADS": "1"},
                           args.repetitions, args.min_time, args.json)
    runs = {name: [benchlib.real_time_us(r) for r in rs] for name, rs in results.items()}

    print(f"{'batch':>5} {'frozen':>6} {'raw forward us':>15} {'ember us':>9} {'ratio':>6} {'overhead us':>11}  goal")
    verdicts = []
    for batch in (1, 64):
        for frozen in (1, 0):
            suffix = f"/batch:{batch}/frozen:{frozen}"
            raw = statistics.median(runs["BM_RawForward" + suffix])
            ours = statistics.median(runs["BM_EmberRun" + suffix])
            overhead = ours - raw
            goal = ""
            if batch == 1:
                ok = overhead <= max(0.10 * raw, 1.0)
                verdicts.append(ok)
                goal = "met" if ok else "MISSED"
            print(f"{batch:>5} {frozen:>6} {raw:>15.2f} {ours:>9.2f} {ours / raw:>6.3f} {overhead:>11.2f}  {goal}")
    print(f"medians of {args.repetitions} interleaved repetitions; goal at batch 1: overhead <= max(10%, 1 us)")
    return 0 if all(verdicts) else 3


if __name__ == "__main__":
    sys.exit(main())
