"""The batch target follows approvals, on both adapters, through the approval handler and the canned events.

GIVEN a batch world (tests/support/deploy_env_batch.py: the local schedule mirror under a tmp
GREENLIGHT_HOME, or EventBridge Scheduler on moto's HTTP server, extended in this process to run
transform jobs with the model's serving code) WHEN approvals and rejections arrive as the canned
EventBridge events THEN the schedule names v1, then v2, a replay makes no write call, a rejection
moves it back to v1, and with nothing approved it is DISABLED.

moto's EventBridge Scheduler stores schedules but never fires them: on AWS what is shown is the
schedule's Input (the CreateTransformJob request its next run sends, checked against botocore's
shape, its ModelName followed to the model package). Locally the schedule is also fired, by the
local scheduler (`greenlight batch scheduler`'s run_due), and its job runs the approved version.
"""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest

from deploy.batch.aws_requests import previous_model
from greenlight.errors import ConfigurationError
from tests.contract.conftest import only_target
from tests.support.deploy_env import deploy

BATCH_WORLDS = [("local", "batch"), ("aws", "batch")]
batch_worlds = pytest.mark.parametrize("deploy_env", BATCH_WORLDS, ids=["local-batch", "aws-batch"], indirect=True)


@batch_worlds
def test_the_schedule_follows_approvals_replays_write_nothing_and_nothing_approved_disables_it(deploy_env):
    env = deploy_env
    v1, v2 = env.register(), env.register(model="b")
    env.approve(v1)
    assert env.handle(env.event(v1, "Approved"))["ok"]
    assert env.served_version() == v1  # approve -> the schedule's next run uses v1

    env.approve(v2)
    assert env.handle(env.event(v2, "Approved"))["ok"]
    assert env.served_version() == v2  # approve v2 -> v2

    writes = env.target_writes()
    for event in (env.event(v2, "Approved"), env.event(v1, "Approved"), env.event(v2, "Approved")):
        assert [r["action"] for r in env.handle(event)["report"]["results"]] == ["none"]
    assert env.target_writes() == writes  # replays and late events: no write call to the scheduler

    env.reject(v2)
    [back] = env.handle(env.event(v2, "Rejected"))["report"]["results"]
    assert (back["action"], back["running"], back["desired"], back["ok"]) == ("deploy", v2, v1, True)
    assert env.served_version() == v1  # reject v2 -> v1

    env.reject(v1)
    [stopped] = env.handle(env.event(v1, "Rejected"))["report"]["results"]
    assert stopped["action"] == "stop" and stopped["ok"] and "DISABLED" in stopped["message"]
    assert env.served_version() is None  # nothing approved -> disabled (its Input kept)
    observed = env.target.observe()
    assert (observed.version, observed.active, observed.detail["state"]) == (v1, False, "DISABLED")


@batch_worlds
def test_a_changed_setting_is_drift_and_the_next_reconcile_replaces_the_schedule(deploy_env, monkeypatch):
    env = deploy_env
    v1 = env.register()
    env.approve(v1)
    env.handle(env.event(v1, "Approved"))
    monkeypatch.setenv("GREENLIGHT_BATCH_SCHEDULE", "rate(6 hours)")
    monkeypatch.setenv("GREENLIGHT_BATCH_STRATEGY", "SingleRecord")
    target = env.reconciler().targets[0]
    observed = target.observe()
    assert observed.version == v1 and not observed.active
    assert {"ScheduleExpression", "Input.BatchStrategy"} <= set(observed.detail["drift"])
    [redeployed] = env.reconciler().reconcile().results
    assert redeployed.action.value == "deploy" and redeployed.ok, redeployed
    assert target.observe().active and env.served_version() == v1
    writes = env.target_writes()
    assert [r.action.value for r in env.reconciler().reconcile().results] == ["none"]
    assert env.target_writes() == writes


@batch_worlds
def test_the_schedule_remembers_the_model_it_ran_before(deploy_env):
    env = deploy_env
    v1, v2 = env.register(), env.register(model="b")
    for v in (v1, v2):
        env.approve(v)
        env.handle(env.event(v, "Approved"))
    schedule = _schedule(env)
    assert previous_model(schedule) is not None and f"-v{v1}-m" in previous_model(schedule)
    assert f"{env.group}/{v2}" in schedule["Description"]


def _schedule(env) -> dict:
    if env.mode == "local":
        from deploy.batch.local_schedule import read_local_schedule

        return read_local_schedule(env.home, env.target.schedule)
    from tests.contract.conftest import aws_client

    return aws_client("scheduler", env.moto_url).get_schedule(Name=env.target.schedule)


# -- local: the schedule fires ------------------------------------------------------------------------

@pytest.mark.parametrize("deploy_env", [("local", "batch")], ids=["local-batch"], indirect=True)
def test_the_local_scheduler_runs_the_approved_version(deploy_env, monkeypatch, models):
    from deploy.batch.jobs import JobStore
    from deploy.batch.local_schedule import read_local_state
    from deploy.batch.scheduler import run_due
    from tests.support.batch_models import read_floats, sklearn_predict, write_rows

    env = deploy_env
    monkeypatch.setenv("GREENLIGHT_BATCH_SCHEDULE", "rate(1 hour)")
    v1, v2 = env.register(), env.register(model="b")
    parts = {"registry": env.registry, "store": env.ws.store, "cache_dir": env.home / "model-cache", "workers": 1}
    env.approve(v1)
    env.handle(env.event(v1, "Approved"))
    _, now, _ = read_local_state(env.home, env.target.schedule)  # a rate schedule starts when it is put
    rows = write_rows(env.home / "batch" / "groups" / env.group / "input" / "rows.csv", 50, seed=3)
    [first] = run_due(env.home, now=now + timedelta(seconds=1), **parts)  # a rate schedule fires at its start
    assert (first.status, first.model_version, first.rows) == ("Completed", v1, 50)

    env.approve(v2)
    env.handle(env.event(v2, "Approved"))
    [second] = run_due(env.home, now=now + timedelta(hours=1, seconds=2), **parts)
    assert (second.status, second.model_version) == ("Completed", v2)
    out = env.home / "batch" / "groups" / env.group / "output" / second.job_id / "rows.csv.out"
    assert np.array_equal(read_floats(out), sklearn_predict(models["b"], rows))  # v2's own predictions

    env.reject(v1)
    env.reject(v2)
    env.handle(env.event(v2, "Rejected"))
    assert run_due(env.home, now=now + timedelta(hours=2, seconds=3), **parts) == []  # DISABLED: nothing runs
    assert [r.model_version for r in JobStore(env.home / "batch" / "jobs").list()] == [v2, v1]


# -- aws: the smoke transform job, prune, configuration ------------------------------------------------

aws_batch = pytest.mark.parametrize("deploy_env", [("aws", "batch")], ids=["aws-batch"], indirect=True)


@aws_batch
def test_a_smoke_job_is_found_by_its_name_and_a_failed_one_is_retried(deploy_env):
    from tests.contract.conftest import aws_client
    from tests.contract.test_endpoint_contract import release, smoke
    from tests.support.moto_batch import FAKE_BATCH

    env = deploy_env
    v1 = env.register()
    deploy(env.target, release(env, v1), smoke(env, v1))
    assert FAKE_BATCH.jobs_run == 1
    deploy(env.target, release(env, v1), smoke(env, v1))  # a reconcile that stopped waiting finds the job
    assert FAKE_BATCH.jobs_run == 1

    sagemaker = aws_client("sagemaker", env.moto_url)
    [job] = sagemaker.list_transform_jobs(NameContains="-smoke-v1-")["TransformJobSummaries"]
    assert job["TransformJobName"].endswith("-1")
    from moto.sagemaker.models import sagemaker_backends  # the first attempt failed (a capacity error, say)

    failed = sagemaker_backends["123456789012"]["us-east-1"].transform_jobs[job["TransformJobName"]]
    failed.transform_job_status, failed.failure_reason = "Failed", "CapacityError: no ml.m5.large"
    message = deploy(env.target, release(env, v1), smoke(env, v1))
    assert FAKE_BATCH.jobs_run == 2 and job["TransformJobName"][:-2] + "-2" in message


@aws_batch
def test_without_the_smoke_transform_only_the_model_and_the_request_are_checked(deploy_env, monkeypatch):
    from tests.support.moto_batch import FAKE_BATCH

    env = deploy_env
    monkeypatch.setenv("GREENLIGHT_BATCH_SMOKE_TRANSFORM", "false")
    v1 = env.register("disagree")  # its recorded predictions are wrong; nothing runs to notice
    env.approve(v1)
    [result] = env.handle(env.event(v1, "Approved"))["report"]["results"]
    assert result["ok"] and "not run (batch.smoke_transform = false)" in result["message"]
    assert FAKE_BATCH.jobs_run == 0 and env.served_version() == v1


@aws_batch
def test_prune_keeps_the_live_previous_and_endpoint_models(deploy_env, monkeypatch):
    from tests.contract.conftest import aws_client
    from tests.contract.test_endpoint_contract import release, smoke

    env = deploy_env
    versions = [env.register(model=m) for m in ("a", "b", "a", "b", "a")]
    for v in versions:
        deploy(env.target, release(env, v), smoke(env, v))
    sagemaker = aws_client("sagemaker", env.moto_url)
    models = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    assert len(models) == 5
    v1_model = next(m for m in models if "-v1-m" in m)
    sagemaker.create_endpoint_config(EndpointConfigName=f"{env.group}-v1-cdeadbeef", ProductionVariants=[
        {"VariantName": "AllTraffic", "ModelName": v1_model, "ServerlessConfig": {"MemorySizeInMB": 2048,
                                                                                   "MaxConcurrency": 5}}])
    monkeypatch.setenv("GREENLIGHT_BATCH_RETENTION", "0")
    pruned = env.reconciler().targets[0].prune(frozenset({versions[-1]}))
    left = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    # v5 live, v4 previous (the schedule's Description), v1 used by an endpoint config; v2 and v3 pruned
    assert sorted(n.split("-v")[-1].split("-")[0] for n in left) == ["1", "4", "5"], (pruned, left)
    assert len(pruned) == 2 and env.served_version() == versions[-1]


@aws_batch
def test_the_aws_schedule_carries_the_stack_s_settings(deploy_env):
    from tests.contract.conftest import aws_client
    from tests.support.deploy_env_batch import BATCH_DLQ, SCHEDULER_ROLE

    env = deploy_env
    v1 = env.register()
    env.approve(v1)
    env.handle(env.event(v1, "Approved"))
    schedule = aws_client("scheduler", env.moto_url).get_schedule(Name=f"{env.group}-batch")
    target = schedule["Target"]
    assert (schedule["State"], schedule["ScheduleExpression"], target["Arn"]) == (
        "ENABLED", "cron(0 2 * * ? *)", "arn:aws:scheduler:::aws-sdk:sagemaker:createTransformJob")
    assert (target["RoleArn"], target["DeadLetterConfig"], target["RetryPolicy"]) == (
        SCHEDULER_ROLE, {"Arn": BATCH_DLQ}, {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600})
    request = json.loads(target["Input"])
    assert request["TransformJobName"] == f"{env.group}-<aws.scheduler.execution-id>"
    assert request["TransformOutput"]["S3OutputPath"].startswith(f"s3://greenlight-test/{env.group}/batch/output/")


@pytest.mark.parametrize("unset", ["GREENLIGHT_BATCH_ROLE_ARN", "GREENLIGHT_BATCH_INPUT", "GREENLIGHT_BATCH_OUTPUT",
                                   "GREENLIGHT_BATCH_DEAD_LETTER_ARN", "GREENLIGHT_ENDPOINT_ROLE_ARN"])
def test_the_aws_batch_target_names_every_missing_setting_at_once(unset, monkeypatch, tmp_path):
    from greenlight.workspace import Workspace
    from tests.support.deploy_env_batch import aws_batch_environment

    only_target("batch", monkeypatch)
    env = {**aws_batch_environment(), "GREENLIGHT_ENDPOINT_ROLE_ARN": "arn:aws:iam::123456789012:role/x",
           "GREENLIGHT_STATE_TABLE": "t"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(unset)
    monkeypatch.delenv("GREENLIGHT_BATCH_DEAD_LETTER_ARN", raising=False)  # two missing: both named in one error
    ws = Workspace.open("aws", home=tmp_path, region="us-east-1", environ={})
    with pytest.raises(ConfigurationError) as caught:
        ws.reconciler(ws.deploy_config())
    message = str(caught.value)
    assert message.startswith("the batch target on AWS needs ") and message.endswith("or set batch.enabled = false")
    assert unset in message and "GREENLIGHT_BATCH_DEAD_LETTER_ARN" in message
    monkeypatch.setenv("GREENLIGHT_BATCH_INPUT", "/local/folder")  # a local folder is not an S3 prefix
    if unset != "GREENLIGHT_BATCH_INPUT":
        with pytest.raises(ConfigurationError, match=r"batch.input \(GREENLIGHT_BATCH_INPUT\): an s3:// prefix"):
            ws.reconciler(ws.deploy_config())


def test_a_group_too_long_for_a_job_name_prefix_gets_a_derived_one_when_the_target_is_built(monkeypatch, tmp_path):
    """Issue 20: the prefix is derived from the group by deploy/names.py (its head and a hash), never refused."""
    from deploy.names import GroupNames
    from greenlight.workspace import Workspace
    from tests.support.deploy_env_batch import aws_batch_environment

    only_target("batch", monkeypatch)
    for name, value in {**aws_batch_environment(), "GREENLIGHT_ENDPOINT_ROLE_ARN": "arn:aws:iam::123456789012:role/x",
                        "GREENLIGHT_STATE_TABLE": "t"}.items():
        monkeypatch.setenv(name, value)
    ws = Workspace.open("aws", home=tmp_path, region="us-east-1", environ={})
    [target] = ws.reconciler(ws.deploy_config(group="a-model-package-group-of-30-ch")).targets
    assert target.config.job_name_prefix == GroupNames("a-model-package-group-of-30-ch").job_prefix
    assert len(target.config.job_name_prefix) <= 26
    monkeypatch.setenv("GREENLIGHT_BATCH_JOB_NAME_PREFIX", "churn")
    [target] = ws.reconciler(ws.deploy_config(group="a-model-package-group-of-30-ch")).targets
    assert (target.schedule, target.config.job_name_prefix) == ("a-model-package-group-of-30-ch-batch", "churn")
