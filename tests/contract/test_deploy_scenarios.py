"""The approval scenarios of issue 10, through the approval handler, on every adapter mode.

GIVEN a deployment world (tests/support/deploy_env.py) and the canned state-change events of
tests/events/ (rewritten to the world's group, account and region), WHEN events arrive in the
orders EventBridge may deliver them, THEN the engine converges on the newest Approved version,
makes no write call when nothing differs, rolls back on a revoke, keeps the previous version on a
failed update or smoke test, and ignores foreign or malformed events.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pytest


def test_approve_v1_then_v2_then_replays_and_a_late_event_change_nothing(deploy_env):
    env = deploy_env
    v1, v2 = env.register(), env.register(model="b")
    env.approve(v1)
    result = env.handle(env.event(v1, "Approved"))
    assert result["status"] == "reconciled" and result["ok"], result
    assert env.served_version() == v1

    env.approve(v2)
    assert env.handle(env.event(v2, "Approved"))["ok"]
    assert env.served_version() == v2

    writes = env.target_writes()
    replay = env.handle(env.event(v2, "Approved"))  # the same event again (at-least-once delivery)
    late = env.handle(env.event(v1, "Approved"))  # the v1 event arriving after v2's (out of order)
    assert env.target_writes() == writes, "a replay or a late event made a write call to the target"
    assert [r["action"] for r in replay["report"]["results"]] == ["none"]
    assert [r["action"] for r in late["report"]["results"]] == ["none"]
    assert env.served_version() == v2


def test_reject_rolls_back_to_the_previous_approved_version(deploy_env):
    env = deploy_env
    v1, v2 = env.register(), env.register(model="b")
    for v in (v1, v2):
        env.approve(v)
        env.handle(env.event(v, "Approved"))
    env.reject(v2)
    result = env.handle(env.event(v2, "Rejected"))
    [rollback] = result["report"]["results"]
    assert result["ok"] and (rollback["action"], rollback["running"], rollback["desired"]) == ("deploy", v2, v1)
    assert "v2 -> v1" in rollback["message"]
    assert env.served_version() == v1
    # the deployment history (SQLite locally, the state table's index on AWS), newest first
    events = env.ws.history(env.ws.deploy_config(group=env.group)).read()
    assert [(e.from_version, e.to_version, e.trigger, e.ok) for e in events] == [
        (v2, v1, "rejection", True), (v1, v2, "approval", True), (None, v1, "approval", True)]
    assert events[0].event_id == env.event(v2, "Rejected")["id"] and events[0].smoke == "passed"


def test_a_history_that_cannot_be_written_never_blocks_the_deployment_and_status_says_so(deploy_env):
    from deploy.handler import handle

    from greenlight.api import status

    env = deploy_env
    v1 = env.register()
    env.approve(v1)
    reconciler = env.reconciler()
    if env.mode == "local":  # a directory where the SQLite file should be: every append fails
        reconciler.history.path.mkdir(parents=True)
    else:  # a table that does not exist: every PutItem fails
        reconciler.history.table = "no-such-table"
    result = handle(env.event(v1, "Approved"), reconciler, account=env.account, region=env.region)
    assert result["ok"] and env.served_version() == v1
    assert "cannot append to the deployment history" in result["report"]["history_error"]
    assert "cannot append to the deployment history" in status(env.ws, env.group)["history_error"]


@pytest.mark.slow  # 12 worlds; the rule has a unit test (test_reconciler.py) and a per-target contract test
@pytest.mark.parametrize("kind", ["broken", "disagree"])
def test_a_failed_update_or_smoke_test_keeps_the_previous_version_and_is_reported(deploy_env, kind):
    env = deploy_env
    v1 = env.register()
    env.approve(v1)
    env.handle(env.event(v1, "Approved"))
    bad = env.register(kind, model="b")
    env.approve(bad)
    result = env.handle(env.event(bad, "Approved"))
    assert not result["ok"]
    [failure] = result["report"]["results"]
    assert not failure["ok"] and failure["running"] == v1 and failure["desired"] == bad
    assert env.served_version() == v1
    status = env.reconciler().status.load()
    assert status["last_failure"]["targets"], status
    # the next event reconciles again (level-triggered) and fails the same way, still on v1
    again = env.handle(env.event(bad, "Approved"))
    assert not again["ok"] and env.served_version() == v1


# The engine's documented rule (deploy/engine/model.py) for when_nothing_approved = "keep", per target kind:
# online targets keep serving, warned; a scheduled target is disabled, since its next run would start new
# work with a model nobody approves. (action, what is served afterwards: "v1" or None)
NOTHING_APPROVED_BY_DEFAULT = {"endpoint": ("keep", "v1"), "lambda": ("keep", "v1"), "batch": ("stop", None)}


def test_nothing_approved_by_default_keeps_online_targets_serving_with_a_warning_and_disables_schedules(deploy_env):
    env = deploy_env
    v1 = env.register()
    env.approve(v1)
    env.handle(env.event(v1, "Approved"))
    env.reject(v1)
    result = env.handle(env.event(v1, "Rejected"))
    [outcome] = result["report"]["results"]
    action, served = NOTHING_APPROVED_BY_DEFAULT[env.kind]
    assert outcome["action"] == action and outcome["ok"], outcome
    if action == "keep":
        assert "not Approved" in outcome["warning"]
    else:
        assert "stopped" in outcome["message"], outcome
    assert env.served_version() == (v1 if served == "v1" else None)
    env.approve(v1)  # approving again brings it back
    assert env.handle(env.event(v1, "Approved"))["ok"] and env.served_version() == v1


def test_nothing_approved_with_stop_takes_the_endpoint_down(deploy_env):
    env = deploy_env
    v1 = env.register()
    env.approve(v1)
    env.handle(env.event(v1, "Approved"))
    env.reject(v1)
    result = env.handle(env.event(v1, "Rejected"), when_nothing_approved="stop")
    [stopped] = result["report"]["results"]
    assert stopped["action"] == "stop" and stopped["ok"]
    assert env.served_version() is None
    env.approve(v1)  # approving again brings it back
    assert env.handle(env.event(v1, "Approved"))["ok"] and env.served_version() == v1


@pytest.mark.slow  # 42 cases (changes x worlds); the filter itself: test_why_ignored in test_smoke_and_events.py
@pytest.mark.parametrize("change", ["other group", "other source", "other detail-type", "other account",
                                    "other region", "no detail", "not a dict"])
def test_foreign_or_malformed_events_are_ignored_with_a_log_line(deploy_env, change, caplog):
    env = deploy_env
    v1 = env.register()
    env.approve(v1)
    event = env.event(v1, "Approved")
    if change == "other group":
        event["detail"]["ModelPackageGroupName"] = "someone-elses-models"
    elif change == "other source":
        event["source"] = "aws.s3"
    elif change == "other detail-type":
        event["detail-type"] = "SageMaker Endpoint State Change"
    elif change == "other account":
        event["account"] = "999999999999"
    elif change == "other region":
        event["region"] = "ap-southeast-7"
    elif change == "no detail":
        del event["detail"]
    else:
        event = ["not", "an", "event"]
    writes = env.target_writes()
    with caplog.at_level(logging.INFO, logger="deploy.handler"):
        result = env.handle(event)
    assert result["status"] == "ignored" and result["reason"]
    assert [r.name for r in caplog.records if r.name == "deploy.handler"] == ["deploy.handler"]
    assert env.target_writes() == writes and env.served_version() is None


@pytest.mark.slow  # two reconcile processes per world
def test_two_reconciles_at_once_in_separate_processes_stay_consistent(deploy_env, tmp_path):
    env = deploy_env
    v1, v2 = env.register(), env.register(model="b")
    env.approve(v1)
    env.handle(env.event(v1, "Approved"))
    env.approve(v2)  # both workers see v2 approved; exactly one may deploy it, one after the other
    record = tmp_path / "record.txt"
    spec = {**env.worker_spec(), "record": str(record), "hold": 0.5}
    workers = [subprocess.Popen([sys.executable, "-m", "tests.support.reconcile_worker", json.dumps(spec)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    time.sleep(0.5)  # let them all build their reconcilers and wait at the start line
    (tmp_path / "go").touch()
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], outputs
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    actions = sorted(r["results"][0]["action"] for r in reports)
    assert actions == ["deploy", "none", "none"], actions  # the later ones found v2 already deployed
    lines = [line.split() for line in record.read_text().splitlines()]
    assert [kind for _, kind, _ in lines] == ["enter", "exit"]  # one deployment, never two overlapping
    assert env.served_version() == v2 and env.target.observe().version == v2


# -- the staged worlds: both stages through the approval handler (issue 21) ----------------------------------


def test_staging_on_approval_production_on_promotion_and_a_stage_rejection_rolls_back_that_stage_only(staged_env):
    env = staged_env
    v1, v2 = env.register(), env.register(model="b")
    env.approve_only(v1)
    assert env.handle_stages(env.event(v1, "Approved"))["ok"]
    assert env.running() == {"staging": v1, "production": None}
    env.promote(v1)
    assert env.handle_stages(env.lifecycle_event(v1))["ok"]
    assert env.running() == {"staging": v1, "production": v1}
    env.approve_only(v2)
    env.handle_stages(env.event(v2, "Approved"))
    env.promote(v2)
    env.handle_stages(env.lifecycle_event(v2))
    assert env.running() == {"staging": v2, "production": v2} and env.served_version() == v2
    env.promote(v2, "Rejected")  # `greenlight models reject 2 --stage production`
    result = env.handle_stages(env.lifecycle_event(v2, "Rejected"))
    assert result["ok"] and [s["stage"] for s in result["report"]["stages"]] == ["staging", "production"]
    assert env.running() == {"staging": v2, "production": v1} and env.served_version() == v1
    # the registry's own construct holds it (on moto: tests/support/moto_sagemaker.py keeps ModelLifeCycle)
    assert env.registry.get(env.group, v2).lifecycle.to_request() == {"Stage": "production", "StageStatus": "Rejected"}


def test_approval_and_lifecycle_events_out_of_order_and_duplicated_across_stages_converge(staged_env):
    """The registry decides, never the event: every delivery order of two approvals and two promotions, each
    delivered twice, ends with each stage on its gate's version, and a replay once there writes nothing."""
    import random

    env = staged_env
    v1, v2 = env.register(), env.register(model="b")
    for v in (v1, v2):
        env.approve_only(v)
    env.promote(v1)  # v2 approved (staging runs it), v1 promoted (production runs it)
    delivered = [env.event(v1, "Approved"), env.event(v2, "Approved"), env.lifecycle_event(v1)] * 2
    random.Random(21).shuffle(delivered)
    for event in delivered:
        result = env.handle_stages(event)
        assert result["status"] == "reconciled" and result["ok"], result
        assert len(result["report"]["stages"]) == 2
    assert env.running() == {"staging": v2, "production": v1} and env.served_version() == v1
    writes = env.target_writes()
    for event in reversed(delivered):
        replay = env.handle_stages(event)
        assert [r["action"] for r in replay["report"]["results"]] == ["none", "none"], replay
    assert env.target_writes() == writes and env.running() == {"staging": v2, "production": v1}
