"""ember.Deployment from Python: predict and submit (a concurrent.futures.Future, awaited
by asyncio) with dynamic batching, errors through the future, serving a registry alias
and following it."""

import asyncio
import concurrent.futures

import pytest

import ember
from conftest import customers, linear_model


def test_submit_gives_futures_whose_answers_equal_predict(mlp):
    d = ember.Deployment.create(mlp["path"], batching=True, max_batch_rows=16, max_queue_delay_us=200)
    frame = customers(200, 31)
    expected = mlp["expect"](frame)
    rows = frame.to_dict("records")
    futures = [d.submit(r) for r in rows]
    done, _ = concurrent.futures.wait(futures, timeout=60)
    assert len(done) == len(rows)
    for i, f in enumerate(futures):
        assert f.result().value() == pytest.approx(float(expected[i]), abs=1e-5)
    assert d.predict(rows[0]).value() == pytest.approx(float(expected[0]), abs=1e-5)
    c = d.counters()
    assert c["requests"] == 201 and c["batches"] >= 1 and c["batched_rows"] == 201


def test_errors_arrive_through_the_future_and_asyncio_awaits_it(linear):
    d = ember.Deployment.create(linear, batching=True)
    bad = d.submit({"a": "x", "b": 1})
    with pytest.raises(ember.InvalidArgument) as e:
        bad.result(timeout=30)
    assert e.value.errors[0]["instance_path"] == "/a"

    async def main():
        answers = await asyncio.gather(*(asyncio.wrap_future(d.submit({"a": i, "b": 1})) for i in range(50)))
        return [a.value() for a in answers]

    assert asyncio.run(main()) == pytest.approx([i + 2.5 for i in range(50)])
    with pytest.raises(ember.InvalidArgument, match="priority"):
        d.submit({"a": 1, "b": 1}, priority=7)
    with pytest.raises(ember.InvalidArgument):
        d.submit([1, 2])


def test_a_deployment_serves_an_alias_and_follows_it(tmp_path):
    reg = ember.Registry.init(tmp_path / "reg")
    for i, weight in enumerate([1.0, 3.0], start=1):
        m = linear_model(tmp_path / f"m{i}", weight)
        ember.export_bundle(tmp_path / f"b{i}", name="churn", schema=str(m / "schema.json"),
                            extra_files={"linear.json": str(m / "linear.json"), "chain.json": str(m / "chain.json")})
        reg.publish(tmp_path / f"b{i}", "alice")
    reg.set_alias("churn", "production", 1, actor="alice")
    d = ember.Deployment.create("churn@production", registry=tmp_path / "reg", warmup=[{"a": 1, "b": 1}])
    assert (d.name, d.version) == ("churn", "1")
    assert d.predict({"a": 1, "b": 1}).value() == pytest.approx(3.5)
    reg.set_alias("churn", "production", 2, actor="alice")
    d.reload()
    assert d.version == "2" and d.swaps == 1
    p = d.predict({"a": 1, "b": 1})
    assert (p.value(), p.model_version) == (pytest.approx(5.5), "2")
    assert [v["state"] for v in d.versions()][-1] == "ready"
    with pytest.raises(ember.NotFound):
        ember.Deployment.create("churn@nowhere", registry=reg)
