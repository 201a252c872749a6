"""Export fitted scikit-learn estimators for ember: preprocessing to pipeline.json
(export_pipeline, export_spec) and linear fallback models to linear.json (export_linear).

    from ember.sklearn import export_pipeline
    export_pipeline(fitted_column_transformer, "pipeline.json")

Supported: a ColumnTransformer (remainder "drop" or "passthrough") whose transformers are
a supported step, a Pipeline of supported steps, "passthrough" or "drop"; or a Pipeline of
supported steps over all columns; or a Pipeline whose only step is such a
ColumnTransformer. The estimator must have been fitted on a pandas DataFrame, so that
columns have names (they must match the request schema's feature names).

Steps: SimpleImputer (mean, median, most_frequent, constant; no indicator),
StandardScaler, MinMaxScaler, MaxAbsScaler, RobustScaler, OneHotEncoder (handle_unknown
"error" or "ignore"; drop None, "first" or "if_binary"; no infrequent categories),
OrdinalEncoder (handle_unknown "error" or "use_encoded_value"; no infrequent
categories), KBinsDiscretizer (any strategy; encode "ordinal" or one-hot, written dense)
and FunctionTransformer of np.log1p, np.sqrt or np.clip with scalar bounds (use
feature_names_out="one-to-one" so that output names exist). Encoders must come last in a chain. Anything else raises
UnsupportedError naming the step and the reason: ember never exports something it
cannot reproduce exactly.
"""

import json
import math
import numbers

FORMAT = "ember-pipeline"
VERSION = 1


class UnsupportedError(ValueError):
    """The estimator uses a step or an option that ember cannot reproduce exactly."""


def _floats(values):
    out = []
    for v in values:
        f = float(v)
        if not math.isfinite(f):
            raise UnsupportedError(f"non-finite fitted value {v!r}")
        out.append(f)
    return out


def _category(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool,)):
        raise UnsupportedError("boolean categories are not supported")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    raise UnsupportedError(f"category {value!r} of type {type(value).__name__} is not supported")


def _step(name, est):
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import (FunctionTransformer, KBinsDiscretizer, MaxAbsScaler, MinMaxScaler,
                                       OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler)

    where = f"step '{name}' ({type(est).__name__})"
    if isinstance(est, SimpleImputer):
        if est.add_indicator:
            raise UnsupportedError(f"{where}: add_indicator=True is not supported")
        if not (est.missing_values is None or (isinstance(est.missing_values, float) and math.isnan(est.missing_values))):
            raise UnsupportedError(f"{where}: only NaN/None count as missing in ember")
        fill = []
        for v in est.statistics_:
            if isinstance(v, str):
                fill.append(v)
            else:
                f = float(v)
                if math.isnan(f):
                    raise UnsupportedError(f"{where}: a column was all missing at fit time (scikit-learn drops it)")
                fill.append(f)
        return {"type": "simple_imputer", "strategy": est.strategy, "fill": fill}
    if isinstance(est, StandardScaler):
        # scikit-learn fits mean_ even with with_mean=False, and does not use it.
        return {"type": "standard_scaler", "mean": _floats(est.mean_) if est.with_mean else None,
                "scale": _floats(est.scale_) if est.with_std else None}
    if isinstance(est, RobustScaler):
        return {"type": "robust_scaler", "center": _floats(est.center_) if est.with_centering else None,
                "scale": _floats(est.scale_) if est.with_scaling else None}
    if isinstance(est, MaxAbsScaler):
        return {"type": "max_abs_scaler", "scale": _floats(est.scale_)}
    if isinstance(est, MinMaxScaler):
        return {"type": "min_max_scaler", "scale": _floats(est.scale_), "min": _floats(est.min_),
                "feature_range": _floats(est.feature_range), "clip": bool(est.clip)}
    if isinstance(est, (OneHotEncoder, OrdinalEncoder)):
        if getattr(est, "min_frequency", None) is not None or getattr(est, "max_categories", None) is not None:
            raise UnsupportedError(f"{where}: infrequent categories (min_frequency, max_categories) are not supported")
        categories = [[_category(c) for c in cats] for cats in est.categories_]
        if isinstance(est, OneHotEncoder):
            if est.handle_unknown not in ("error", "ignore"):
                raise UnsupportedError(f"{where}: handle_unknown={est.handle_unknown!r} is not supported")
            drop = est.drop_idx_
            drop_idx = [None] * len(categories) if drop is None else [None if d is None else int(d) for d in drop]
            return {"type": "one_hot_encoder", "categories": categories, "handle_unknown": est.handle_unknown,
                    "drop_idx": drop_idx}
        if est.handle_unknown not in ("error", "use_encoded_value"):
            raise UnsupportedError(f"{where}: handle_unknown={est.handle_unknown!r} is not supported")
        unknown = est.unknown_value
        missing = est.encoded_missing_value
        return {"type": "ordinal_encoder", "categories": categories, "handle_unknown": est.handle_unknown,
                "unknown_value": None if unknown is None or (isinstance(unknown, float) and math.isnan(unknown)) else unknown,
                "encoded_missing_value": None if isinstance(missing, float) and math.isnan(missing) else missing}
    if isinstance(est, KBinsDiscretizer):
        if est.encode not in ("ordinal", "onehot", "onehot-dense"):
            raise UnsupportedError(f"{where}: encode={est.encode!r} is not supported")
        return {"type": "kbins_discretizer", "encode": est.encode,
                "bin_edges": [_floats(edges) for edges in est.bin_edges_]}
    if isinstance(est, FunctionTransformer):
        return _function(where, est)
    raise UnsupportedError(f"{where} is not supported by ember")


def _function(where, est):
    import numpy as np

    kw = dict(est.kw_args or {})
    if est.func is None:  # the identity: how a fitted ColumnTransformer stores "passthrough"
        return {"type": "passthrough"}
    if est.func is np.log1p or est.func is np.sqrt:
        if kw:
            raise UnsupportedError(f"{where}: {est.func.__name__} takes no kw_args")
        return {"type": "function", "name": est.func.__name__}
    if est.func is np.clip:
        lo = kw.pop("a_min", kw.pop("min", None))
        hi = kw.pop("a_max", kw.pop("max", None))
        if kw:
            raise UnsupportedError(f"{where}: np.clip with kw_args {sorted(kw)} is not supported")
        for bound in (lo, hi):
            if bound is not None and not isinstance(bound, numbers.Real):
                raise UnsupportedError(f"{where}: np.clip bounds must be numbers (one per column is not supported)")
        return {"type": "function", "name": "clip", "min": None if lo is None else float(lo),
                "max": None if hi is None else float(hi)}
    name = getattr(est.func, "__name__", repr(est.func))
    raise UnsupportedError(f"{where}: func={name} is not supported (ember knows np.log1p, np.sqrt, np.clip)")


def _chain(name, trans):
    from sklearn.pipeline import Pipeline

    if trans == "passthrough":
        return [{"type": "passthrough"}]
    if isinstance(trans, Pipeline):
        return [_step(f"{name}/{step_name}", est) for step_name, est in trans.steps if est != "passthrough"]
    return [_step(name, trans)]


def _column_names(name, cols, inputs):
    if isinstance(cols, (str, numbers.Integral)):
        cols = [cols]
    if isinstance(cols, slice) or callable(cols):
        raise UnsupportedError(f"transformer '{name}': give its columns as names or indices, not a slice or a callable")
    out = []
    for c in list(cols):
        if isinstance(c, (bool,)) or (hasattr(c, "dtype") and c.dtype == bool):
            raise UnsupportedError(f"transformer '{name}': boolean column masks are not supported")
        out.append(inputs[int(c)] if isinstance(c, numbers.Integral) else str(c))
    return out


def export_pipeline(fitted, path, string_columns=None):
    """Writes `fitted` (see the module docstring) to `path` as ember's pipeline.json and
    returns the document. `string_columns` names the input columns that hold strings;
    by default they are found from the categories the encoders learned."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    est = fitted
    if isinstance(est, Pipeline) and len(est.steps) == 1 and isinstance(est.steps[0][1], ColumnTransformer):
        est = est.steps[0][1]
    names_in = getattr(est, "feature_names_in_", None)
    if names_in is None:
        raise UnsupportedError("the estimator was not fitted on a DataFrame with column names")
    inputs = [str(c) for c in names_in]

    transformers = []
    remainder = "drop"
    if isinstance(est, ColumnTransformer):
        for name, trans, cols in est.transformers_:
            if name == "remainder":
                # The fitted form of remainder="passthrough" is an identity transformer:
                # read what the user asked for instead.
                if not isinstance(est.remainder, str) or est.remainder not in ("drop", "passthrough"):
                    raise UnsupportedError("a remainder estimator is not supported (use 'drop' or 'passthrough')")
                if est.remainder == "passthrough" and len(cols):
                    remainder = "passthrough"
                continue
            if trans == "drop":
                continue
            col_names = _column_names(name, cols, inputs)
            transformers.append({"name": name, "columns": col_names, "steps": _chain(name, trans)})
    elif isinstance(est, Pipeline):
        for step_name, step in est.steps:
            if isinstance(step, (ColumnTransformer, Pipeline)):
                raise UnsupportedError(f"step '{step_name}': a nested {type(step).__name__} must be the only step")
        transformers.append({"name": "pipeline", "columns": inputs, "steps": _chain("pipeline", est)})
    else:
        raise UnsupportedError(f"{type(est).__name__} is not supported: export a Pipeline or a ColumnTransformer")

    strings = set(string_columns or [])
    if string_columns is None:
        for t in transformers:
            for step in t["steps"]:
                for col, cats in zip(t["columns"], step.get("categories", [])):
                    if any(isinstance(c, str) for c in cats):
                        strings.add(col)
    for t in transformers:
        for step in t["steps"]:
            if step["type"] == "ordinal_encoder" and step["handle_unknown"] == "use_encoded_value":
                if not isinstance(step["unknown_value"], (int, float, type(None))):
                    raise UnsupportedError(f"transformer '{t['name']}': unknown_value must be a number")
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "inputs": [{"name": c, "kind": "string" if c in strings else "number"} for c in inputs],
        "transformers": transformers,
        "remainder": remainder,
        "output_names": [str(n) for n in est.get_feature_names_out()],
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
    return doc


def _spec_step(name, est):
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import (FunctionTransformer, KBinsDiscretizer, MaxAbsScaler, MinMaxScaler,
                                       OneHotEncoder, OrdinalEncoder, RobustScaler, StandardScaler)

    where = f"step '{name}' ({type(est).__name__})"
    p = est.get_params(deep=False)
    if isinstance(est, SimpleImputer):
        if p["add_indicator"]:
            raise UnsupportedError(f"{where}: add_indicator=True is not supported")
        return {"type": "simple_imputer", "strategy": p["strategy"], "fill_value": p["fill_value"]}
    if isinstance(est, StandardScaler):
        return {"type": "standard_scaler", "with_mean": p["with_mean"], "with_std": p["with_std"]}
    if isinstance(est, RobustScaler):
        if p["unit_variance"]:
            raise UnsupportedError(f"{where}: unit_variance=True is not supported")
        return {"type": "robust_scaler", "with_centering": p["with_centering"], "with_scaling": p["with_scaling"],
                "quantile_range": [float(q) for q in p["quantile_range"]]}
    if isinstance(est, MaxAbsScaler):
        return {"type": "max_abs_scaler"}
    if isinstance(est, MinMaxScaler):
        return {"type": "min_max_scaler", "feature_range": [float(v) for v in p["feature_range"]], "clip": p["clip"]}
    if isinstance(est, (OneHotEncoder, OrdinalEncoder)):
        if p.get("min_frequency") is not None or p.get("max_categories") is not None:
            raise UnsupportedError(f"{where}: infrequent categories (min_frequency, max_categories) are not supported")
        given = None
        if not isinstance(p["categories"], str):
            given = [[_category(c) for c in cats] for cats in p["categories"]]
        if isinstance(est, OneHotEncoder):
            if p["handle_unknown"] not in ("error", "ignore") or p["drop"] not in (None, "first", "if_binary"):
                raise UnsupportedError(f"{where}: handle_unknown={p['handle_unknown']!r}, drop={p['drop']!r}")
            step = {"type": "one_hot_encoder", "handle_unknown": p["handle_unknown"], "drop": p["drop"]}
            if given is not None:
                step["categories"] = given
            return step
        missing = p["encoded_missing_value"]
        if given is not None:
            raise UnsupportedError(f"{where}: given categories are only supported for OneHotEncoder")
        return {"type": "ordinal_encoder", "handle_unknown": p["handle_unknown"],
                "unknown_value": None if p["unknown_value"] is None or (isinstance(p["unknown_value"], float)
                                                                        and math.isnan(p["unknown_value"]))
                else p["unknown_value"],
                "encoded_missing_value": None if isinstance(missing, float) and math.isnan(missing) else missing}
    if isinstance(est, KBinsDiscretizer):
        if p["strategy"] not in ("uniform", "quantile") or not isinstance(p["n_bins"], numbers.Integral):
            raise UnsupportedError(f"{where}: only strategy 'uniform' or 'quantile' with one n_bins can be fitted")
        if p["strategy"] == "quantile" and p["quantile_method"] != "averaged_inverted_cdf":
            raise UnsupportedError(f"{where}: only quantile_method='averaged_inverted_cdf' can be fitted")
        return {"type": "kbins_discretizer", "n_bins": int(p["n_bins"]), "strategy": p["strategy"],
                "encode": p["encode"]}
    if isinstance(est, FunctionTransformer):
        return _function(where, est)
    raise UnsupportedError(f"{where} is not supported by ember")


def export_spec(estimator, columns, path=None, string_columns=()):
    """The unfitted form of `estimator` (a ColumnTransformer or Pipeline as above, fitted
    or not) for ember's C++ Pipeline::fit: the same layout as pipeline.json with each
    step's options instead of its fitted values. `columns` lists the input columns in
    row order. Written to `path` when given; returned either way."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    est = estimator
    if isinstance(est, Pipeline) and len(est.steps) == 1 and isinstance(est.steps[0][1], ColumnTransformer):
        est = est.steps[0][1]

    def chain(name, trans):
        if trans == "passthrough":
            return [{"type": "passthrough"}]
        if isinstance(trans, Pipeline):
            return [_spec_step(f"{name}/{n}", e) for n, e in trans.steps if e != "passthrough"]
        return [_spec_step(name, trans)]

    transformers = []
    if isinstance(est, ColumnTransformer):
        if not isinstance(est.remainder, str):
            raise UnsupportedError("a remainder estimator is not supported (use 'drop' or 'passthrough')")
        for name, trans, cols in est.transformers:
            if trans == "drop":
                continue
            transformers.append({"name": name, "columns": _column_names(name, cols, list(columns)),
                                 "steps": chain(name, trans)})
        remainder, verbose = est.remainder, bool(est.verbose_feature_names_out)
    elif isinstance(est, Pipeline):
        transformers.append({"name": "pipeline", "columns": list(columns), "steps": chain("pipeline", est)})
        remainder, verbose = "drop", False
    else:
        raise UnsupportedError(f"{type(est).__name__} is not supported: give a Pipeline or a ColumnTransformer")
    doc = {"format": FORMAT, "version": VERSION, "fit": True,
           "inputs": [{"name": c, "kind": "string" if c in set(string_columns) else "number"} for c in columns],
           "transformers": transformers, "remainder": remainder, "verbose_feature_names_out": verbose}
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
    return doc


LINEAR_FORMAT = "ember-linear"
LINEAR_VERSION = 1


def export_linear(fitted, path=None):
    """Writes a fitted LinearRegression, Ridge or LogisticRegression to `path` as ember's
    linear.json (the fallback model of a chain) and returns the document.

    Coefficients are written as Python floats, so every digit survives: ember's predict,
    predict_proba and decision_function agree with scikit-learn's to rounding. Anything
    else (another estimator, an unfitted one, sparse coefficients, a one-vs-rest model
    wrapped in OneVsRestClassifier) raises UnsupportedError."""
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    if type(fitted) not in (LinearRegression, Ridge, LogisticRegression):
        raise UnsupportedError(f"{type(fitted).__name__} is not supported "
                               "(LinearRegression, Ridge and LogisticRegression are)")
    coef = getattr(fitted, "coef_", None)
    if coef is None:
        raise UnsupportedError(f"{type(fitted).__name__} is not fitted")
    if hasattr(coef, "toarray"):
        raise UnsupportedError("sparse coefficients are not supported")
    import numpy as np

    coef = np.asarray(coef, dtype=np.float64)
    rows = coef.reshape(1, -1) if coef.ndim == 1 else coef
    intercept = np.broadcast_to(np.asarray(fitted.intercept_, dtype=np.float64), (rows.shape[0],))
    if not (np.all(np.isfinite(rows)) and np.all(np.isfinite(intercept))):
        raise UnsupportedError("the coefficients hold NaN or Inf")
    doc = {
        "format": LINEAR_FORMAT,
        "version": LINEAR_VERSION,
        "estimator": type(fitted).__name__,
        "coef": [_floats(r) for r in rows],
        "intercept": _floats(intercept),
    }
    names = getattr(fitted, "feature_names_in_", None)
    if names is not None:
        doc["feature_names"] = [str(n) for n in names]
    if isinstance(fitted, LogisticRegression):
        doc["classes"] = [_category(c) for c in fitted.classes_]
        # scikit-learn >= 1.7 is always multinomial beyond two classes; older versions
        # may have been fitted one-vs-rest.
        multi = getattr(fitted, "multi_class", "deprecated")
        ovr = len(fitted.classes_) > 2 and (multi == "ovr" or (multi == "auto" and fitted.solver == "liblinear"))
        doc["multi_class"] = "ovr" if ovr else "multinomial"
    if path is not None:
        with open(path, "w") as f:
            json.dump(doc, f)
    return doc
