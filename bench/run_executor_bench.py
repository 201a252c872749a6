"""Runs bench_executor (ember vs raw LibTorch forward) and prints medians and ratios.

    python bench/run_executor_bench.py [--build build] [--repetitions 9] [--min-time 0.2]

The model is generated into the build folder first. Every benchmark is repeated with
random interleaving, so slow phases of a noisy machine hit both sides alike; the
table gives the median of the repetitions and the overhead of ember over raw forward.
The goal: ember adds at most max(10%, 1 us) to raw forward at batch 1.

Then the native path, on the 70 -> 64 -> 64 -> 1 MLP: raw LibTorch forward (frozen and
optimized), ember on LibTorch, ember's native kernels, the same network as an
AOTInductor package and dynamically quantized to int8 (both through ember), and ONNX
Runtime's Python API on the network exported to ONNX (one intra-op thread; timed in this
process after the repetitions, so the same run). Goals: native <= 0.25x raw forward at
batch 1 and <= 0.6x at batch 64.
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
    verdicts += native_section(args, binary)
    return 0 if all(verdicts) else 3


def onnx_runtime_us(model_pt, batch, repetitions):
    """Median over repetitions of ONNX Runtime's session.run per call (us), or None when
    onnxruntime is not installed (scripts/bootstrap --bench installs it)."""
    try:
        import onnxruntime as ort
        import torch
    except ImportError:
        return None
    import tempfile
    import timeit

    import numpy as np
    module = torch.jit.load(model_pt).eval()
    x = torch.linspace(-1, 1, batch * 70).reshape(batch, 70)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "wide.onnx")
        torch.onnx.export(module, (x,), path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}}, dynamo=False)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy().astype(np.float32)}
    want = module(x).detach().numpy()
    assert np.allclose(session.run(None, feed)[0], want, atol=1e-5), "ONNX Runtime disagrees with the model"
    times = []
    for _ in range(repetitions):
        n = 2000 if batch == 1 else 500
        times.append(timeit.timeit(lambda: session.run(None, feed), number=n) / n * 1e6)
    return statistics.median(times)


def other_formats(model_dir, wide):
    """The wide MLP as an AOTInductor package and as int8 TorchScript: (package, int8)."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "executor"))
    sys.path.insert(0, os.path.join(ROOT, "bindings", "python"))
    from ember.aoti import compile_package
    from make_native_models import Wide
    torch.manual_seed(5)
    module = Wide().eval()
    package = os.path.join(model_dir, "wide.pt2")
    compile_package(module, torch.randn(4, 70), package, max_rows=4096)
    int8 = os.path.join(model_dir, "wide_int8.pt")
    quantized = torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)
    torch.jit.trace(quantized, torch.randn(4, 70)).save(int8)
    x = torch.randn(1024, 70)
    with torch.no_grad():
        want, got = module(x), quantized(x)
    print(f"int8 against float32 on 1,024 random rows: max abs difference {float((want - got).abs().max()):.2e}, "
          f"decisions (> 0.5) changed {float(((want > 0.5) != (got > 0.5)).double().mean()):.2%}")
    sizes = {"TorchScript": os.path.getsize(wide), "AOTInductor": os.path.getsize(package), "int8": os.path.getsize(int8)}
    print("model files: " + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sizes.items()))
    return package, int8


def native_section(args, binary):
    model_dir = os.path.join(args.build, "bench", "models")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "executor", "make_native_models.py"), model_dir],
                   check=True, stdout=subprocess.DEVNULL)
    wide = os.path.join(model_dir, "native", "wide.pt")
    package, int8 = other_formats(model_dir, wide)
    results = benchlib.run(binary, {"EMBER_BENCH_MODEL": wide, "EMBER_BENCH_WIDTH": "70", "OMP_NUM_THREADS": "1",
                                    "EMBER_BENCH_PACKAGE": package, "EMBER_BENCH_INT8": int8},
                           args.repetitions, args.min_time)
    runs = {name: [benchlib.real_time_us(r) for r in rs] for name, rs in results.items()}
    print()
    print("native path, MLP 70 -> 64 -> 64 -> 1, one thread")
    print(f"{'batch':>5} {'raw forward us':>15} {'ember LibTorch us':>18} {'ember native us':>16} {'native/raw':>11}"
          f" {'AOTI us':>8} {'AOTI/raw':>9} {'int8 us':>8} {'int8/raw':>9}"
          f" {'ONNX Runtime (Python) us':>25} {'ORT/raw':>8}  goal")
    verdicts = []
    for batch, goal in ((1, 0.25), (32, None), (64, 0.6)):
        raw = statistics.median(runs[f"BM_RawForward/batch:{batch}/frozen:1"])
        lib = statistics.median(runs[f"BM_EmberRun/batch:{batch}/frozen:1"])
        nat = statistics.median(runs[f"BM_EmberNative/batch:{batch}/frozen:1"])
        aoti = statistics.median(runs[f"BM_AotiRun/batch:{batch}/frozen:1"])
        q8 = statistics.median(runs[f"BM_Int8Run/batch:{batch}/frozen:1"])
        ort = onnx_runtime_us(wide, batch, args.repetitions)
        ok = goal is None or nat / raw <= goal
        verdicts.append(ok)
        ort_text = f"{ort:>25.2f} {ort / raw:>8.3f}" if ort is not None else f"{'(not installed)':>25} {'':>8}"
        print(f"{batch:>5} {raw:>15.2f} {lib:>18.2f} {nat:>16.2f} {nat / raw:>11.3f}"
              f" {aoti:>8.2f} {aoti / raw:>9.3f} {q8:>8.2f} {q8 / raw:>9.3f} {ort_text}"
              + (f"  <= {goal}x: {'met' if ok else 'MISSED'}" if goal is not None else ""))
    print(f"medians of {args.repetitions} repetitions (ember and LibTorch interleaved in one program)")
    return verdicts


if __name__ == "__main__":
    sys.exit(main())
