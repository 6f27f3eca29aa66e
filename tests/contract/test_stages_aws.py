"""Staged promotion on AWS (issue 21), against moto's HTTP server: the approval Lambda's entry point, configured
only by variables, deploys each stage's endpoint (named from the stage's key) and a stage with `role_arn`
into the other account, through STS AssumeRole (moto keeps one backend per account id)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from greenlight.registry import SageMakerModelRegistry
from greenlight.registry.model import ModelLifeCycle
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
