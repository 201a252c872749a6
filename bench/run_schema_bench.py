"""Runs bench_schema (ember) and times pydantic v2 on the same records, in one run, and
prints medians and ratios.

    python bench/run_schema_bench.py [--build build] [--repetitions 9]

The record: 30 fields (numbers, integers, enums, optional fields, strings, a boolean and
one nested object), about 600 bytes, from bench/schema_bench_model.py. pydantic is timed
with model_validate_json on each record (single) and over the 1,024 records (batch).
Goals: <= 1 us per record from a parsed value, <= 3 us from JSON text, >= 1 M records/s
in batches, and >= 3x faster than pydantic.
"""

import json
import os
import statistics
import sys
import time

import benchlib
import schema_bench_model as model


def time_pydantic(records, repetitions):
    validate = model.Record.model_validate_json
    single, batch = [], []
    for _ in range(repetitions):
        start = time.perf_counter()
        for r in records:
            validate(r)
        elapsed = time.perf_counter() - start
        single.append(elapsed / len(records) * 1e6)
        batch.append(len(records) / elapsed)
    return statistics.median(single), statistics.median(batch)


def main() -> int:
    args = benchlib.arguments(__doc__)

    binary = benchlib.program(args.build, "bench_schema")
    data = os.path.join(args.build, "bench", "schema-data")
    os.makedirs(data, exist_ok=True)
    records = model.records()
    with open(os.path.join(data, "schema.json"), "w") as f:
        json.dump(model.schema(), f)
    with open(os.path.join(data, "records.jsonl"), "w") as f:
        f.write("\n".join(records) + "\n")

    runs = benchlib.run(binary, {"EMBER_BENCH_DATA": data}, args.repetitions, args.min_time)
    ns = {name: statistics.median(benchlib.real_time_us(r) for r in rs) * 1000 for name, rs in runs.items()}
    batch_rate = statistics.median(r["items_per_second"] for r in runs["BM_Batch1024/real_time"])
    all_rate = statistics.median(r["items_per_second"] for r in runs["BM_Batch1024AllCores/real_time"])
    all_threads = int(runs["BM_Batch1024AllCores/real_time"][0]["threads"])
    py_single_us, py_rate = time_pydantic(records, args.repetitions)

    size = statistics.mean(len(r) for r in records)
    print(f"record: {len(model.schema()['properties'])} fields, {size:.0f} bytes on average; "
          f"medians of {args.repetitions} repetitions")
    rows = [
        ("parse only (floor)", ns["BM_ParseOnly"] / 1000, None, None),
        ("validate + map, parsed value", ns["BM_ValidateParsed"] / 1000, "<= 1 us", ns["BM_ValidateParsed"] / 1000 <= 1),
        ("validate + map, JSON text", ns["BM_ValidateText"] / 1000, "<= 3 us", ns["BM_ValidateText"] / 1000 <= 3),
    ]
    print(f"{'path':32} {'ember us/record':>16}  goal")
    for name, us, goal, ok in rows:
        print(f"{name:32} {us:>16.3f}  {goal or ''} {'' if ok is None else ('met' if ok else 'MISSED')}")
    print(f"{'batch of 1,024, 1 thread (rec/s)':32} {batch_rate:>16,.0f}")
    print(f"{f'batch of 1,024, {all_threads} threads (rec/s)':32} {all_rate:>16,.0f}  >= 1,000,000 "
          f"{'met' if all_rate >= 1e6 else 'MISSED'} (a ThreadPool: one part per core)")
    text_ratio = py_single_us / (ns["BM_ValidateText"] / 1000)
    batch_ratio = batch_rate / py_rate  # pydantic runs on one thread: compare with one
    print(f"pydantic model_validate_json: {py_single_us:.3f} us/record, {py_rate:,.0f} records/s")
    print(f"ember vs pydantic: {text_ratio:.1f}x faster per record from text, {batch_ratio:.1f}x in batches on one thread "
          f"(goal >= 3x: {'met' if min(text_ratio, batch_ratio) >= 3 else 'MISSED'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
