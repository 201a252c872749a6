"""ember.Registry from Python: the same operations and names as in C++ (publish, load by
reference, aliases by compare-and-swap, rollouts, audit), and their errors."""

import pytest

import ember


def test_publish_alias_and_load_by_reference(reg, tmp_path):
    event = reg.set_alias("churn", "production", 1, expected=0, actor="alice", reason="launch")
    assert (event["from"], event["to"], event["kind"]) == (0, 1, "set")
    model = ember.Model.load("churn@production", registry=reg)
    assert (model.name, model.version) == ("churn", "1")
    assert model.predict({"a": 1, "b": 1}).value() == pytest.approx(3.5)
    # The registry may be given by its directory.
    again = ember.Model.load("churn/2", registry=tmp_path / "reg")
    assert again.predict({"a": 1, "b": 1}).value() == pytest.approx(5.5)
    shown = reg.show("churn@production")
    assert shown["version"] == 1 and shown["aliases"] == ["production"]
    assert [f["role"] for f in shown["files"]].count("schema") == 1
    assert [v["version"] for v in reg.list("churn")] == [1, 2]
    assert reg.resolve("churn/2")["dir"].is_dir()


def test_compare_and_swap_rollback_and_errors(reg, tmp_path):
    reg.set_alias("churn", "production", 1, actor="alice")
    with pytest.raises(ember.Aborted, match="holds version 1"):
        reg.set_alias("churn", "production", 2, expected=0, actor="bob")
    reg.set_alias("churn", "production", 2, expected=1, actor="bob", reason="better")
    assert reg.rollback("churn", "production", "bob", "worse")["to"] == 1
    assert [e["kind"] for e in reg.alias_history("churn", "production")] == ["set", "set", "rollback"]
    with pytest.raises(ember.NotFound):
        reg.load_model("churn/9")
    with pytest.raises(ember.NotFound):
        ember.Registry.open(tmp_path / "nowhere")
    with pytest.raises(ember.AlreadyExists):
        ember.Registry.init(tmp_path / "reg")
    with pytest.raises(ember.InvalidArgument):
        reg.set_alias("churn", "latest", 1, actor="bob")
    with pytest.raises(ember.InvalidArgument):
        reg.record_event("alice", "note", "churn", [1, 2])


def test_rollouts_and_the_audit_log(reg):
    reg.set_alias("churn", "production", 1, actor="alice")
    plan = {"steps": [{"weight": 10, "min_requests": 100}, {"weight": 100, "min_requests": 100}],
            "checks": [{"metric": "error_rate", "max": 0.01}]}
    r = reg.start_rollout("churn", "production", 2, plan, actor="alice", reason="retrained")
    assert (r["state"], r["control"], r["candidate"], r["step"]) == ("running", 1, 2, 0)
    assert r["plan"]["steps"][0]["weight"] == 10
    with pytest.raises(ember.FailedPrecondition):
        reg.start_rollout("churn", "production", 2, plan, actor="bob")
    assert reg.command_rollout("churn", "production", "pause", "bob", "holiday")["state"] == "paused"
    promoted = reg.command_rollout("churn", "production", "promote", "bob")
    assert promoted["state"] == "promoted"
    assert reg.show("churn@production")["version"] == 2
    with pytest.raises(ember.InvalidArgument, match="pause, resume, abort or promote"):
        reg.command_rollout("churn", "production", "restart", "bob")
    assert reg.rollout("churn", "production")["id"] == r["id"]
    reg.record_event("alice", "deploy_note", "churn", {"host": "web-1"})
    events = [e["event"] for e in reg.audit()]
    assert events[-4:] == ["rollout_pause", "alias", "rollout_promote", "deploy_note"]
    assert reg.audit()[-1]["detail"] == {"host": "web-1"}
    reg.verify_audit()
