"""The package's type stubs: mypy passes on the examples, and catches a misuse."""

import os
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def mypy(tmp_path, *paths):
    return subprocess.run([sys.executable, "-m", "mypy", "--ignore-missing-imports", "--cache-dir",
                           str(tmp_path / "cache"), *map(str, paths)], capture_output=True, text=True, timeout=600)


def test_mypy_passes_on_the_examples_and_catches_a_misuse(tmp_path):
    ok = mypy(tmp_path, os.path.join(ROOT, "examples", "python"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.py"
    bad.write_text("import ember\n"
                   "m = ember.Model.load('m')\n"
                   "p: str = m.predict({'a': 1}).value()\n"
                   "m.predict_batch([], threads='two')\n")
    wrong = mypy(tmp_path, bad)
    assert wrong.returncode == 1
    assert 'Incompatible types in assignment (expression has type "float"' in wrong.stdout
    assert 'Argument "threads"' in wrong.stdout
