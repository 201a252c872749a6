"""Exporting a trained model as an ember bundle.

A bundle is a directory that ember's C++ `Model::load` and the registry read: the
request schema, the fitted preprocessing, the TorchScript model, an optional fallback
chain, and `manifest.json`, which lists every file with its role, size and SHA-256 and
records where the model came from (training data, code, hyperparameters, package
versions, parent version, evaluation metrics).

    import ember
    ember.export_bundle("bundles/churn", name="churn", schema=Customer,
                        pipeline=preprocess, model=net, example_input=x[:1],
                        data=["data/train.csv"], metrics={"auc": 0.91})

Lineage that is not given is collected: the git commit, repository and dirty flag of
the working directory, and the versions of Python, torch, scikit-learn, numpy and
pandas. Files named in `data` are hashed (SHA-256) and their rows counted (CSV and JSON
lines); a pandas DataFrame is hashed as its CSV text.
"""

import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

FORMAT = "ember-bundle"
FORMAT_VERSION = 1
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


class BundleError(ValueError):
    """The arguments cannot make a bundle (the message says which and why)."""


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _count_rows(path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".csv", ".tsv", ".jsonl", ".ndjson", ".txt"):
        return None
    with open(path, "rb") as f:
        lines = sum(1 for line in f if line.strip())
    return max(lines - 1, 0) if ext in (".csv", ".tsv") else lines


def _data_source(item):
    if isinstance(item, dict):
        if "uri" not in item:
            raise BundleError(f"a data source given as a dict needs 'uri': {item!r}")
        out = {"uri": str(item["uri"])}
        if item.get("sha256"):
            out["sha256"] = str(item["sha256"]).lower()
        if item.get("rows") is not None:
            out["rows"] = int(item["rows"])
        return out
    try:
        import pandas as pd
        if isinstance(item, pd.DataFrame):
            text = item.to_csv(index=False).encode("utf-8")
            return {"uri": "dataframe", "sha256": hashlib.sha256(text).hexdigest(), "rows": int(len(item))}
    except ImportError:  # pragma: no cover - pandas is optional
        pass
    path = os.fspath(item)
    if os.path.isfile(path):
        out = {"uri": os.path.abspath(path), "sha256": _sha256_file(path)}
        rows = _count_rows(path)
        if rows is not None:
            out["rows"] = rows
        return out
    return {"uri": path}  # a remote URI: recorded, not hashed


def _git(args, cwd):
    try:
        r = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def collect_code(cwd=None):
    """The git commit, repository (origin's URL) and dirty flag of `cwd` (default: the
    current directory); empty when it is not in a git work tree."""
    cwd = cwd or os.getcwd()
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return {"commit": "", "repository": "", "dirty": False}
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {"commit": commit, "repository": _git(["config", "--get", "remote.origin.url"], cwd) or "",
            "dirty": bool(status)}


def collect_environment():
    """Versions of Python and the packages a model depends on, and the platform."""
    env = {"python": platform.python_version(), "platform": platform.platform()}
    for module, key in (("torch", "torch"), ("sklearn", "scikit-learn"), ("numpy", "numpy"), ("pandas", "pandas"),
                        ("pydantic", "pydantic")):
        mod = sys.modules.get(module)
        if mod is None:
            try:
                mod = __import__(module)
            except ImportError:
                continue
        env[key] = str(getattr(mod, "__version__", "unknown"))
    return env


def _schema_dict(schema):
    if isinstance(schema, dict):
        return schema
    if hasattr(schema, "model_json_schema"):
        return schema.model_json_schema()
    if isinstance(schema, (str, os.PathLike)) and os.path.isfile(schema):
        with open(schema, encoding="utf-8") as f:
            return json.load(f)
    raise BundleError("schema: give a pydantic model class, a JSON Schema dict, or a path to schema.json")


def _write_model(model, example_input, path):
    import torch
    if isinstance(model, _Traced):
        with torch.no_grad():
            torch.jit.trace(model.module, model.example_input).save(path)
        return
    if isinstance(model, (str, os.PathLike)):
        shutil.copyfile(model, path)
        return
    if isinstance(model, torch.jit.ScriptModule):
        model.save(path)
        return
    if not isinstance(model, torch.nn.Module):
        raise BundleError(f"model: expected a torch.nn.Module, a scripted module or a path, got {type(model).__name__}")
    model = model.eval()
    if example_input is not None:
        with torch.no_grad():
            scripted = torch.jit.trace(model, example_input)
    else:
        try:
            scripted = torch.jit.script(model)
        except Exception as e:  # noqa: BLE001 - torch raises many kinds
            raise BundleError(f"model: torch.jit.script failed ({e}); pass example_input to trace it instead") from e
    scripted.save(path)


def _write_native(work, chain):
    """Lowers work/model.pt to net.json (and a chain that serves it, unless one is given)."""
    from ember import _ember
    from ember.errors import Error as EmberError
    pt = os.path.join(work, "model.pt")
    try:
        text = _ember.lower_to_native(pt)
    except EmberError as e:
        raise BundleError(f"format 'native': the model does not lower to ember's kernels: {e}") from e
    with open(os.path.join(work, "net.json"), "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.remove(pt)
    if chain is None:
        _write_one_stage_chain(work, "native", "net.json")


def _write_one_stage_chain(work, stage_type, path):
    """chain.json with one stage, "primary", of `stage_type` serving `path`."""
    with open(os.path.join(work, "chain.json"), "w", encoding="utf-8") as f:
        json.dump({"format": "ember-chain", "version": 1,
                   "stages": [{"name": "primary", "type": stage_type, "path": path}]}, f, indent=1)


def _require_module(model, what):
    """BundleError unless `model` is a torch.nn.Module that is not scripted."""
    import torch
    if not isinstance(model, torch.nn.Module) or isinstance(model, torch.jit.ScriptModule):
        raise BundleError(f"{what}: the model must be a torch.nn.Module (not scripted, not a path)")


def _write_aoti(work, model, example_input, chain):
    """Compiles `model` to work/model.pt2 (and a chain that serves it, unless one is
    given); returns what the manifest's environment records about it."""
    from ember.aoti import compile_package
    _require_module(model, "format 'aoti'")
    if example_input is None:
        raise BundleError("format 'aoti': give example_input (a [rows, columns] tensor of the model's input)")
    try:
        metadata = compile_package(model, example_input, os.path.join(work, "model.pt2"))
    except Exception as e:  # noqa: BLE001 - torch.export and Inductor raise many kinds
        raise BundleError(f"format 'aoti': compiling failed: {e}") from e
    if chain is None:
        _write_one_stage_chain(work, "aoti", "model.pt2")
    return {"aoti_cpu_isa": metadata.get("AOTI_CPU_ISA", ""), "aoti_compiler": metadata.get("ember.compiler", ""),
            "aoti_torch": metadata.get("ember.torch", "")}


def _quantize(model, spec, pipeline, reference, example_input):
    """Dynamic int8 quantization of `model`'s Linear layers, refused beyond the limits."""
    import numpy as np
    import torch
    _require_module(model, "quantize")
    if not isinstance(spec, dict) or set(spec) - {"inputs", "max_abs_difference", "max_changed_decisions", "threshold"}:
        raise BundleError("quantize: expected a dict with inputs, max_abs_difference, max_changed_decisions, threshold")
    inputs = spec.get("inputs")
    if inputs is None:
        if reference is None or pipeline is None:
            raise BundleError("quantize: give 'inputs', or a pipeline and reference data to compute them")
        inputs = pipeline.transform(reference)
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    if x.ndim != 2 or x.shape[0] == 0:
        raise BundleError(f"quantize: 'inputs' must be a non-empty matrix, got shape {tuple(x.shape)}")
    max_abs = float(spec.get("max_abs_difference", 0.01))
    max_changed = float(spec.get("max_changed_decisions", 0.0))
    threshold = float(spec.get("threshold", 0.5))
    model = model.eval()
    quantized = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    # Dynamic quantization scales each call's activations by that call's range, so a row's
    # answer depends on the batch it came in: the int8 model is compared with the float one
    # on the whole reference batch and on each row alone (as Model::predict serves it).
    def rows_of(y, n):  # the first output, as n rows of float64
        return (y[0] if isinstance(y, (tuple, list)) else y).reshape(n, -1).double()

    with torch.no_grad():
        want = rows_of(model(x), x.shape[0])
        batch = rows_of(quantized(x), x.shape[0])
        alone = torch.cat([rows_of(quantized(x[i:i + 1]), 1) for i in range(x.shape[0])])
    difference = 0.0
    changed = 0.0
    for got in (batch, alone):
        difference = max(difference, float((want - got).abs().max()))
        if want.shape[1] == 1:
            changed = max(changed, float(((want[:, 0] > threshold) != (got[:, 0] > threshold)).double().mean()))
        else:
            changed = max(changed, float((want.argmax(1) != got.argmax(1)).double().mean()))
    figures = {"quantization.max_abs_difference": difference, "quantization.changed_decisions": changed,
               "quantization.reference_rows": float(x.shape[0])}
    if difference > max_abs or changed > max_changed:
        raise BundleError(f"quantize: the int8 model differs from the float one on {x.shape[0]} reference rows: "
                          f"max abs difference {difference:.6g} (limit {max_abs:g}), changed decisions "
                          f"{changed:.4%} (limit {max_changed:.4%}); the bundle was not written")
    if example_input is None:
        example_input = x[:1]
    return _Traced(quantized, example_input), figures


class _Traced:
    """A quantized module and the input to trace it with (quantized modules do not script)."""

    def __init__(self, module, example_input):
        self.module, self.example_input = module, example_input


def _model_outputs(model, pipeline, frame):
    """The model's first output on pipeline.transform(frame), as a 2-D numpy array."""
    import numpy as np
    import torch
    if isinstance(model, _Traced):
        model = model.module
    x = np.asarray(pipeline.transform(frame), dtype=np.float32)
    with torch.no_grad():
        y = model.eval()(torch.from_numpy(x)) if hasattr(model, "eval") else model(torch.from_numpy(x))
    if isinstance(y, (tuple, list)):
        y = y[0]
    elif isinstance(y, dict):
        y = y.get("output", next(iter(y.values())))
    y = y.detach().cpu().numpy().astype(np.float64)
    return y.reshape(len(x), -1)


def _role(rel):
    base = os.path.basename(rel)
    fixed = {"schema.json": "schema", "pipeline.json": "pipeline", "model.pt": "model", "net.json": "model",
             "model.pt2": "model", "chain.json": "chain"}
    if rel in fixed:
        return fixed[rel]
    if base.startswith("reference"):
        return "reference"
    if rel.endswith((".pt", ".ptl")) or "linear" in base:
        return "fallback"
    return "extra"


def export_bundle(path, *, name, schema, model=None, pipeline=None, example_input=None, chain=None,
                  fallbacks=None, metrics=None, description="", data=None, hyperparameters=None,
                  parent_version="", code=None, environment=None, string_columns=None, extra_files=None,
                  reference=None, reference_outputs=None, overwrite=False, format="torchscript", quantize=None):
    """Writes a bundle directory at `path` and returns its manifest (a dict).

    name            the model's name (letters, digits, '.', '_', '-')
    schema          a pydantic model class, a JSON Schema dict, or a schema.json path
    model           a torch.nn.Module (scripted, or traced from `example_input`), a
                    scripted module, or a path to a TorchScript file
    pipeline        a fitted scikit-learn ColumnTransformer or Pipeline (see ember.sklearn)
    chain           the fallback chain as a dict (chain.json)
    fallbacks       {file name: fitted linear scikit-learn model or path}, e.g.
                    {"linear.json": logistic_regression}, which `chain` refers to
    metrics         {name: number}, evaluation metrics
    data            training data: file paths (hashed, rows counted), URIs, DataFrames or
                    {"uri", "sha256", "rows"} dicts
    hyperparameters a JSON-serialisable dict
    code            {"commit", "repository", "dirty"}; collected from git when None
    environment     {package: version}; merged over the collected versions
    extra_files     {name in the bundle: local path} copied as they are
    reference       training data (a DataFrame) whose statistics go into reference.json,
                    for drift monitoring (see ember.reference)
    reference_outputs  {output name: values} of the model on `reference`; when None and
                    both `pipeline` and a torch `model` are given, the model is run on
                    pipeline.transform(reference) and its "output" recorded
    overwrite       replace an existing bundle at `path`
    format          "torchscript" (model.pt); "native": the network lowered to ember's
                    own kernels (net.json, served by a "native" chain stage, also without
                    LibTorch; BundleError, saying why, when the model does not lower); or
                    "aoti": an AOTInductor package compiled for this CPU and torch
                    (model.pt2, an "aoti" stage; needs a torch.nn.Module, example_input
                    and a C++ compiler); the manifest's environment records the format,
                    and for "aoti" the CPU features and compiler
    quantize        dynamic int8 quantization of the model's Linear layers, checked on
                    reference inputs: {"inputs": the model's inputs (array or tensor; by
                    default pipeline.transform(reference)), "max_abs_difference": 0.01,
                    "max_changed_decisions": 0.0 (a share), "threshold": 0.5 (a decision is
                    output > threshold, or the argmax of several columns)}. The bundle is
                    not written when the quantized outputs differ beyond either limit; the
                    figures go into the manifest's metrics

    The bundle is built in a temporary directory beside `path` and renamed into place:
    a failure leaves nothing behind.
    """
    if format not in ("torchscript", "native", "aoti"):
        raise BundleError(f"format {format!r}: expected 'torchscript', 'native' or 'aoti'")
    if quantize is not None and format != "torchscript":
        raise BundleError(f"quantize: the {format} format runs float32 networks; export the quantized model as "
                          "torchscript")
    if not isinstance(name, str) or not name or len(name) > 128 or not set(name) <= _NAME_CHARS or not name[0].isalnum():
        raise BundleError(f"name {name!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit")
    path = os.fspath(path)
    if os.path.exists(path):
        if not overwrite and (not os.path.isdir(path) or os.listdir(path)):
            raise BundleError(f"{path} exists and is not empty (pass overwrite=True to replace it)")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=".ember-bundle-", dir=parent)
    try:
        with open(os.path.join(work, "schema.json"), "w", encoding="utf-8") as f:
            json.dump(_schema_dict(schema), f, indent=1, ensure_ascii=False)
        if pipeline is not None:
            from ember.sklearn import export_pipeline
            export_pipeline(pipeline, os.path.join(work, "pipeline.json"), string_columns=string_columns)
        export_metrics = {}
        export_environment = {"model_format": format}
        if model is not None and quantize is not None:
            model, export_metrics = _quantize(model, quantize, pipeline, reference, example_input)
            export_environment["quantization"] = "dynamic int8, Linear layers (torch.ao.quantization.quantize_dynamic)"
        if model is not None and format == "aoti":
            export_environment.update(_write_aoti(work, model, example_input, chain))
        elif model is not None:
            _write_model(model, example_input, os.path.join(work, "model.pt"))
        if model is not None and format == "native":
            _write_native(work, chain)
        for fname, fb in (fallbacks or {}).items():
            target = os.path.join(work, fname)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if isinstance(fb, (str, os.PathLike)):
                shutil.copyfile(fb, target)
            else:
                from ember.sklearn import export_linear
                export_linear(fb, target)
        if chain is not None:
            with open(os.path.join(work, "chain.json"), "w", encoding="utf-8") as f:
                json.dump(chain, f, indent=1)
        if reference is not None:
            from ember.reference import describe
            outputs = reference_outputs
            if outputs is None and pipeline is not None and model is not None and not isinstance(model, (str, os.PathLike)):
                outputs = {"output": _model_outputs(model, pipeline, reference)}
            with open(os.path.join(work, "reference.json"), "w", encoding="utf-8") as f:
                json.dump(describe(reference, schema, outputs), f, allow_nan=False)
        for rel, src in (extra_files or {}).items():
            target = os.path.join(work, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(src, target)

        files = []
        for root, _, names in os.walk(work):
            for n in sorted(names):
                full = os.path.join(root, n)
                rel = os.path.relpath(full, work).replace(os.sep, "/")
                if rel == "manifest.json":
                    continue
                files.append({"path": rel, "role": _role(rel), "size": os.path.getsize(full),
                              "sha256": _sha256_file(full)})
        files.sort(key=lambda f: f["path"])
        env = collect_environment()
        env.update(export_environment)
        env.update({str(k): str(v) for k, v in (environment or {}).items()})
        from ember import __version__
        env.setdefault("ember", __version__)
        metrics = {**export_metrics, **(metrics or {})}
        for k, v in metrics.items():
            if not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
                raise BundleError(f"metric {k!r} must be a finite number, got {v!r}")
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name,
            "description": description,
            "created_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ember_version": __version__,
            "files": files,
            "lineage": {
                "data": [_data_source(d) for d in (data or [])],
                "code": code if code is not None else collect_code(),
                "hyperparameters": hyperparameters or {},
                "environment": env,
                "parent_version": str(parent_version or ""),
                "metrics": {str(k): float(v) for k, v in (metrics or {}).items()},
            },
            "signatures": [],
        }
        with open(os.path.join(work, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, ensure_ascii=False, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(path):
            shutil.rmtree(path)
        os.rename(work, path)
        work = None
        return manifest
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
