"""Scoring a PySpark DataFrame with ember: `ember.spark.score(df, ref)`.

Each partition's Arrow batches go straight into ember's batch path (`mapInArrow`); each
executor's Python worker loads the model once and keeps it for every task it runs
(`ember.scoring.cached_model`). The model is found one of two ways:

- a shared path: a bundle directory, or `registry=` a registry directory every executor
  can read (a network file system) with a reference such as 'churn@production';
- shipped with the job: `ship=True` copies a local bundle directory to every executor
  (SparkContext.addFile) and each one loads its copy.

The answer's columns are those of `ember.scoring`: the key columns, the outputs, and
`ember_error` (null when the row was scored). See docs/scale-out.md.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from ember import scoring


def score(df, ref, *, registry=None, keys: Sequence[str] = (), block_rows: int = scoring.DEFAULT_BLOCK_ROWS,
          served_by: bool = False, ship: bool = False):
    """`df` scored by the model `ref`: a DataFrame of the key columns, the outputs and
    ember_error, one row per input row. The model is loaded here too, once, for its
    outputs and to fail early on a bad reference."""
    from pyspark import SparkFiles
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    keys = list(keys)
    ref = os.fspath(ref)
    registry = os.fspath(registry) if registry is not None else None
    model = scoring.cached_model(ref, registry)
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise KeyError(f"key column '{missing[0]}' is not in the DataFrame (its columns: {', '.join(df.columns)})")
    out_schema = scoring.output_schema(model, to_arrow_schema(df.select(*keys).schema), keys, served_by)
    spark_schema = from_arrow_schema(out_schema)
    shipped: Optional[str] = None
    if ship:
        if registry is not None or not os.path.isdir(ref):
            raise ValueError("ship=True sends a local bundle directory to the executors; give its path as ref")
        df.sparkSession.sparkContext.addFile(os.path.abspath(ref), recursive=True)
        shipped = os.path.basename(os.path.normpath(ref))
    needed = [c for c in df.columns if c in set(model.features) or c in keys]

    def run(batches):
        where = SparkFiles.get(shipped) if shipped is not None else ref
        executor_model = scoring.cached_model(where, registry)
        for batch in batches:
            yield scoring.score_batch(executor_model, batch, keys, block_rows=block_rows, served_by=served_by,
                                      schema=out_schema)

    return df.select(*needed).mapInArrow(run, spark_schema)
