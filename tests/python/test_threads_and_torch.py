"""The GIL is released while ember works: predictions on several Python threads run at
the same time (their calls overlap), answers stay right under concurrency, and torch may
be imported before or after ember in one process."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch

import ember
from conftest import customers


class Slow(torch.nn.Module):
    """A model that works for a while in C++ (a loop of matrix products)."""

    def forward(self, x):
        y = x
        w = torch.ones(x.shape[1], x.shape[1]) / x.shape[1]
        for _ in range(4000):
            y = torch.tanh(y @ w)
        return y.sum(dim=1, keepdim=True)


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    path = tmp_path_factory.mktemp("slow") / "bundle"
    schema = {"type": "object", "properties": {f"x{i}": {"type": "number"} for i in range(8)},
              "required": [f"x{i}" for i in range(8)], "additionalProperties": False}
    ember.export_bundle(path, name="slow", schema=schema, model=torch.jit.script(Slow()))
    return ember.Model.load(path)


def test_predict_releases_the_gil_so_calls_on_threads_overlap(slow):
    record = {f"x{i}": 0.1 * i for i in range(8)}
    spans = []
    lock = threading.Lock()

    def work():
        for _ in range(3):
            start = time.perf_counter()
            slow.predict(record)
            with lock:
                spans.append((start, time.perf_counter()))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    # The main thread keeps running Python while both predict.
    ticks = 0
    while any(t.is_alive() for t in threads):
        ticks += 1
        time.sleep(0)
    for t in threads:
        t.join()
    spans.sort()
    overlaps = sum(1 for a, b in zip(spans, spans[1:]) if b[0] < a[1])
    assert overlaps >= 1, spans
    assert ticks > 10


def test_answers_stay_right_on_many_threads(mlp):
    model = ember.Model.load(mlp["path"])
    frame = customers(400, 21)
    expected = mlp["expect"](frame)
    rows = frame.to_dict("records")
    errors = []

    def work(offset):
        for i in range(offset, len(rows), 4):
            got = model.predict(rows[i]).value()
            if abs(got - float(expected[i])) > 1e-5:
                errors.append((i, got, expected[i]))
        b = model.predict_batch(frame.iloc[offset::4])
        if not np.allclose(b.outputs["output"].reshape(-1), expected[offset::4], atol=1e-5):
            errors.append(("batch", offset))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("order", ["torch first", "ember first"])
def test_torch_and_ember_import_in_either_order(mlp, order):
    imports = "import torch, ember" if order == "torch first" else "import ember, torch"
    code = f"""{imports}
m = ember.Model.load({str(mlp['path'])!r})
p = m.predict({{"age": 40.0, "income": 30000.0, "tenure": 3.0, "visits": 2.0, "plan": "pro"}})
x = torch.ones(2, 2) @ torch.ones(2, 2)
print(p.served_by, round(p.value(), 6), float(x.sum()))
"""
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    served, value, total = r.stdout.split()
    assert served == "primary" and 0 < float(value) < 1 and float(total) == 8.0


@pytest.mark.parametrize("spin", ["0", "1000", "garbage", ""])
def test_threads_answer_right_whatever_the_gil_spin(mlp, spin):
    """EMBER_GIL_SPIN_US bounds the spin before taking the GIL back (0: none); a value that
    is not a number means none. Answers on threads are the same either way."""
    code = f"""import threading, ember
m = ember.Model.load({str(mlp['path'])!r})
rec = {{"age": 40.0, "income": 30000.0, "tenure": 3.0, "visits": 2.0, "plan": "pro"}}
want = m.predict(rec).value()
bad = []
def work():
    for _ in range(300):
        if m.predict(rec).value() != want:
            bad.append(1)
threads = [threading.Thread(target=work) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print(len(bad))
"""
    env = dict(os.environ, EMBER_GIL_SPIN_US=spin)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"
