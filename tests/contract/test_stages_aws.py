"""Staged promotion on AWS (issue 21), against moto's HTTP server: the approval Lambda's entry point, configured
only by variables, deploys each stage's endpoint (named from the stage's key) and a stage with `role_arn`
into the other account, through STS AssumeRole (moto keeps one backend per account id)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from greenlight.registry import SageMakerModelRegistry
from greenlight.registry.model import ApprovalStatus, ModelLifeCycle
from tests.contract.conftest import aws_client
from tests.contract.test_endpoint_aws_handler import GROUP, RUN, approved, lambda_environment  # noqa: F401
from tests.support.deploy_env import canned_event
from tests.support.deploy_env_aws import ACCOUNT, REGION

OTHER_ACCOUNT = "222222222222"
DEPLOYER = f"arn:aws:iam::{OTHER_ACCOUNT}:role/handler-models-production-deploy"  # deploy/target-account.yaml
MODELS_THERE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/handler-models-production-sagemaker"


def in_account(service: str, moto_url: str, account: str):
    """A client acting in `account` (moto: credentials from AssumeRole into a role there)."""
    import boto3

    found = aws_client("sts", moto_url).assume_role(RoleArn=f"arn:aws:iam::{account}:role/reader",
                                                    RoleSessionName="test")["Credentials"]
    return boto3.client(service, region_name=REGION, endpoint_url=moto_url, aws_access_key_id=found["AccessKeyId"],
                        aws_secret_access_key=found["SecretAccessKey"], aws_session_token=found["SessionToken"])


def handler(moto_url: str, event: dict, tmp_path) -> dict:
    env = {**lambda_environment(moto_url), "GREENLIGHT_STAGES": "staging,production",
           "GREENLIGHT_STAGES_STAGING_GATE": "approval", "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion",
           "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": DEPLOYER,
           "GREENLIGHT_STAGES_PRODUCTION_ENDPOINT_ROLE_ARN": MODELS_THERE}
    proc = subprocess.run([sys.executable, "-c", RUN, json.dumps(event)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])["result"]


def endpoints(client) -> list[str]:
    return sorted(e["EndpointName"] for e in client.list_endpoints()["Endpoints"])


def test_each_stage_deploys_its_own_endpoint_and_production_into_the_other_account(approved, tmp_path):  # noqa: F811
    moto_url, v1 = approved
    here, there = aws_client("sagemaker", moto_url), in_account("sagemaker", moto_url, OTHER_ACCOUNT)
    assert in_account("sts", moto_url, OTHER_ACCOUNT).get_caller_identity()["Account"] == OTHER_ACCOUNT

    # GIVEN v1 Approved WHEN its approval event arrives THEN staging deploys it here; production waits
    result = handler(moto_url, canned_event(GROUP, 1, "Approved", v1.arn, ACCOUNT, REGION), tmp_path)
    assert result["status"] == "reconciled" and result["ok"], result
    assert [(s["stage"], [(r["target"], r["action"], r["desired"]) for r in s["results"]])
            for s in result["report"]["stages"]] == [("staging", [("endpoint", "deploy", 1)]),
                                                     ("production", [("endpoint", "none", None)])]
    assert endpoints(here) == [f"{GROUP}-staging"] and endpoints(there) == []

    # WHEN v1 is promoted to production THEN production's endpoint is created in the other account only
    SageMakerModelRegistry(here).update_lifecycle(GROUP, 1, ModelLifeCycle("production", "Approved"))
    lifecycle = canned_event(GROUP, 1, "Approved", v1.arn, ACCOUNT, REGION)
    lifecycle["detail"]["ModelLifeCycle"] = {"Stage": "production", "StageStatus": "Approved"}
    result = handler(moto_url, lifecycle, tmp_path)
    assert result["status"] == "reconciled" and result["ok"], result
    assert endpoints(here) == [f"{GROUP}-staging"]
    assert endpoints(there) == [f"{GROUP}-production"]
    # its models run as the execution role of the other account; staging's as the one here
    [model] = there.list_models()["Models"]
    assert there.describe_model(ModelName=model["ModelName"])["ExecutionRoleArn"] == MODELS_THERE
    [model] = here.list_models()["Models"]
    assert OTHER_ACCOUNT not in here.describe_model(ModelName=model["ModelName"])["ExecutionRoleArn"]


# -- a stage's Lambda and schedule exist on AWS only as the deploy stack provides them (deploy/stage_resources.py)

def test_a_stage_lambda_the_stack_did_not_create_is_refused_before_any_change(moto_endpoint, monkeypatch, capsys):
    """GIVEN [stages.staging] with lambda = true and no function <group>-staging WHEN the engine for AWS is built
    (the handler's cold start, any CLI command on AWS) THEN one ConfigurationError names the stage, the target and
    the fix, and nothing was created; once the function exists (the stack made it) the same configuration builds."""
    from greenlight.cli import main
    from greenlight.errors import ConfigurationError
    from greenlight.workspace import Workspace
    from tests.support.deploy_env_aws import ROLE, aws_environment

    for name, value in {**aws_environment(moto_endpoint), "GREENLIGHT_STAGES": "staging,production",
                        "GREENLIGHT_STAGES_STAGING_GATE": "approval", "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion",
                        "GREENLIGHT_STAGES_STAGING_LAMBDA": "true", "GREENLIGHT_LAMBDA_ECR_REPOSITORY": "repo",
                        "GREENLIGHT_LAMBDA_BASE_IMAGE_TAG": "base-test"}.items():
        monkeypatch.setenv(name, value)
    ws = Workspace.open("aws")
    expected = (f"stage staging: lambda is enabled but its function {GROUP}-staging does not exist: run `greenlight "
                "stack deploy` with [stages.staging] lambda = true in greenlight.toml (the deploy stack provides a "
                "stage's lambda only for the stages it is deployed with), or set lambda = false in [stages.staging]")
    with pytest.raises(ConfigurationError) as refused:
        ws.reconciler(ws.deploy_config(group=GROUP))
    assert str(refused.value) == expected
    assert main(["deploy", "--target", "aws", "--group", GROUP]) == 2
    assert expected in capsys.readouterr().err
    lam = aws_client("lambda", moto_endpoint)
    assert lam.list_functions()["Functions"] == [] and endpoints(aws_client("sagemaker", moto_endpoint)) == []

    aws_client("iam", moto_endpoint).create_role(RoleName=ROLE.rsplit("/", 1)[-1], AssumeRolePolicyDocument="{}")
    lam.create_function(FunctionName=f"{GROUP}-staging", Role=ROLE, PackageType="Image",
                        Code={"ImageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/repo:base-test"})
    stages = ws.reconciler(ws.deploy_config(group=GROUP)).stages
    assert [(stage.name, [t.name for t in engine.targets]) for stage, engine in stages] == [
        ("staging", ["endpoint", "lambda"]), ("production", ["endpoint"])]


# -- a stage's Lambda in another account: deploy/target-account.yaml with Lambda=true (docs/decisions/0056) -------

@pytest.fixture
def cross(moto_endpoint, lambda_registry, models, tmp_path, monkeypatch):
    """The staged world with production's Lambda in the other account, its target stack deployed in two steps
    (tests/support/deploy_env_cross_account.py); a group of its own, so its repositories are new."""
    import uuid

    from tests.contract.conftest import only_target
    from tests.support.deploy_env_cross_account import AwsCrossAccountLambdaDeployEnv

    only_target("lambda", monkeypatch)
    env = AwsCrossAccountLambdaDeployEnv(moto_endpoint, lambda_registry.url, tmp_path / "home", models, monkeypatch,
                                         f"xacct-{uuid.uuid4().hex[:8]}")
    try:
        yield env
    finally:
        env.close()


def test_a_stage_lambda_in_another_account_gets_the_base_image_then_runs_what_the_stage_deploys(cross):
    from deploy.image.manifest import ACCEPT
    from tests.support.lambda_world import BASE

    env, key = cross, cross.key
    repository = key.lower()
    # GIVEN the target stack deployed with Lambda=true alone THEN building the engine refused the stage in one line
    # naming the tag, after copying the base image into the stage's repository there (the same image, by digest)
    assert env.refusal == (
        f"stage production: lambda is enabled but account {OTHER_ACCOUNT} has no function {key} yet: its base "
        f"image is now in the repository {repository} there; deploy deploy/target-account.yaml (StageKey={key}) "
        f"in account {OTHER_ACCOUNT} with Lambda=true and LambdaBaseImageTag={BASE}, or set lambda = false in "
        "[stages.production]")
    registry = env.world.registry()
    assert registry.manifest_digest(repository, BASE, ACCEPT) == registry.manifest_digest(env.world.repository, BASE,
                                                                                          ACCEPT) is not None
    ecr_there = env.there["ecr"]
    assert [i["imageTags"] for i in ecr_there.describe_images(repositoryName=repository)["imageDetails"]] == [[BASE]]
    # AND with the tag the stack made the function there, on that image, with its alias; none of it here
    there = env.there["lambda"]
    assert there.get_function(FunctionName=key)["Code"]["ImageUri"].endswith(f"/{repository}:{BASE}")
    assert there.get_alias(FunctionName=key, Name="live")["FunctionVersion"] == "1"
    assert f"{env.group}-staging" in env.functions_here() and key not in env.functions_here()

    # WHEN v1 is approved and promoted THEN production's Lambda in the other account runs it, pushed there
    v1, v2 = env.register(), env.register(model="b")
    env.approve(v1)
    assert env.handle_stages(env.lifecycle_event(v1))["ok"]
    assert env.running() == {"staging": v1, "production": v1} and env.served_version() == v1
    live = there.get_alias(FunctionName=key, Name="live")["FunctionVersion"]
    image = there.get_function(FunctionName=key, Qualifier=live)["Code"]["ImageUri"]
    assert f"/{repository}@sha256:" in image  # the stage's repository in that account, by digest
    tags = {t for i in ecr_there.describe_images(repositoryName=repository)["imageDetails"] for t in i["imageTags"]}
    assert tags == {BASE, f"{key}-v{v1}"}
    assert key not in env.functions_here()
    # WHEN v2 is promoted THEN it moves there; WHEN rejected in production THEN production goes back to v1 there
    env.approve(v2)
    assert env.handle_stages(env.lifecycle_event(v2))["ok"]
    assert env.running() == {"staging": v2, "production": v2} and env.served_version() == v2
    env.promote(v2, "Rejected")
    assert env.handle_stages(env.lifecycle_event(v2, "Rejected"))["ok"]
    assert env.running() == {"staging": v2, "production": v1} and env.served_version() == v1
    assert there.get_alias(FunctionName=key, Name="live")["FunctionVersion"] == live


def test_a_stage_lambda_whose_target_stack_has_no_lambda_is_refused_before_any_change(moto_endpoint, monkeypatch,
                                                                                      capsys):
    """GIVEN production with role_arn and lambda = true, and its target-account.yaml stack deployed without the
    Lambda (Lambda=false, the default) WHEN the engine for AWS is built (the handler's cold start, any CLI command)
    THEN one ConfigurationError names the stage, the account, the template and its parameter, and nothing was
    created in either account."""
    from greenlight.cli import main
    from greenlight.errors import ConfigurationError
    from greenlight.workspace import Workspace
    from tests.support.deploy_env_aws import aws_environment
    from tests.support.deploy_env_cross_account import deploy_target_stack, in_account

    key = f"{GROUP}-production"
    deploy_target_stack(moto_endpoint, GROUP, key)  # the roles only, as before this decision
    role = f"arn:aws:iam::{OTHER_ACCOUNT}:role/{key}-deploy"
    for name, value in {**aws_environment(moto_endpoint), "GREENLIGHT_STAGES": "staging,production",
                        "GREENLIGHT_STAGES_STAGING_GATE": "approval", "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion",
                        "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "true", "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": role,
                        "GREENLIGHT_STAGES_PRODUCTION_ENDPOINT_ROLE_ARN": MODELS_THERE,
                        "GREENLIGHT_LAMBDA_ECR_REPOSITORY": "repo", "GREENLIGHT_LAMBDA_BASE_IMAGE_TAG": "base-test"}.items():
        monkeypatch.setenv(name, value)
    ws = Workspace.open("aws")
    expected = (f"stage production: lambda is enabled but account {OTHER_ACCOUNT} has no function {key} its role may "
                f"manage: deploy deploy/target-account.yaml (StageKey={key}) in account {OTHER_ACCOUNT} with "
                "Lambda=true, then again with LambdaBaseImageTag=base-test (the handler copies the base image into "
                f"{key} in between), or set lambda = false in [stages.production]")
    with pytest.raises(ConfigurationError) as refused:
        ws.reconciler(ws.deploy_config(group=GROUP))
    assert str(refused.value) == expected
    assert main(["deploy", "--target", "aws", "--group", GROUP]) == 2
    assert expected in capsys.readouterr().err
    for client in (aws_client("lambda", moto_endpoint), in_account("lambda", moto_endpoint)):
        assert client.list_functions()["Functions"] == []
    assert in_account("ecr", moto_endpoint).describe_repositories()["repositories"] == []
    assert endpoints(aws_client("sagemaker", moto_endpoint)) == endpoints(in_account("sagemaker", moto_endpoint)) == []


# -- a stage's batch schedule in another account: deploy/target-account.yaml with Batch=true (decision 0059) ------

BATCH_KEY = f"{GROUP}-production"
DATA_THERE = "churn-data-222222222222"  # the stage's data bucket, in the target account


def batch_stack(moto_url: str, **parameters: str) -> dict[str, str]:
    """production's target-account.yaml stack in the other account (an operator's deploy); its outputs."""
    from tests.support.deploy_env_cross_account import deploy_target_stack

    return deploy_target_stack(moto_url, GROUP, BATCH_KEY, **parameters)


def batch_parameters() -> dict[str, str]:
    from deploy.names import GroupNames

    return {"Batch": "true", "BatchJobNamePrefix": GroupNames(BATCH_KEY).job_prefix,
            "BatchInput": f"s3://{DATA_THERE}/batch/input/", "BatchOutput": f"s3://{DATA_THERE}/batch/output/"}


def batch_handler(moto_url: str, event: dict, tmp_path, outputs: dict[str, str]) -> dict:
    """The approval handler with staging's endpoint here and production's batch schedule in the other account."""
    stage = {"GREENLIGHT_STAGES_PRODUCTION_ENDPOINT": "false", "GREENLIGHT_STAGES_PRODUCTION_BATCH": "true",
             "GREENLIGHT_STAGES_PRODUCTION_BATCH_ROLE_ARN": outputs["SchedulerRoleArn"],
             "GREENLIGHT_STAGES_PRODUCTION_BATCH_DEAD_LETTER_ARN": outputs["BatchDeadLetterQueueArn"],
             "GREENLIGHT_STAGES_PRODUCTION_BATCH_INPUT": batch_parameters()["BatchInput"],
             "GREENLIGHT_STAGES_PRODUCTION_BATCH_OUTPUT": batch_parameters()["BatchOutput"],
             # moto runs no transform job here: the stage checks the Model and the job request (decision 0059)
             "GREENLIGHT_BATCH_SMOKE_TRANSFORM": "false"}
    env = {**lambda_environment(moto_url), "GREENLIGHT_STAGES": "staging,production",
           "GREENLIGHT_STAGES_STAGING_GATE": "approval", "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion",
           "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": DEPLOYER, "GREENLIGHT_STAGES_PRODUCTION_ENDPOINT_ROLE_ARN": MODELS_THERE,
           **stage}
    proc = subprocess.run([sys.executable, "-c", RUN, json.dumps(event)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])["result"]


def scheduled_model(scheduler, name: str) -> tuple[str, str]:
    """(State, the ModelName its next run's transform job would use)."""
    schedule = scheduler.get_schedule(Name=name)
    return schedule["State"], json.loads(schedule["Target"]["Input"])["ModelName"]


def test_a_stage_schedule_in_another_account_moves_with_approve_promote_and_reject(approved, tmp_path):  # noqa: F811
    from deploy.names import GroupNames
    from tests.contract.test_endpoint_aws_handler import BUCKET, SMOKE, SMOKE_KEY
    from tests.support.moto_sagemaker import FAKE

    moto_url, v1 = approved
    outputs = batch_stack(moto_url, **batch_parameters())
    assert outputs["DeployRoleArn"] == DEPLOYER and outputs["ExecutionRoleArn"] == MODELS_THERE
    assert outputs["SchedulerRoleArn"] == f"arn:aws:iam::{OTHER_ACCOUNT}:role/{BATCH_KEY}-scheduler"
    assert f":{OTHER_ACCOUNT}:{BATCH_KEY}-batch-dlq" in outputs["BatchDeadLetterQueueArn"]
    here, there = aws_client("scheduler", moto_url), in_account("scheduler", moto_url, OTHER_ACCOUNT)
    sagemaker_there = in_account("sagemaker", moto_url, OTHER_ACCOUNT)
    schedule = GroupNames(BATCH_KEY).batch_schedule
    registry = SageMakerModelRegistry(aws_client("sagemaker", moto_url))
    aws_client("s3", moto_url).put_object(Bucket=BUCKET, Key="v2/smoke.json", Body=json.dumps(SMOKE).encode())
    v2 = registry.create_model_package({
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {"Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": f"s3://{BUCKET}/v2/m.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]},
        "CustomerMetadataProperties": {SMOKE_KEY: f"s3://{BUCKET}/v2/smoke.json"}})
    FAKE.answer(v2.arn, json.dumps({"predictions": SMOKE["predictions"]}))  # staging's endpoint smoke test

    def event(version, arn, status="Approved"):
        found = canned_event(GROUP, version, "Approved", arn, ACCOUNT, REGION)
        found["detail"]["ModelLifeCycle"] = {"Stage": "production", "StageStatus": status}
        return found

    # GIVEN v1 Approved WHEN its event arrives THEN staging deploys; production's schedule is not created anywhere
    result = batch_handler(moto_url, canned_event(GROUP, 1, "Approved", v1.arn, ACCOUNT, REGION), tmp_path, outputs)
    assert result["ok"], json.dumps(result)[-3000:]
    assert here.list_schedules()["Schedules"] == there.list_schedules()["Schedules"] == []
    # WHEN v1 is promoted THEN production's schedule exists in the other account only, on its Model there
    registry.update_lifecycle(GROUP, 1, ModelLifeCycle("production", "Approved"))
    result = batch_handler(moto_url, event(1, v1.arn), tmp_path, outputs)
    assert result["ok"], json.dumps(result)[-3000:]
    assert [s["Name"] for s in there.list_schedules()["Schedules"]] == [schedule]
    assert here.list_schedules()["Schedules"] == []
    state, model = scheduled_model(there, schedule)
    assert state == "ENABLED" and model.lower().startswith(f"{BATCH_KEY}-v1".lower())
    assert sagemaker_there.describe_model(ModelName=model)["ExecutionRoleArn"] == MODELS_THERE
    found = there.get_schedule(Name=schedule)
    assert found["Target"]["RoleArn"] == outputs["SchedulerRoleArn"]
    assert found["Target"]["DeadLetterConfig"]["Arn"] == outputs["BatchDeadLetterQueueArn"]
    job = json.loads(found["Target"]["Input"])
    assert job["TransformJobName"].startswith(f"{GroupNames(BATCH_KEY).job_prefix}-")
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == batch_parameters()["BatchInput"]
    assert job["TransformOutput"]["S3OutputPath"].startswith(batch_parameters()["BatchOutput"])
    # WHEN v2 is approved and promoted THEN the schedule moves to v2 there; WHEN rejected there THEN back to v1
    registry.update_status(GROUP, v2.version, ApprovalStatus.APPROVED)
    registry.update_lifecycle(GROUP, v2.version, ModelLifeCycle("production", "Approved"))
    result = batch_handler(moto_url, event(v2.version, v2.arn), tmp_path, outputs)
    assert result["ok"], json.dumps(result)[-3000:]
    assert scheduled_model(there, schedule)[1].lower().startswith(f"{BATCH_KEY}-v{v2.version}".lower())
    registry.update_lifecycle(GROUP, v2.version, ModelLifeCycle("production", "Rejected"))
    assert batch_handler(moto_url, event(v2.version, v2.arn, "Rejected"), tmp_path, outputs)["ok"]
    assert scheduled_model(there, schedule) == ("ENABLED", model)
    assert here.list_schedules()["Schedules"] == []
    assert not [m for m in aws_client("sagemaker", moto_url).list_models()["Models"]
                if m["ModelName"].lower().startswith(BATCH_KEY.lower())]


def test_a_stage_schedule_whose_target_stack_has_no_batch_is_refused_before_any_change(approved, monkeypatch,  # noqa: F811
                                                                                       capsys):
    """GIVEN production with role_arn and batch = true, and its target-account.yaml stack deployed without Batch
    (the default) WHEN the engine for AWS is built THEN one ConfigurationError names the stage, the account, the
    template and its parameters (no `greenlight stack deploy`: that stack is not the one), nothing created in either
    account; with Batch=true but the stage's settings still the group's, one line names the outputs to set."""
    from deploy.names import GroupNames
    from greenlight.cli import main
    from greenlight.errors import ConfigurationError
    from greenlight.workspace import Workspace
    from tests.support.deploy_env_aws import aws_environment

    moto_url, _ = approved
    batch_stack(moto_url)  # the roles only
    for name, value in {**aws_environment(moto_url), "GREENLIGHT_STAGES": "staging,production",
                        "GREENLIGHT_STAGES_STAGING_GATE": "approval", "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion",
                        "GREENLIGHT_STAGES_PRODUCTION_BATCH": "true", "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": DEPLOYER,
                        "GREENLIGHT_STAGES_PRODUCTION_ENDPOINT_ROLE_ARN": MODELS_THERE,
                        "GREENLIGHT_BATCH_ROLE_ARN": f"arn:aws:iam::{ACCOUNT}:role/{GROUP}-scheduler",
                        "GREENLIGHT_BATCH_DEAD_LETTER_ARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{GROUP}-batch-dlq",
                        "GREENLIGHT_BATCH_INPUT": "s3://registry-bucket/in/",
                        "GREENLIGHT_BATCH_OUTPUT": "s3://registry-bucket/out/"}.items():
        monkeypatch.setenv(name, value)
    ws = Workspace.open("aws")
    prefix = GroupNames(BATCH_KEY).job_prefix
    expected = (f"stage production: batch is enabled but account {OTHER_ACCOUNT} has no schedule {BATCH_KEY}-batch "
                f"its role may manage: deploy deploy/target-account.yaml (StageKey={BATCH_KEY}) in account "
                f"{OTHER_ACCOUNT} with Batch=true BatchJobNamePrefix={prefix} BatchInput=<s3:// prefix> "
                "BatchOutput=<s3:// prefix>, then set [stages.production] batch_role_arn, batch_dead_letter_arn, "
                "batch_input and batch_output to its SchedulerRoleArn, BatchDeadLetterQueueArn, BatchInput and "
                "BatchOutput, or set batch = false in [stages.production]")
    with pytest.raises(ConfigurationError) as refused:
        ws.reconciler(ws.deploy_config(group=GROUP))
    assert str(refused.value) == expected and "\n" not in expected
    assert main(["deploy", "--target", "aws", "--group", GROUP]) == 2
    assert expected in capsys.readouterr().err
    for client in (aws_client("scheduler", moto_url), in_account("scheduler", moto_url, OTHER_ACCOUNT)):
        assert client.list_schedules()["Schedules"] == []
    for client in (aws_client("sagemaker", moto_url), in_account("sagemaker", moto_url, OTHER_ACCOUNT)):
        assert client.list_models()["Models"] == [] and endpoints(client) == []

    # WHEN the stack gets Batch=true but the stage still has the group's settings THEN one line names what to set
    outputs = batch_stack(moto_url, **batch_parameters())
    with pytest.raises(ConfigurationError) as refused:
        Workspace.open("aws").reconciler(ws.deploy_config(group=GROUP))
    assert str(refused.value) == (
        f"stage production: batch is enabled in account {OTHER_ACCOUNT} but its batch settings are not that "
        f"account's: set [stages.production] batch_role_arn = {outputs['SchedulerRoleArn']!r} (SchedulerRoleArn), "
        "batch_dead_letter_arn (BatchDeadLetterQueueArn), batch_input (BatchInput), batch_output (BatchOutput) from "
        f"its deploy/target-account.yaml stack (StageKey={BATCH_KEY}), or set batch = false in [stages.production]")
    assert in_account("scheduler", moto_url, OTHER_ACCOUNT).list_schedules()["Schedules"] == []
