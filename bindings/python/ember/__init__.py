"""ember from Python.

With the extension built (`pip install --no-build-isolation .`): `ember.Model` loads a
model directory, a bundle or a registry reference and predicts for dicts, JSON text,
pandas rows and frames and dicts of numpy columns, with outputs as numpy arrays that
share ember's memory; `ember.Registry` is the model registry; errors are the classes of
`ember.errors`; `ember.Deployment` serves with hot-swap and batching;
`ember.RolloutController` runs the registry's rollouts; `ember.Metrics`,
`ember.Monitor`, `ember.compare` and `ember.render_report` monitor models.

Pure Python, always there: `ember.export_bundle` writes a trained model as a bundle;
`ember.sklearn` exports fitted scikit-learn preprocessing to pipeline.json;
`ember.reference` computes the reference statistics drift is measured against."""

from __future__ import annotations

import os as _os

__version__ = "0.1.0"

from ember.bundle import BundleError, export_bundle  # noqa: E402
from ember.errors import (  # noqa: E402
    Aborted, AlreadyExists, Cancelled, DataLoss, DeadlineExceeded, Error, FailedPrecondition, Internal,
    InvalidArgument, NotFound, OutOfRange, PermissionDenied, ResourceExhausted, Unavailable, Unimplemented,
    Unknown)

try:
    from ember._ember import (  # noqa: E402
        BatchPrediction, ColumnDrift, Deployment, DriftResult, Metrics, Model, Monitor, Prediction, ReferenceStats,
        Registry, RolloutController, Schema, Table, _Watchers, compare, load_reference, parse_reference, read_table,
        render_report)
except ImportError as _missing:  # the pure-Python part alone (a source tree without the build)
    _extension_error: ImportError | None = _missing
else:
    _extension_error = None

    def _load(path_or_ref, registry=None, *, device: str = "auto", verify: bool = True, name: str = "",
              metrics: Metrics | None = None, monitor: Monitor | None = None):
        """A model directory or bundle (verified first unless verify=False), or with
        `registry` (a Registry or its directory) a reference such as 'churn@production'.
        `metrics` records its requests (labels: the registry's name and version, else
        `name` or the directory's name); `monitor` watches them."""
        watchers = _Watchers(metrics, monitor)
        if registry is not None:
            if not isinstance(registry, Registry):
                registry = Registry.open(_os.fspath(registry))
            return registry.load_model(str(path_or_ref), device=device, watchers=watchers)
        return Model._load_dir(_os.fspath(path_or_ref), device, verify, name, watchers)

    def _monitor(schema, reference=None, *, model: str = "", window_rows: int = 1000, window_time_ms: int = 0,
                 drift_share: float = 0.5, bonferroni: bool = False, min_confidence: float | None = None,
                 max_fallback_rate: float | None = None, max_latency_p95_ms: float | None = None,
                 min_accuracy: float | None = None, min_auc: float | None = None, max_mae: float | None = None,
                 min_outcomes: int = 100, outcomes: bool = False, outcome_ttl_s: int = 3600, log_path: str = "",
                 sample_rate: float = 0.01, registry=None, on_alert=None, retrain_after_s: int = 0,
                 retrain_command: str = ""):
        """A Monitor for a model's requests: `schema` is a Schema or a Model; `reference` a
        ReferenceStats or the path of a reference.json (drift needs one). Pass it to
        Model.load(monitor=...) or Deployment.create(monitor=...). on_alert(dict) is called
        on the thread that evaluates a window."""
        if isinstance(schema, Model):
            schema = schema.schema
        if reference is not None and not isinstance(reference, ReferenceStats):
            reference = load_reference(_os.fspath(reference))
        if registry is not None and not isinstance(registry, Registry):
            registry = Registry.open(_os.fspath(registry))
        return Monitor._create(schema, model, reference, window_rows, window_time_ms, drift_share, bonferroni,
                               min_confidence, max_fallback_rate, max_latency_p95_ms, min_accuracy, min_auc, max_mae,
                               min_outcomes, outcomes, outcome_ttl_s, _os.fspath(log_path), sample_rate, registry,
                               on_alert, retrain_after_s, retrain_command)

    def _to_frame(self, index=None):
        """The outputs as a pandas DataFrame with one row per input record (NaN for records
        that were invalid); an output with k columns becomes NAME_0 .. NAME_{k-1}."""
        import numpy as np
        import pandas as pd

        columns = {}
        rows = self.source_index
        for name, values in self.outputs.items():
            flat = values.reshape(len(values), -1)
            names = [name] if flat.shape[1] == 1 else [f"{name}_{k}" for k in range(flat.shape[1])]
            for k, column in enumerate(names):
                full = np.full(self.records, np.nan)
                full[rows] = flat[:, k]
                columns[column] = full
        return pd.DataFrame(columns, index=index if index is not None else range(self.records))

    def _deploy(source, registry=None, *, batching: bool = False, max_batch_rows: int = 32,
                max_queue_delay_us: int = 500, watch_interval_ms: int = 0, warmup=(), metrics: Metrics | None = None,
                monitor: Monitor | None = None):
        """Serves `source`: with `registry` (a Registry or its directory) a reference such as
        'churn@production' (followed when its alias moves: watch_interval_ms or reload()),
        else a model directory or bundle."""
        if registry is not None and not isinstance(registry, Registry):
            registry = Registry.open(_os.fspath(registry))
        records = [r if isinstance(r, str) else __import__("json").dumps(r) for r in warmup]
        return Deployment._create(registry, str(source) if registry is not None else _os.fspath(source), batching,
                                  max_batch_rows, max_queue_delay_us, watch_interval_ms, records, metrics, monitor)

    Model.load = staticmethod(_load)
    Deployment.create = staticmethod(_deploy)
    Monitor.create = staticmethod(_monitor)
    BatchPrediction.to_frame = _to_frame


_NATIVE = ("BatchPrediction", "ColumnDrift", "Deployment", "DriftResult", "Metrics", "Model", "Monitor", "Prediction",
           "ReferenceStats", "Registry", "RolloutController", "Schema", "Table", "compare", "load_reference",
           "parse_reference", "read_table", "render_report")


def __getattr__(name: str):
    if name in _NATIVE and _extension_error is not None:
        raise ImportError(f"ember.{name} needs ember's extension module, which this ember has not got "
                          f"(build it: pip install --no-build-isolation . in the project): {_extension_error}")
    raise AttributeError(f"module 'ember' has no attribute {name!r}")


__all__ = ["Aborted", "AlreadyExists", "BundleError", "Cancelled", "DataLoss", "DeadlineExceeded", "Error",
           "FailedPrecondition", "Internal", "InvalidArgument", "NotFound", "OutOfRange", "PermissionDenied",
           "ResourceExhausted", "Unavailable", "Unimplemented", "Unknown", "__version__", "export_bundle",
           "reference", "sklearn", *_NATIVE]
