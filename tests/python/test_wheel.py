"""A wheel built by `pip wheel` installs into a fresh venv that has the same torch, and
serves a model there (with LD_LIBRARY_PATH unset)."""

import glob
import os
import subprocess
import sys

import pytest
import torch

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TORCH_WHEELS = sorted(glob.glob(f"/opt/wheels/torch-{torch.__version__.split('+')[0]}*.whl"))


def run(*cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=1200, **kw)
    assert r.returncode == 0, (cmd, r.stdout[-3000:], r.stderr[-3000:])
    return r


@pytest.mark.skipif(not TORCH_WHEELS, reason="the machine's torch wheel (/opt/wheels) is needed for a fresh venv "
                                             "without downloading torch")
def test_a_wheel_installs_into_a_fresh_venv_with_the_same_torch(tmp_path, linear):
    env = dict(os.environ, CCACHE_BASEDIR=ROOT, CCACHE_NOHASHDIR="true", CMAKE_BUILD_PARALLEL_LEVEL="2")
    env.setdefault("CCACHE_DIR", os.path.expanduser("~/.cache/ember-ccache"))
    env["CMAKE_CXX_COMPILER_LAUNCHER"] = "ccache"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-build-isolation", "--no-deps", ROOT,
        "-w", tmp_path / "dist", env=env)
    wheels = glob.glob(str(tmp_path / "dist" / "ember-*.whl"))
    assert len(wheels) == 1
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    py = venv / "bin" / "python"
    constraints = os.path.join(ROOT, "scripts", "constraints.txt")
    # torch from the machine's file (its small dependencies and numpy from the index; the
    # constraints pin torch, so pip never looks for another one), then the wheel.
    run(py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--constraint", constraints,
        TORCH_WHEELS[0])
    run(py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--constraint", constraints, wheels[0])
    clean = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "PYTHONPATH")}
    out = run(py, "-c", f"import ember, torch\n"
                        f"m = ember.Model.load({str(linear)!r})\n"
                        f"print(ember.__file__, torch.__version__, m.predict({{'a': 1, 'b': 1}}).value())",
              env=clean, cwd=tmp_path).stdout.split()
    assert out[0].startswith(str(venv)) and out[1] == torch.__version__ and float(out[2]) == pytest.approx(3.5)
