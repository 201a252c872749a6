"""Scoring a Ray Dataset with ember: `ember.ray.score(dataset, ref)`.

`map_batches` on a pool of actors: each actor loads the model once and scores Arrow
batches with it (`ember.scoring`). The model must be readable where the actors run: a
bundle directory or a registry on a shared file system, or a directory shipped with the
job's runtime environment (`runtime_env={"working_dir": ...}`). See docs/scale-out.md.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from ember import scoring


class _Scorer:
    """One actor: the model, loaded once, and the answer's schema per input schema."""

    def __init__(self, ref: str, registry: Optional[str], keys: Sequence[str], block_rows: int, served_by: bool):
        self.model = scoring.cached_model(ref, registry)
        self.keys = list(keys)
        self.block_rows = block_rows
        self.served_by = served_by

    def __call__(self, table):
        import pyarrow as pa
        schema = scoring.output_schema(self.model, table.schema, self.keys, self.served_by)
        batches = [scoring.score_batch(self.model, b, self.keys, block_rows=self.block_rows, served_by=self.served_by,
                                       schema=schema) for b in table.to_batches()]
        return pa.Table.from_batches(batches, schema=schema)


def score(dataset, ref, *, registry=None, keys: Sequence[str] = (), workers: int = 2, batch_size: int = 10000,
          block_rows: int = scoring.DEFAULT_BLOCK_ROWS, served_by: bool = False, num_cpus: float = 1):
    """`dataset` scored by the model `ref` on `workers` actors (each `num_cpus` CPUs): a
    Dataset of the key columns, the outputs and ember_error, one row per input row."""
    ref = os.fspath(ref)
    registry = os.fspath(registry) if registry is not None else None
    from ray.data import ActorPoolStrategy
    scoring.cached_model(ref, registry)  # fail here, not in an actor, on a bad reference
    return dataset.map_batches(
        _Scorer, fn_constructor_kwargs={"ref": ref, "registry": registry, "keys": list(keys),
                                        "block_rows": block_rows, "served_by": served_by},
        batch_format="pyarrow", batch_size=batch_size, compute=ActorPoolStrategy(size=workers), num_cpus=num_cpus)
