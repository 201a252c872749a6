"""Reference statistics of training data (reference.json), as `ember reference` computes
them: per feature of the schema the count, missing values, mean, standard deviation,
minimum and maximum, every value (up to 1000) or 1001 quantiles, the distinct values
when there are at most 20, and category frequencies; and the same for the model's
outputs. `ember drift --bundle` and a C++ `Monitor` compare live data with them.

    stats = ember.reference.describe(train_df, schema=Customer, outputs={"output": probs})
"""

import json
import math

import numpy as np

FORMAT = "ember-reference"
FORMAT_VERSION = 1
EXACT_ROWS = 1000
QUANTILES = 1001
MAX_DISTINCT_NUMBERS = 20
MAX_CATEGORIES = 1000


def _resolve(node, root, depth=0):
    """The schema node behind $ref, a single allOf, or anyOf [X, null] (pydantic's Optional)."""
    while isinstance(node, dict) and depth < 32:
        depth += 1
        if "$ref" in node and node["$ref"].startswith("#/"):
            target = root
            for part in node["$ref"][2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            continue
        for key in ("anyOf", "oneOf"):
            options = [o for o in node.get(key, []) if not (isinstance(o, dict) and o.get("type") == "null")]
            if len(options) == 1 and len(node[key]) <= 2:
                node = {**options[0], **{k: v for k, v in node.items() if k != key}}
                break
        else:
            if isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
                node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
                continue
            return node
    return node


def schema_columns(schema, root=None, prefix=""):
    """[(feature name, "numerical" | "categorical")] for the schema's comparable features,
    in schema order (text without an enum is not compared)."""
    root = root if root is not None else schema
    node = _resolve(schema, root)
    out = []
    for key, prop in (node.get("properties") or {}).items():
        p = _resolve(prop, root)
        name = prefix + key
        t = p.get("type")
        if isinstance(t, list):
            t = [x for x in t if x != "null"]
            t = t[0] if len(t) == 1 else None
        if t == "object" and "properties" in p:
            out.extend(schema_columns(p, root, name + "."))
        elif t in ("number", "integer"):
            out.append((name, "numerical"))
        elif t == "boolean":
            out.append((name, "categorical"))
        elif (t == "string" or t is None) and ("enum" in p or "const" in p):
            out.append((name, "categorical"))
    return out


def _label(v):
    if v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ == "NAType":  # pandas.NA
        return None
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v else None
    if isinstance(v, (np.integer, int)):
        return str(int(v))
    return json.dumps(float(v))


def describe_column(name, kind, values):
    """The statistics of one column (a sequence), as reference.json holds them."""
    if kind == "categorical":
        counts, missing = {}, 0
        for v in values:
            lab = _label(v.item() if hasattr(v, "item") else v)
            if lab is None:
                missing += 1
            else:
                counts[lab] = counts.get(lab, 0) + 1
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode("utf-8")))
        kept = ordered[:MAX_CATEGORIES]
        return {"name": name, "kind": "categorical", "count": sum(counts.values()), "missing": missing,
                "categories": [[k, n] for k, n in kept], "other": sum(n for _, n in ordered[MAX_CATEGORIES:])}
    arr = np.asarray(values, dtype=object)
    x = np.array([float(v) if v is not None and not isinstance(v, str) else np.nan for v in arr], dtype=np.float64)
    finite = x[np.isfinite(x)]
    out = {"name": name, "kind": "numerical", "count": int(finite.size), "missing": int(x.size - finite.size)}
    if finite.size == 0:
        return out
    v = np.sort(finite)
    mean = float(sum(v.tolist()) / v.size)
    out.update({"mean": mean, "std": float(math.sqrt(sum(((v - mean) ** 2).tolist()) / v.size)),
                "min": float(v[0]), "max": float(v[-1])})
    if v.size <= EXACT_ROWS:
        out["values"] = v.tolist()
    else:
        pos = (np.arange(QUANTILES) / (QUANTILES - 1)) * (v.size - 1)
        lo = np.minimum(pos.astype(np.int64), v.size - 1)
        hi = np.minimum(lo + 1, v.size - 1)
        q = v[lo] + (pos - lo) * (v[hi] - v[lo])
        q[0], q[-1] = v[0], v[-1]
        out["quantiles"] = q.tolist()
    uniq, counts = np.unique(v, return_counts=True)
    if uniq.size <= MAX_DISTINCT_NUMBERS:
        out["distinct"] = [[float(a), int(b)] for a, b in zip(uniq, counts)]
    return out


def _column(frame, name):
    if hasattr(frame, "columns"):
        if name in frame.columns:
            return list(frame[name])
        return None
    return list(frame[name]) if name in frame else None


def describe(frame, schema, outputs=None):
    """reference.json as a dict: the schema's features found in `frame` (a pandas
    DataFrame or a {column: values} dict) and the columns of `outputs` ({name: values},
    values a 1-D sequence or a 2-D array whose columns become "name[i]")."""
    from ember.bundle import _schema_dict  # noqa: PLC0415 - avoids an import cycle
    schema = _schema_dict(schema)
    rows = len(frame) if hasattr(frame, "__len__") and hasattr(frame, "columns") else \
        max((len(v) for v in frame.values()), default=0)
    features = []
    for name, kind in schema_columns(schema):
        col = _column(frame, name)
        if col is not None:
            features.append(describe_column(name, kind, col))
    if not features:
        raise ValueError("reference: the data has none of the schema's features "
                         f"({', '.join(n for n, _ in schema_columns(schema)) or 'none'})")
    outs = []
    for name, values in (outputs or {}).items():
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim == 1:
            outs.append(describe_column(name, "numerical", arr.tolist()))
        elif arr.ndim == 2:
            for i in range(arr.shape[1]):
                outs.append(describe_column(f"{name}[{i}]", "numerical", arr[:, i].tolist()))
        else:
            raise ValueError(f"reference: output {name!r} must be 1-D or 2-D, got shape {arr.shape}")
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "rows": int(rows), "features": features, "outputs": outs}
