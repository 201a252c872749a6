"""The embedding examples, run as a user would: the service (a registry alias followed
while it serves), the SDL2 game (headless) and the Qt 6 form (offscreen). The binaries
come from EMBER_EXAMPLES (the build's examples/ folder); a test whose example was not
built (no SDL2 or Qt 6 on the machine) or whose model needs LibTorch in a build without
it says why it is skipped."""

import json
import os
import queue
import re
import shutil
import struct
import subprocess
import sys
import threading
import time

import pytest

EMBER = os.environ.get("EMBER_BIN", "ember")
EXAMPLES = os.environ.get("EMBER_EXAMPLES", "")
MODELS = os.environ.get("EMBER_TEST_MODELS", "")
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def screenshot(tmp_path, name):
    """Where a screenshot goes: EMBER_SCREENSHOT_DIR (kept for a person to look at) or tmp."""
    folder = os.environ.get("EMBER_SCREENSHOT_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, name)
    return str(tmp_path / name)


def example(*parts):
    path = os.path.join(EXAMPLES, *parts)
    if not os.path.isfile(path):
        pytest.skip(f"{path} was not built")
    return path


def ember(*args):
    r = subprocess.run([EMBER, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"ember {' '.join(args)}: {r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def agent_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("agent") / "model"
    subprocess.run([sys.executable, os.path.join(ROOT, "examples", "game", "make_agent_model.py"), str(out)],
                   check=True, timeout=300)
    return out


class Lines:
    """A child's standard output, read line by line on a thread, with a timeout."""

    def __init__(self, proc):
        self.q = queue.Queue()
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.q.put(line.rstrip("\n"))
        self.q.put(None)

    def until(self, pattern, timeout=30):
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            if re.search(pattern, line):
                return line, seen
        raise AssertionError(f"no line matching {pattern!r} in {seen}")


def test_service_follows_the_alias_and_prints_metrics(agent_model, tmp_path):
    service = example("service")
    reg = str(tmp_path / "registry")
    ember("registry", "init", reg)
    # Version 2 differs (the fallback's intercept), so it is a new version.
    second = tmp_path / "second"
    shutil.copytree(agent_model, second)
    linear = json.loads((second / "linear.json").read_text())
    linear["intercept"] = [0.25]
    (second / "linear.json").write_text(json.dumps(linear))
    for i, model in enumerate((agent_model, second), 1):
        ember("bundle", "create", str(model), "--name", "agent", "--out", str(tmp_path / f"bundle{i}"))
        assert ember("registry", "publish", "--registry", reg, str(tmp_path / f"bundle{i}")).split()[-1] == str(i)
    ember("registry", "alias", "--registry", reg, "agent@production", "1")

    proc = subprocess.Popen([service, reg, "agent@production", "--watch-ms", "50"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = Lines(proc)
        out.until(r"^event: agent/1 ready")
        record = json.dumps({"dx": 30, "dy": -40, "energy": 0.6})
        proc.stdin.write(record + "\n" + '{"dx": "near", "dy": 0, "energy": 2}\n')
        proc.stdin.flush()
        line, _ = out.until(r"^agent/1 ")
        value, stage = line.split()[1:]
        assert 0 < float(value) < 1 and stage in ("primary", "linear")
        line, _ = out.until(r"^error: ")
        assert "/dx" in line and "/energy" in line

        # The alias moves: the service loads version 2 and swaps it in while it serves.
        ember("registry", "alias", "--registry", reg, "agent@production", "2", "--reason", "test")
        out.until(r"^event: agent/2 ready")
        proc.stdin.write(record + "\nmetrics\n")
        proc.stdin.flush()
        out.until(r"^agent/2 ")
        line, seen = out.until(r'^ember_requests_total\{model="agent",version="2"')
        assert line.endswith(" 1")
        assert any(re.match(r'^ember_requests_total\{model="agent",version="1".* 2$', s) for s in seen), seen
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        proc.kill()


def test_service_refuses_a_missing_registry_with_a_clear_error(tmp_path):
    service = example("service")
    r = subprocess.run([service, str(tmp_path / "none"), "agent@production"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "holds no registry" in r.stderr
    r = subprocess.run([service, str(tmp_path), "agent@production", "--watch-ms", "-5"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "positive" in r.stderr


def test_game_runs_headless_and_reports_frame_times(agent_model, tmp_path):
    game = example("game", "game")
    shot = screenshot(tmp_path, "game.bmp")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    r = subprocess.run([game, str(agent_model), "--frames", "180", "--agents", "24", "--fps", "120",
                        "--screenshot", shot], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    rule = re.search(r"without ember: frame time p50 ([0-9.]+) us, p99 ([0-9.]+) us", r.stdout)
    asked = re.search(r"with ember: frame time p50 ([0-9.]+) us, p99 ([0-9.]+) us; \d+ caught; "
                      r"(\d+) asked, (\d+) answered, 0 failed; served by (primary|linear)=(\d+)$", r.stdout, re.M)
    assert rule and asked, r.stdout
    assert float(rule.group(2)) > 0 and float(asked.group(2)) > 0
    # Each agent asks again once answered: at most one question in flight per agent.
    assert 24 <= int(asked.group(3)) <= 180 * 24 and asked.group(3) == asked.group(4) == asked.group(6)
    # The last frame: a 640x400 32-bit BMP with the target (red) and agents (blue or yellow).
    data = open(shot, "rb").read()
    assert data[:2] == b"BM" and struct.unpack_from("<ii", data, 18) == (640, 400)
    pixels = data[struct.unpack_from("<I", data, 10)[0]:]
    colours = {pixels[i:i + 3] for i in range(0, len(pixels), 4)}
    assert bytes((60, 60, 240)) in colours  # BGR
    assert bytes((250, 140, 80)) in colours or bytes((40, 200, 250)) in colours


def test_game_refuses_bad_arguments(agent_model):
    game = example("game", "game")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    r = subprocess.run([game, str(agent_model), "--frames", "zero"], capture_output=True, text=True, env=env,
                       timeout=30)
    assert r.returncode == 2 and "--frames needs a positive number" in r.stderr
    r = subprocess.run([game, "/nonexistent"], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 1 and "game: " in r.stderr


def test_form_validates_as_the_user_types_and_shows_the_prediction(tmp_path):
    form = example("desktop", "form")
    churn = os.path.join(MODELS, "churn")
    if not os.path.isfile(os.path.join(churn, "model.pt")) or os.environ.get("EMBER_WITH_TORCH") in ("0", "OFF"):
        pytest.skip("the churn model needs LibTorch")
    shot = screenshot(tmp_path, "form.png")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([form, churn, "--selftest", shot], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = re.search(r"typed tenure '12x': field says '(.*)'; answer '(.*)'", r.stdout)
    assert bad and "integer" in bad.group(1) and "1 field(s) to fix, 3 to fill in" == bad.group(2), r.stdout
    record = re.search(r"^form: record (.*)$", r.stdout, re.M).group(1)
    answer = re.search(r"^form: answer 'Prediction ([0-9.]+), served by (\w+)'$", r.stdout, re.M)
    assert answer, r.stdout
    # The label shows what `ember predict` answers for the same record.
    (tmp_path / "record.jsonl").write_text(record + "\n")
    line = json.loads(ember("predict", "--model", churn, "--input", str(tmp_path / "record.jsonl")).splitlines()[0])
    assert answer.group(2) == line["served_by"]
    assert abs(float(answer.group(1)) - line["outputs"]["output"]) < 5e-5
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_form_refuses_a_model_it_cannot_load(tmp_path):
    form = example("desktop", "form")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    r = subprocess.run([form, str(tmp_path)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1 and "form: " in r.stderr and "schema.json" in r.stderr
