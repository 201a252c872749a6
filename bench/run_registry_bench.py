"""Runs bench_registry (ember) and times MLflow's model registry (SQLite backend, local
artifact store) on the same bundle, in one run, and prints medians and ratios.

    python bench/run_registry_bench.py [--build build] [--repetitions 5]

Operations: publish a version (MLflow: log the bundle's files as a run's artifacts and
create a model version from them), set an alias, resolve an alias to a loadable local
path (MLflow: get_model_version_by_alias + download_artifacts; ember: resolve, cached in
the process; hashing every file in an open registry; and first in a process, which
opens the database too). Also SHA-256 of 100 MB.
Goals: resolve >= 100x faster than MLflow; <= 50 us for a cached resolve; hashing >= 1 GB/s.
Needs MLflow: scripts/bootstrap --bench installs it.
"""

import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

import benchlib

OPS = 30


def make_bundle(root, ember_bin):
    """The same small bundle for both: schema, linear fallback, chain, 16 KB of weights."""
    model = os.path.join(root, "model")
    os.makedirs(model)
    with open(os.path.join(model, "schema.json"), "w") as f:
        f.write('{"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, '
                '"required": ["a", "b"]}')
    with open(os.path.join(model, "linear.json"), "w") as f:
        f.write('{"format":"ember-linear","version":1,"estimator":"LinearRegression","coef":[[1,2]],"intercept":[0.5]}')
    with open(os.path.join(model, "chain.json"), "w") as f:
        f.write('{"format": "ember-chain", "version": 1, "stages": [{"name": "linear", "type": "linear", '
                '"path": "linear.json"}]}')
    with open(os.path.join(model, "weights.bin"), "wb") as f:
        f.write(os.urandom(16384))
    bundle = os.path.join(root, "bundle")
    subprocess.run([ember_bin, "bundle", "create", model, "--name", "bench", "--out", bundle], check=True,
                   capture_output=True)
    return bundle


def time_mlflow(root, bundle, repetitions):
    warnings.filterwarnings("ignore")
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{root}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(uri, uri)
    exp = client.create_experiment("bench", artifact_location=f"file://{root}/mlflow-artifacts")
    client.create_registered_model("bench")

    def publish():
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.log_artifacts(bundle, "bundle")
        return client.create_model_version("bench", source=f"{run.info.artifact_uri}/bundle", run_id=run.info.run_id)

    def resolve():
        mv = client.get_model_version_by_alias("bench", "production")
        return mlflow.artifacts.download_artifacts(artifact_uri=f"models:/bench/{mv.version}",
                                                   dst_path=tempfile.mkdtemp(dir=root))

    publish(), publish()
    client.set_registered_model_alias("bench", "production", "1")
    resolve()
    out = {"publish": [], "alias": [], "resolve": []}
    for _ in range(repetitions):
        for name, fn in (("publish", publish),
                         ("alias", lambda: client.set_registered_model_alias("bench", "production", "2")),
                         ("resolve", resolve)):
            start = time.perf_counter()
            for _ in range(OPS):
                fn()
            out[name].append((time.perf_counter() - start) / OPS * 1e6)
    return {k: statistics.median(v) for k, v in out.items()}


def main():
    args = benchlib.arguments(__doc__)
    try:
        import mlflow  # noqa: F401
    except ImportError:
        print("error: MLflow is not installed; run scripts/bootstrap --bench", file=sys.stderr)
        sys.exit(1)
    binary = benchlib.program(args.build, "bench_registry")
    ember_bin = os.path.join(args.build, "apps", "ember", "ember")
    root = tempfile.mkdtemp(prefix="ember-registry-bench-")
    try:
        bundle = make_bundle(root, ember_bin)
        runs = benchlib.run(binary, {"EMBER_BENCH_BUNDLE": bundle}, args.repetitions, args.min_time)
        ember = {name: statistics.median(benchlib.real_time_us(r) for r in results) for name, results in runs.items()}
        sha = runs["BM_Sha256_100MB"]
        gbps = statistics.median(r["bytes_per_second"] for r in sha) / 1e9
        mlflow = time_mlflow(root, bundle, args.repetitions)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    rows = [
        ("publish a version", ember["BM_Publish"], mlflow["publish"]),
        ("set an alias", ember["BM_SetAlias"], mlflow["alias"]),
        ("resolve an alias, cached in the process", ember["BM_ResolveCached"], mlflow["resolve"]),
        ("resolve an alias, open registry, every file hashed", ember["BM_ResolveHashing"], mlflow["resolve"]),
        ("resolve an alias, first in a process (open + hash)", ember["BM_ResolveFirst"], mlflow["resolve"]),
    ]
    print(f"registry, medians of {args.repetitions} repetitions (MLflow: {OPS} operations per repetition)")
    print(f"{'operation':58} {'ember':>12} {'MLflow':>12} {'ratio':>8}")
    for name, e, m in rows:
        print(f"{name:58} {e:10.1f}us {m:10.1f}us {m / e:7.0f}x")
    print(f"opening the registry (SQLite connection, WAL): {ember['BM_Open']:.1f}us")
    print(f"SHA-256 of 100 MB: {gbps:.2f} GB/s ({sha[0].get('label', '')})")
    met = lambda key: "met" if mlflow["resolve"] / ember[key] >= 100 else "missed"  # noqa: E731
    print(f"goals: resolve >= 100x MLflow: {met('BM_ResolveCached')} (cached), {met('BM_ResolveHashing')} (hashing), "
          f"{met('BM_ResolveFirst')} (first in a process); "
          f"cached resolve <= 50 us: {'met' if ember['BM_ResolveCached'] <= 50 else 'missed'}; "
          f"hashing >= 1 GB/s: {'met' if gbps >= 1 else 'missed'}")


if __name__ == "__main__":
    main()
