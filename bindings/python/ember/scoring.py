"""Scoring Apache Arrow batches: what `ember.spark` and `ember.ray` run on each batch,
with the rules of `ember score`.

A batch's columns that name the model's features are its records (read in place where
they are numeric); key columns are copied into the answer; other columns are ignored.
The answer has the key columns, one column per output value (`output`, or `probs_0`,
`probs_1`, ... when an output has several values per row), `served_by` when asked for,
and `ember_error`: null for a scored row, else the JSON list of its errors
(`[{"path": "/age", "message": "..."}]`, as `ember score` writes them to its reject
file) with the outputs null. Rows are never dropped, so the answer lines up with the
input. The model runs on blocks of `block_rows` rows (256 by default, as `ember score`),
so that a row's score does not depend on how the data was cut into batches, partitions
or chunks: the three paths give the same numbers to the last bit.
"""

from __future__ import annotations

import json
import math
import os
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

ERROR_COLUMN = "ember_error"
DEFAULT_BLOCK_ROWS = 256

_models: Dict[Tuple[str, str], Any] = {}
_models_lock = threading.Lock()
loads = 0  # models this process has loaded (for tests and diagnostics)


def cached_model(ref: str, registry: Optional[str] = None):
    """The model `ref` (a bundle or model directory, or with `registry` a reference such
    as 'churn@production'), loaded once per process and kept: Spark executors and Ray
    workers score every batch with the same Model (its methods are thread-safe)."""
    global loads
    key = (os.fspath(ref), os.fspath(registry) if registry is not None else "")
    with _models_lock:
        model = _models.get(key)
        if model is None:
            import ember
            model = ember.Model.load(key[0], registry=key[1] or None)
            _models[key] = model
            loads += 1
        return model


def _arrow_type(dtype: str):
    import pyarrow as pa
    return {"float32": pa.float32(), "float64": pa.float64(), "int64": pa.int64(), "int32": pa.int32(),
            "int8": pa.int8(), "uint8": pa.uint8(), "bool": pa.bool_()}.get(dtype, pa.float64())


def _output_columns(model) -> List[Tuple[str, str, int, int]]:
    """(column name, output name, element within the row, elements per row)."""
    columns = []
    for spec in model.outputs:
        per_row = math.prod(spec["row_shape"]) if spec["row_shape"] else 1
        for i in range(per_row):
            columns.append((spec["name"] if per_row == 1 else f"{spec['name']}_{i}", spec["name"], i, per_row))
    return columns


def output_schema(model, input_schema, keys: Sequence[str] = (), served_by: bool = False):
    """The Arrow schema of score_batch's answers for input batches of `input_schema`."""
    import pyarrow as pa
    fields = []
    for key in keys:
        if key not in input_schema.names:
            raise KeyError(f"key column '{key}' is not in the input (its columns: {', '.join(input_schema.names)})")
        fields.append(input_schema.field(key))
    dtypes = {spec["name"]: spec["dtype"] for spec in model.outputs}
    for column, output, _, _ in _output_columns(model):
        fields.append(pa.field(column, _arrow_type(dtypes[output])))
    if served_by:
        fields.append(pa.field("served_by", pa.string()))
    fields.append(pa.field(ERROR_COLUMN, pa.string()))
    names = [f.name for f in fields]
    if len(set(names)) != len(names):
        raise ValueError(f"the answer would have a column twice: {names}")
    return pa.schema(fields)


def _values(column) -> np.ndarray:
    """An Arrow column as numpy: numbers in place when they have no nulls; integers with
    nulls as floats with NaN (missing); strings and booleans with nulls as objects."""
    import pyarrow as pa
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column.to_numpy(zero_copy_only=False)


def _error_text(errors: Iterable[Dict[str, str]]) -> str:
    return json.dumps([{"path": e.get("instance_path", e.get("path", "")), "message": e["message"]} for e in errors],
                      ensure_ascii=False, separators=(",", ":"))


def score_batch(model, batch, keys: Sequence[str] = (), *, block_rows: int = DEFAULT_BLOCK_ROWS,
                served_by: bool = False, schema=None):
    """Scores one Arrow RecordBatch or Table; returns a RecordBatch of output_schema()."""
    import pyarrow as pa
    if isinstance(batch, pa.Table):
        batch = batch.combine_chunks().to_batches()[0] if batch.num_rows else pa.RecordBatch.from_pylist(
            [], schema=batch.schema)
    schema = schema if schema is not None else output_schema(model, batch.schema, keys, served_by)
    n = batch.num_rows
    if n == 0:
        return pa.RecordBatch.from_pylist([], schema=schema)
    features = set(model.features)
    columns = {name: _values(batch.column(i)) for i, name in enumerate(batch.schema.names) if name in features}
    records: Any = columns if columns else [{} for _ in range(n)]  # no feature column: empty records
    answer = model.predict_batch(records, block_rows=block_rows, strict=False)

    row_of = np.full(n, -1, dtype=np.int64)
    source = np.asarray(answer.source_index, dtype=np.int64)
    row_of[source] = np.arange(len(source))
    errors: List[Optional[str]] = [None] * n
    for record, record_errors in answer.invalid.items():
        errors[record] = _error_text(record_errors)
    for row, message in answer.row_errors.items():
        record = int(source[row])
        row_of[record] = -1
        errors[record] = _error_text([{"path": "", "message": message}])
    scored = row_of >= 0
    take = row_of[scored]

    arrays = [batch.column(batch.schema.get_field_index(key)) for key in keys]
    outputs = answer.outputs
    for column, output, element, per_row in _output_columns(model):
        field = schema.field(column)
        values = np.asarray(outputs[output]).reshape(len(source), per_row)[:, element] if len(source) else \
            np.zeros(0, dtype=field.type.to_pandas_dtype())
        full = np.zeros(n, dtype=values.dtype)
        full[scored] = values[take]
        arrays.append(pa.array(full, type=field.type, mask=~scored))
    if served_by:
        stages = answer.served_by
        arrays.append(pa.array([stages[row_of[r]] if scored[r] else None for r in range(n)], type=pa.string()))
    arrays.append(pa.array(errors, type=pa.string()))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
