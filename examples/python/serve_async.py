"""Serving from Python with dynamic batching: many records submitted at once, answered
through futures that asyncio awaits.

    python examples/python/serve_async.py MODEL_DIR_OR_BUNDLE RECORDS.jsonl
"""

import asyncio
import json
import sys
from typing import List

import ember


async def score(deployment: ember.Deployment, records: List[dict]) -> List[float]:
    futures = [asyncio.wrap_future(deployment.submit(r)) for r in records]
    answers = await asyncio.gather(*futures, return_exceptions=True)
    return [a.value() if isinstance(a, ember.Prediction) else float("nan") for a in answers]


def main(model: str, path: str) -> None:
    deployment = ember.Deployment.create(model, batching=True, max_batch_rows=32)
    with open(path) as f:
        records = [json.loads(line) for line in f if line.strip()]
    scores = asyncio.run(score(deployment, records))
    print(f"{len(scores)} records, {deployment.counters()['batches']} batches, first scores {scores[:3]}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
