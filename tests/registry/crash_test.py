"""Kills `ember registry publish` and `ember registry gc` with SIGKILL at random moments,
EMBER_KILL_ITERATIONS times (default 200), and after every kill runs `ember registry
check`: every version must be complete or absent, no file reference may dangle, the
audit chain must be intact, and the next publish must succeed.

    EMBER_BIN=build/apps/ember/ember python tests/registry/crash_test.py
"""

import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

EMBER = os.environ["EMBER_BIN"]
ITERATIONS = int(os.environ.get("EMBER_KILL_ITERATIONS", "200"))
PAYLOAD = int(os.environ.get("EMBER_KILL_PAYLOAD_BYTES", str(32 << 20)))

SCHEMA = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
          "required": ["a", "b"], "additionalProperties": False}
CHAIN = {"format": "ember-chain", "version": 1, "stages": [
    {"name": "linear", "type": "linear", "path": "linear.json"},
    {"name": "default", "type": "default", "outputs": {"output": 0}}]}


def make_bundle(path, i, rng):
    """A bundle whose payload differs every time, so publish has new blobs to store."""
    os.makedirs(path)
    files = {
        "schema.json": json.dumps(SCHEMA).encode(),
        "chain.json": json.dumps(CHAIN).encode(),
        "linear.json": json.dumps({"format": "ember-linear", "version": 1, "estimator": "LinearRegression",
                                   "coef": [[1.0, float(i)]], "intercept": [0.5]}).encode(),
        "payload.bin": rng.randbytes(PAYLOAD),
    }
    manifest = {"format": "ember-bundle", "format_version": 1, "name": "crash", "files": []}
    for name, data in files.items():
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)
        role = {"schema.json": "schema", "chain.json": "chain", "linear.json": "fallback"}.get(name, "extra")
        manifest["files"].append({"path": name, "role": role, "size": len(data),
                                  "sha256": hashlib.sha256(data).hexdigest()})
    with open(os.path.join(path, "manifest.json"), "w") as f:
        json.dump(manifest, f)


def ember(*args, check=True):
    r = subprocess.run([EMBER, *args], capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"ember {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def check_consistent(reg, where):
    r = ember("registry", "check", "--registry", reg, "--json", check=False)
    try:
        report = json.loads(r.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"{where}: check printed no JSON ({r.returncode}): {r.stdout} {r.stderr}")
    if r.returncode != 0 or not report["ok"]:
        raise AssertionError(f"{where}: registry inconsistent: {report['problems']}")
    return report


def timed(args):
    start = time.perf_counter()
    ember(*args)
    return time.perf_counter() - start


def kill_during(args, delay):
    """Kills the command after `delay` seconds. (True, None) when the kill hit it running;
    (False, seconds it took) when it had finished first."""
    start = time.perf_counter()
    p = subprocess.Popen([EMBER, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=delay)
        return False, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait()
    if p.returncode == -signal.SIGKILL:
        return True, None
    return False, time.perf_counter() - start


def main():
    rng = random.Random(int(os.environ.get("EMBER_KILL_SEED", "12345")))
    root = tempfile.mkdtemp(prefix="ember-crash-", dir=os.environ.get("EMBER_KILL_DIR"))
    reg = os.path.join(root, "reg")
    try:
        ember("registry", "init", reg)
        # Calibrate: how long an unkilled publish and gc take here.
        pub_times, bundle_no = [], 0
        for _ in range(3):
            b = os.path.join(root, f"b{bundle_no}")
            make_bundle(b, bundle_no, rng)
            bundle_no += 1
            pub_times.append(timed(["registry", "publish", "--registry", reg, "--actor", "crash", b]))
            shutil.rmtree(b)
        ember("registry", "alias", "--registry", reg, "crash@production", "1", "--actor", "crash")
        t_pub = statistics.median(pub_times)
        t_gc = timed(["registry", "gc", "--registry", reg, "--actor", "crash"])
        # The tool's start-up (loading the libraries) is no part of the work: kills land
        # between the end of start-up and a little after the work would end.
        t_start = statistics.median(timed(["--version"]) for _ in range(3))
        interrupted = previous_leftovers = 0
        killed = finished = gc_runs = 0
        # The machine may be faster (or slower) than while calibrating (other work ran
        # beside it): a command that finished before its kill moves the window to it.
        speed = 1.0
        last_version = 3
        for i in range(ITERATIONS):
            if i % 5 == 4:
                # Delete the oldest version no alias holds, then kill a gc that frees its files.
                versions = json.loads(ember("registry", "list", "--registry", reg, "--json").stdout)
                free = [v for v in versions if not v["aliases"]]
                if len(free) > 2:
                    ember("registry", "delete", "--registry", reg, "--actor", "crash",
                          f"crash/{free[0]['version']}")
                gc_runs += 1
                longest = max(t_gc, t_start) * 1.1 * speed
                hit, took = kill_during(["registry", "gc", "--registry", reg, "--actor", "crash"],
                                        rng.uniform(t_start * 0.9 * speed, longest))
            else:
                b = os.path.join(root, f"b{bundle_no}")
                make_bundle(b, bundle_no, rng)
                bundle_no += 1
                longest = max(t_pub, t_start) * 1.1 * speed
                hit, took = kill_during(["registry", "publish", "--registry", reg, "--actor", "crash", b],
                                        rng.uniform(t_start * 0.9 * speed, longest))
                shutil.rmtree(b)
            if took is not None:
                speed *= 0.7 + 0.3 * min(1.0, took / longest)
            else:
                speed = min(1.0, speed * 1.02)
            killed += hit
            finished += not hit
            leftovers = check_consistent(reg, f"after kill {i + 1}")["leftover_temporary_files"]
            interrupted += leftovers > previous_leftovers
            previous_leftovers = leftovers
            if i % 10 == 9 or i == ITERATIONS - 1:
                b = os.path.join(root, f"b{bundle_no}")
                make_bundle(b, bundle_no, rng)
                bundle_no += 1
                out = ember("registry", "publish", "--registry", reg, "--actor", "crash", b).stdout
                version = int(out.strip().splitlines()[-1])
                assert version > last_version, f"publish after kill {i + 1} gave {version}, not above {last_version}"
                last_version = version
                shutil.rmtree(b)
        report = check_consistent(reg, "at the end")
        ember("registry", "check", "--registry", reg, "--deep")
        ember("registry", "audit", "--registry", reg, "--verify")
        for v in json.loads(ember("registry", "list", "--registry", reg, "--json", "--all").stdout):
            ember("registry", "verify", "--registry", reg, f"crash/{v['version']}")
        print(f"crash test: {ITERATIONS} kills ({ITERATIONS - gc_runs} publish, {gc_runs} gc): {killed} killed "
              f"mid-run, {finished} had finished, {interrupted} left a half-written file behind; start-up takes "
              f"{t_start * 1000:.0f} ms, publish {t_pub * 1000:.0f} ms, gc {t_gc * 1000:.0f} ms; "
              f"{report['versions']} versions, {report['audit_entries']} audit entries, consistent after every kill; "
              f"kill window scaled x{speed:.2f} at the end")
        assert killed >= ITERATIONS // 2, f"only {killed} of {ITERATIONS} kills hit a running process"
    finally:
        for dirpath, _, names in os.walk(root):
            for n in names:
                try:
                    os.chmod(os.path.join(dirpath, n), 0o644)
                except OSError:
                    pass
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
