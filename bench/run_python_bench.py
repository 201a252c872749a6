"""The Python package against what a data scientist would use, in one run: one record
from a dict, and batches of 1,000, through

  - ember from Python (ember.Model: the package installed by scripts/build-python),
  - the Python stack: pydantic model_validate, scikit-learn ColumnTransformer.transform,
    the TorchScript module's forward (torch.jit),
  - ONNX Runtime's Python API: the ColumnTransformer converted by skl2onnx and the MLP
    exported to ONNX, both run by onnxruntime (no validation),
  - and ember's C++ predict_batch of the same 1,000 records (bench_predict), the anchors
    of the batch goal: as columns (what a DataFrame is) and as JSON texts (what records
    are).

    python bench/run_python_bench.py [--build build] [--repetitions 9]

The model is bench/run_predict_bench.py's: 30 features (25 numbers, 5 of them optional,
5 categoricals) -> 70 columns -> MLP 70-64-64-1, one intra-op thread everywhere.
Goals: one record from a dict >= 100x faster than the Python stack and faster than ONNX
Runtime end to end; batches within 1.3x of ember's C++ throughput.
"""

import json
import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
import torch

import ember  # the installed package, before run_predict_bench puts the source tree on the path
import benchlib
import run_predict_bench as rp

warnings.simplefilter("ignore")


def timed(fn, n):
    """Microseconds per call of fn(k) for k in range(n)."""
    start = time.perf_counter()
    for k in range(n):
        fn(k)
    return (time.perf_counter() - start) / n * 1e6


def onnx_sessions(ct, module, frame, out_dir):
    import onnxruntime as ort
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = [(c, FloatTensorType([None, 1])) for c in rp.NUMERIC] + [(c, StringTensorType([None, 1]))
                                                                     for c in rp.CATEGORICAL]
    pre = convert_sklearn(ct, initial_types=types, target_opset=17)
    width = ct.transform(frame.head(1)).shape[1]
    mlp_path = os.path.join(out_dir, "mlp.onnx")
    torch.onnx.export(module, torch.zeros(1, width), mlp_path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}}, dynamo=False)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return (ort.InferenceSession(pre.SerializeToString(), options, providers=["CPUExecutionProvider"]),
            ort.InferenceSession(mlp_path, options, providers=["CPUExecutionProvider"]))


# Run in a process of its own: records per second of predict from one Python thread and
# from two, medians of the repetitions (interleaved), as JSON {"1": rate, "2": rate}.
THREADS = """
import json, statistics, sys, threading, time
import ember
data_dir, repetitions = sys.argv[1], int(sys.argv[2])
model = ember.Model.load(data_dir)
records = [line.strip() for line in open(data_dir + "/records.jsonl")][:200]

def on_threads(count, n=20000):
    def work(offset):
        predict = model.predict
        for k in range(offset, n, count):
            predict(records[k % len(records)])
    threads = [threading.Thread(target=work, args=(t,)) for t in range(count)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (time.perf_counter() - start)

on_threads(2, 2000)
rates = {1: [], 2: []}
for _ in range(repetitions):
    for count in (1, 2):
        rates[count].append(on_threads(count))
print(json.dumps({str(c): statistics.median(r) for c, r in rates.items()}))
"""


def main():
    args = benchlib.arguments(__doc__)
    if getattr(ember, "_extension_error", None) is not None:
        print("error: ember's extension is not installed: run scripts/build-python", file=sys.stderr)
        return 1

    torch.set_num_threads(1)
    data_dir = tempfile.mkdtemp(prefix="ember-python-bench-")
    Record, ct, module, records = rp.build(data_dir)
    # The traced MLP for ONNX: the scripted one exports the same graph.
    dicts = [json.loads(r) for r in records]
    columns = rp.NUMERIC + rp.CATEGORICAL
    frame = pd.DataFrame([{c: d.get(c) for c in columns} for d in dicts], columns=columns)
    batch_frame = pd.concat([frame] * 4, ignore_index=True).head(1000)
    batch_dicts = (dicts * 4)[:1000]
    batch_texts = (records * 4)[:1000]
    model = ember.Model.load(data_dir)
    pre_session, mlp_session = onnx_sessions(ct, module, frame, data_dir)

    def ember_dict(k):
        model.predict(dicts[k % len(dicts)])

    def ember_json(k):
        model.predict(records[k % len(records)])

    def python_stack(k):
        rec = Record.model_validate(dicts[k % len(dicts)])
        x = ct.transform(pd.DataFrame([rec.model_dump()], columns=columns)).astype(np.float32)
        with torch.no_grad():
            module(torch.from_numpy(x))

    def onnx_dict(k):
        d = dicts[k % len(dicts)]
        feeds = {c: np.array([[np.nan if d.get(c) is None else d[c]]], dtype=np.float32) for c in rp.NUMERIC}
        feeds.update({c: np.array([[d[c]]], dtype=object) for c in rp.CATEGORICAL})
        x = pre_session.run(None, feeds)[0]
        mlp_session.run(None, {"x": x.astype(np.float32)})

    def ember_batch_frame(_):
        model.predict_batch(batch_frame)

    def ember_batch_dicts(_):
        model.predict_batch(batch_dicts)

    def ember_batch_texts(_):
        model.predict_batch(batch_texts)

    def onnx_batch(_):
        feeds = {c: batch_frame[c].to_numpy(dtype=np.float32).reshape(-1, 1) for c in rp.NUMERIC}
        feeds.update({c: batch_frame[c].to_numpy(dtype=object).reshape(-1, 1) for c in rp.CATEGORICAL})
        mlp_session.run(None, {"x": pre_session.run(None, feeds)[0].astype(np.float32)})

    def python_batch(_):
        x = ct.transform(batch_frame).astype(np.float32)
        with torch.no_grad():
            module(torch.from_numpy(x))

    singles = {"ember, dict": (ember_dict, 3000), "ember, JSON text": (ember_json, 3000),
               "Python stack, dict": (python_stack, 200), "ONNX Runtime, dict": (onnx_dict, 1000)}
    batches = {"ember, DataFrame": ember_batch_frame, "ember, list of dicts": ember_batch_dicts,
               "ember, list of JSON texts": ember_batch_texts,
               "ONNX Runtime, DataFrame": onnx_batch, "scikit-learn + torch (no validation)": python_batch}
    for fn, n in singles.values():  # warm-up
        fn(0)
    for fn in batches.values():
        fn(0)
    results = {name: [] for name in list(singles) + list(batches)}
    for _ in range(args.repetitions):  # interleaved repetitions
        for name, (fn, n) in singles.items():
            results[name].append(timed(fn, n))
        for name, fn in batches.items():
            # One call untimed first: the benchmarks between leave the caches cold, and the
            # C++ anchor (Google Benchmark) is timed warm too.
            fn(0)
            results[name].append(timed(fn, 10) / 1000)  # per record
    med = {name: statistics.median(v) for name, v in results.items()}

    # Python threads: the same records predicted by one thread, then split over two, in a
    # fresh process each (nothing else of this script running beside them), with the
    # GIL spin on (the default) and off (EMBER_GIL_SPIN_US=0), interleaved.
    def scaling(spin):
        env = dict(os.environ, EMBER_GIL_SPIN_US=spin, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        out = subprocess.run([sys.executable, "-c", THREADS, data_dir, str(args.repetitions)], env=env,
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    import subprocess
    threads = {"20": [], "0": []}
    for _ in range(3):
        for spin in threads:
            threads[spin].append(scaling(spin))
    py_rates = {spin: (statistics.median(r["1"] for r in runs), statistics.median(r["2"] for r in runs))
                for spin, runs in threads.items()}

    binary = benchlib.program(args.build, "bench_predict")
    env = {"EMBER_BENCH_DATA": data_dir, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd_filter = "--benchmark_filter=BM_PredictBatch1000|BM_PredictEndToEnd/real_time/threads:[12]$"
    out = subprocess.run([binary, cmd_filter, f"--benchmark_repetitions={args.repetitions}", "--benchmark_format=json",
                          f"--benchmark_min_time={args.min_time}"], env=dict(os.environ, **env), check=True,
                         capture_output=True, text=True).stdout
    cpp, cpp_rate = {}, {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("run_type") == "iteration":
            cpp.setdefault(b["run_name"], []).append(benchlib.real_time_us(b))
            cpp_rate.setdefault(b["run_name"], []).append(b.get("items_per_second", 0))
    cpp_scaling = (statistics.median(cpp_rate["BM_PredictEndToEnd/real_time/threads:2"]) /
                   statistics.median(cpp_rate["BM_PredictEndToEnd/real_time/threads:1"]))
    cpp_batch = statistics.median(cpp["BM_PredictBatch1000"]) / 1000
    cpp_columns = statistics.median(cpp["BM_PredictBatch1000Columns"]) / 1000
    cpp_single = statistics.median(cpp["BM_PredictEndToEnd/real_time/threads:1"])

    met = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    print(f"one record (medians of {args.repetitions} interleaved repetitions, one thread), us per record:")
    for name in singles:
        print(f"  {name:40} {med[name]:>9.2f}")
    print(f"  {'ember C++ predict (JSON text)':40} {cpp_single:>9.2f}")
    e = med["ember, dict"]
    print(f"  Python stack / ember from a dict: {med['Python stack, dict'] / e:.0f}x: >= 100x "
          f"{met(med['Python stack, dict'] / e >= 100)}")
    print(f"  ONNX Runtime / ember from a dict: {med['ONNX Runtime, dict'] / e:.2f}x: > 1 "
          f"{met(med['ONNX Runtime, dict'] > e)}")
    print("batches of 1,000, us per record:")
    for name in batches:
        print(f"  {name:40} {med[name]:>9.3f}")
    print(f"  {'ember C++ predict_batch (columns)':40} {cpp_columns:>9.3f}")
    print(f"  {'ember C++ predict_batch (JSON texts)':40} {cpp_batch:>9.3f}")
    # Each input against C++ given the same kind of input: a frame is columns, records are records.
    for name, anchor, what in (("ember, DataFrame", cpp_columns, "C++ columns"),
                               ("ember, list of dicts", cpp_batch, "C++ JSON texts"),
                               ("ember, list of JSON texts", cpp_batch, "C++ JSON texts")):
        ratio = med[name] / anchor
        print(f"  {name} / {what}: {ratio:.2f}x: <= 1.3x {met(ratio <= 1.3)} "
              f"(/ C++ JSON texts {med[name] / cpp_batch:.2f}x)")
    for spin, (one, two) in py_rates.items():
        print(f"threads: predict (JSON text) 1 -> 2 Python threads, EMBER_GIL_SPIN_US={spin}: {two / one:.2f}x "
              f"({one:.0f} -> {two:.0f} records/s)")
    print(f"threads: C++ threads in the same run {cpp_scaling:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
