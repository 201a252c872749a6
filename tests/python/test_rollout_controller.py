"""ember.RolloutController from Python: a rollout started in the registry is served, judged
and promoted; host commands pause and abort it; events reach a Python callable."""

import pytest

import ember

PLAN = {"steps": [{"weight": 50, "min_requests": 60}, {"weight": 100, "min_requests": 60}],
        "checks": [{"metric": "error_rate", "max": 0.05}], "evaluate_every": 10}


def test_a_rollout_is_served_judged_and_promoted(reg):
    reg.set_alias("churn", "production", 1, actor="alice")
    events = []
    controller = ember.RolloutController.create(reg, "churn@production", on_event=events.append)
    assert not controller.has_rollout
    p, arm = controller.predict({"a": 1, "b": 1}, key="user-1")
    assert (arm, p.value()) == ("control", pytest.approx(3.5))
    reg.start_rollout("churn", "production", 2, PLAN, actor="alice", reason="retrained")
    controller.sync()
    assert controller.has_rollout and controller.candidate_weight == 50
    arms = {}
    for i in range(400):
        p, arm = controller.predict({"a": 1, "b": 1}, key=f"user-{i}")
        assert p.value() == pytest.approx(3.5 if arm == "control" else 5.5)  # version 1 or 2 answered
        arms[f"user-{i}"] = arm
        if controller.record()["state"] == "promoted":
            break
    assert controller.wait_idle(10000)
    assert "candidate" in arms.values()
    kinds = [e["kind"] for e in events]
    assert "started" in kinds and "step" in kinds and kinds[-1] == "promoted"
    assert events[-1]["subject"] == "churn@production"
    assert reg.resolve("churn@production")["version"] == 2
    assert controller.status()["state"] == "promoted"


def test_host_commands_pause_and_abort(reg):
    reg.set_alias("churn", "production", 1, actor="alice")
    reg.start_rollout("churn", "production", 2, PLAN, actor="alice")
    controller = ember.RolloutController.create(reg, "churn@production")
    assert controller.has_rollout
    controller.pause("bob", "looking at it")
    assert reg.rollout("churn", "production")["state"] == "paused"
    controller.resume("bob")
    controller.abort("bob", "bad numbers")
    assert controller.candidate_weight == 0
    assert all(controller.predict({"a": 0, "b": 0}, key=str(i))[1] == "control" for i in range(50))
    assert reg.rollout("churn", "production")["state"] == "aborted"
    assert reg.resolve("churn@production")["version"] == 1
    with pytest.raises(ember.InvalidArgument):
        ember.RolloutController.create(reg, "churn")  # an alias is required
    with pytest.raises(ember.InvalidArgument):
        controller.predict({"a": "x", "b": 0}, key="k")
