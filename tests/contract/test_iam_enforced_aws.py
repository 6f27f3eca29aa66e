"""The approval scenario with IAM enforced: the handler runs as the role deploy/template.yaml gives it.

moto's server authorizes every request inside `enforcing()` (INITIAL_NO_AUTH_ACTION_COUNT, set through
/moto-api/reset-auth), extended in this process to judge each service's requests on their ARNs
(tests/support/moto_iam.py). The roles are the template's own: ApprovalHandlerRole and SchedulerRole with
their inline policies as CloudFormation would create them for this test's group and bucket
(tests/support/cfn_eval.py), created in moto's IAM and assumed through STS. First each service the handler
uses answers one allowed and one denied call; then an approval is handled through deploy.handler.handle
(what the Lambda entry point calls) by the endpoint and batch worlds of the scenario suites, and the
schedule's CreateTransformJob request is sent as the Scheduler role; with one statement removed, the same
step fails with AccessDenied; `greenlight promote` runs as PromoterRole (issue 21); a stage Lambda in another account is managed as
deploy/target-account.yaml's DeployRole there (decision 0056). The Lambda target's world names its ECR repository per test (moto's ECR is
emptied between tests), so only its services' preflight runs here.

moto does not evaluate: ArnLike conditions (sagemaker:ModelArn), permissions boundaries, iam:PassRole
(no API call of its own), the lower case SageMaker writes in ARNs; those are in the static proofs
(tests/unit/test_templates_permissions.py, test_templates_iam.py) or noted in docs/aws-behaviour.md.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from deploy.names import GroupNames
from tests.contract.conftest import aws_client, only_target
from tests.support.cfn_eval import evaluate
from tests.support.deploy_env import GROUP
from tests.support.moto_iam import enforcing, install
from tests.support.templates import TEMPLATE, load

BUCKET = "greenlight-test"  # the scenario worlds' artifact bucket
NAMES = GroupNames(GROUP)
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]})


def template_roles(environ: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """{logical id: role properties} of deploy/template.yaml for GROUP, as `greenlight stack deploy` sets it
    (with a stage gated by promotion, so the promoter role is there too; with `environ`'s [stages], their
    per-stage roles and inline policies, each AWS::IAM::RolePolicy folded into the role it names)."""
    from deploy.config import load_config
    from deploy.stack_parameters import template_parameters

    parameters = {**template_parameters(load_config(environ=environ or {}, group=GROUP)), "HandlerS3Bucket": BUCKET,
                  "HandlerS3Key": "h.zip", "ArtifactBucket": BUCKET, "LambdaBaseImageTag": "base-test",
                  "PromotionStages": "production"}
    stack = evaluate(load(TEMPLATE), parameters, stack_name=NAMES.stacks[1])
    roles = {name: dict(r.properties) for name, r in stack.resources.items() if r.type == "AWS::IAM::Role"}
    for r in stack.resources.values():
        if r.type == "AWS::IAM::RolePolicy":
            [role] = [p for p in roles.values() if p["RoleName"] == r.properties["RoleName"]]
            role["Policies"] = [*role.get("Policies", []), {k: r.properties[k] for k in ("PolicyName",
                                                                                          "PolicyDocument")}]
    return roles


def create_role(moto_url: str, role: dict[str, Any], without: str | None = None) -> dict[str, str]:
    """The role in moto's IAM with its inline policies (less the statement `without`); its STS credentials."""
    iam = aws_client("iam", moto_url)
    try:
        iam.create_role(RoleName=role["RoleName"], Path=role["Path"], AssumeRolePolicyDocument=TRUST)
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    for policy in role["Policies"]:
        document = dict(policy["PolicyDocument"])
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != without]
        if not document["Statement"]:
            continue  # its only statement removed: the policy is not there
        iam.put_role_policy(RoleName=role["RoleName"], PolicyName=policy["PolicyName"],
                            PolicyDocument=json.dumps(document))
    arn = f"arn:aws:iam::123456789012:role{role['Path']}{role['RoleName']}"
    creds = aws_client("sts", moto_url).assume_role(RoleArn=arn, RoleSessionName="greenlight-test")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]}


def client_as(service: str, moto_url: str, creds: dict[str, str]):
    import boto3
    from botocore.config import Config

    return boto3.client(service, region_name="us-east-1", endpoint_url=moto_url,
                        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                        aws_session_token=creds["AWS_SESSION_TOKEN"], config=Config(retries={"total_max_attempts": 1}))


def code_of(call) -> str:
    """"OK", "AccessDenied", or the error code of another failure. (moto answers a denied JSON-protocol call
    with an XML error body, which botocore reports as code "403"; the message says who was refused what.)"""
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        refused = code in ("AccessDenied", "AccessDeniedException") or "is not authorized to perform" in str(exc)
        return "AccessDenied" if refused else code
    return "OK"


@pytest.fixture
def roles(moto_endpoint):
    install()
    return template_roles()


def test_each_service_allows_what_the_handler_role_names_and_denies_the_rest(moto_endpoint, roles):
    """moto authorizes each service the handler uses (with tests/support/moto_iam.py): one allowed call and one
    denied call per service, as the template's handler role. Allowed calls may fail for other reasons
    (the resource does not exist): only AccessDenied counts as denied."""
    url = moto_endpoint
    s3, sqs = aws_client("s3", url), aws_client("sqs", url)
    for bucket in (BUCKET, "someone-elses"):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=f"{GROUP}/v1/smoke.json", Body=b"{}")
    queues = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in (NAMES.queue("approval"), "other-dlq")}
    creds = create_role(url, roles["ApprovalHandlerRole"])
    key = {"pk": {"S": "lease"}}
    calls = {
        "dynamodb": lambda c, mine: c.get_item(TableName=NAMES.state_table if mine else "other-table", Key=key),
        "sagemaker": lambda c, mine: c.describe_endpoint(EndpointName=GROUP if mine else "other-endpoint"),
        "sagemaker-runtime": lambda c, mine: c.invoke_endpoint(EndpointName=GROUP if mine else "other-endpoint",
                                                               Body=b"1", ContentType="text/csv"),
        "s3": lambda c, mine: c.get_object(Bucket=BUCKET if mine else "someone-elses", Key=f"{GROUP}/v1/smoke.json"),
        "sqs": lambda c, mine: c.send_message(QueueUrl=queues[NAMES.queue("approval") if mine else "other-dlq"],
                                              MessageBody="x"),
        "lambda": lambda c, mine: c.get_function(FunctionName=NAMES.function if mine else "other-function"),
        "ecr": lambda c, mine: c.describe_images(repositoryName=NAMES.repository if mine else "other-repository"),
        "scheduler": lambda c, mine: c.get_schedule(Name=NAMES.batch_schedule if mine else "other-schedule"),
        # a canary's alarms are read (issue 22); the handler never writes one
        "cloudwatch": lambda c, mine: (c.describe_alarms(AlarmNames=[NAMES.alarm("endpoint-5xx")]) if mine else
                                       c.delete_alarms(AlarmNames=[NAMES.alarm("endpoint-5xx")])),
    }
    results = {}
    with enforcing(url):
        for service, call in calls.items():
            client = client_as(service, url, creds)
            results[service] = tuple(code_of(lambda c=client, f=call, m=mine: f(c, m)) for mine in (True, False))
    assert all(mine != "AccessDenied" and other == "AccessDenied" for mine, other in results.values()), \
        sorted(results.items())


# -- the approval scenario, as the handler role ------------------------------------------------------------


def _world(kind: str, request, moto_url: str, tmp_path, models, monkeypatch):
    only_target(kind, monkeypatch)
    if kind == "batch":
        from tests.support.deploy_env_batch import AwsBatchDeployEnv

        return AwsBatchDeployEnv(moto_url, tmp_path / "home", models, monkeypatch, GROUP)
    from tests.support.deploy_env_aws import AwsDeployEnv

    return AwsDeployEnv(moto_url, tmp_path / "home", models, monkeypatch, GROUP)


def _as_role(env, monkeypatch, creds: dict[str, str]) -> None:
    """The world's composition root again, with the role's credentials and the stack's table name."""
    from greenlight.workspace import Workspace

    for name, value in {**creds, "GREENLIGHT_STATE_TABLE": NAMES.state_table}.items():
        monkeypatch.setenv(name, value)
    env.ws = Workspace.open("aws", home=env.home)


def _state_table(moto_url: str) -> None:
    aws_client("dynamodb", moto_url).create_table(
        TableName=NAMES.state_table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")


@pytest.mark.slow
@pytest.mark.parametrize("kind, removed", [("endpoint", None), ("endpoint", "EndpointTarget"),
                                           ("batch", None), ("batch", "BatchSchedule")])
def test_an_approval_deploys_as_the_handler_role_and_fails_without_its_statement(
        kind, removed, moto_endpoint, roles, request, tmp_path, models, monkeypatch):
    env = _world(kind, request, moto_endpoint, tmp_path, models, monkeypatch)
    try:
        _state_table(moto_endpoint)
        v1 = env.register()
        env.approve(v1)
        event = env.event(v1, "Approved")  # (read with the test's own client, before IAM is enforced)
        creds = create_role(moto_endpoint, roles["ApprovalHandlerRole"], without=removed)
        _as_role(env, monkeypatch, creds)
        with enforcing(moto_endpoint):
            result = env.handle(event)
        [outcome] = result["report"]["results"]
        if removed is None:
            assert result["ok"] and (outcome["action"], outcome["desired"], outcome["ok"]) == ("deploy", v1, True), result
            assert env.served_version() == v1
        else:
            assert not result["ok"] and not outcome["ok"], result
            assert "AccessDenied" in outcome["message"] or "not authorized" in outcome["message"], outcome
            assert env.served_version() is None
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("removed, denied", [("ReadRegistry", "sagemaker:DescribeModelPackageGroup"),
                                             ("LeaseAndStatus", "dynamodb:")])
def test_without_the_registry_or_the_lease_the_invocation_fails(removed, denied, moto_endpoint, roles, tmp_path,
                                                                models, monkeypatch):
    """What every target needs failing fails the invocation itself (Lambda retries it, then the dead-letter
    queue), with AWS's AccessDenied naming the action."""
    from greenlight.errors import AwsError

    env = _world("endpoint", None, moto_endpoint, tmp_path, models, monkeypatch)
    try:
        _state_table(moto_endpoint)
        v1 = env.register()
        env.approve(v1)
        event = env.event(v1, "Approved")
        _as_role(env, monkeypatch, create_role(moto_endpoint, roles["ApprovalHandlerRole"], without=removed))
        with enforcing(moto_endpoint), pytest.raises(AwsError) as failed:
            env.handle(event)
        assert "is not authorized to perform: " + denied in str(failed.value), failed.value
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("removed", [None, "StartTransformJobs"])
def test_the_schedule_starts_its_transform_job_as_the_scheduler_role(removed, moto_endpoint, roles, tmp_path,
                                                                      models, monkeypatch):
    from deploy.batch.aws_requests import substitute_context
    from tests.support.deploy_env_batch import SAMPLE, SCHEDULE

    env = _world("batch", None, moto_endpoint, tmp_path, models, monkeypatch)
    try:
        _state_table(moto_endpoint)
        v1 = env.register()
        env.approve(v1)
        assert env.handle(env.event(v1, "Approved"))["ok"]  # the schedule, deployed (IAM off: not this test's point)
        schedule = aws_client("scheduler", moto_endpoint).get_schedule(Name=SCHEDULE)
        job = json.loads(substitute_context(schedule["Target"]["Input"], **SAMPLE))
        creds = create_role(moto_endpoint, roles["SchedulerRole"], without=removed)
        with enforcing(moto_endpoint):
            code = code_of(lambda: client_as("sagemaker", moto_endpoint, creds).create_transform_job(**job))
        assert code == ("OK" if removed is None else "AccessDenied"), (code, job["TransformJobName"])
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("removed", [None, "StageEndpoints"])
def test_a_stage_in_this_account_deploys_as_the_handler_role_and_fails_without_its_statement(
        removed, moto_endpoint, roles, request, tmp_path, models, monkeypatch):
    """issue 21: a stage's endpoint is named from its key, <group>-<stage>; the handler role's StageEndpoints
    statement is what lets it deploy there."""
    monkeypatch.setenv("GREENLIGHT_STAGES", "staging")
    monkeypatch.setenv("GREENLIGHT_STAGES_STAGING_GATE", "approval")
    env = _world("endpoint", request, moto_endpoint, tmp_path, models, monkeypatch)
    try:
        _state_table(moto_endpoint)
        v1 = env.register()
        env.approve(v1)
        event = env.event(v1, "Approved")
        creds = create_role(moto_endpoint, roles["ApprovalHandlerRole"], without=removed)
        _as_role(env, monkeypatch, creds)
        with enforcing(moto_endpoint):
            result = env.handle(event)
        [stage] = result["report"]["stages"]
        [outcome] = stage["results"]
        endpoints = [e["EndpointName"] for e in aws_client("sagemaker", moto_endpoint).list_endpoints()["Endpoints"]]
        if removed is None:
            assert result["ok"] and (outcome["action"], outcome["desired"], outcome["ok"]) == ("deploy", v1, True), result
            assert endpoints == [f"{GROUP}-staging"]
        else:
            assert not result["ok"] and not outcome["ok"], result
            assert "AccessDenied" in outcome["message"] or "not authorized" in outcome["message"], outcome
            assert endpoints == []
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("removed, denied", [(None, None), ("ReadStages", "not authorized to perform: sagemaker:Describe"),
                                             ("ReadStatus", "not authorized to perform: dynamodb:GetItem"),
                                             ("Promote", "not authorized to perform: sagemaker:UpdateModelPackage")])
def test_greenlight_promote_runs_as_the_promoter_role_and_fails_without_its_statements(
        removed, denied, moto_endpoint, roles, tmp_path, models, monkeypatch):
    """issue 21: what `greenlight promote` reads (the registry, the previous stage's endpoint and saved status)
    and writes (UpdateModelPackage on the group's package) is what <Group>-promoter allows. (moto evaluates no
    SageMaker condition keys: who may promote to which stage is proven by tests/unit/test_template_stages.py.)"""
    from greenlight.api import promote
    from greenlight.errors import GreenlightError
    from tests.support.deploy_env_staged import AwsStagedDeployEnv

    only_target("endpoint", monkeypatch)
    monkeypatch.setenv("GREENLIGHT_STATE_TABLE", NAMES.state_table)
    _state_table(moto_endpoint)
    env = AwsStagedDeployEnv(moto_endpoint, tmp_path / "home", models, monkeypatch, GROUP)
    try:
        v1 = env.register()
        env.approve_only(v1)
        assert env.handle_stages(env.event(v1, "Approved"))["ok"]  # staging runs v1 (IAM off)
        assert env.running() == {"staging": v1, "production": None}
        creds = create_role(moto_endpoint, roles["PromoterRole"], without=removed)
        _as_role(env, monkeypatch, creds)
        with enforcing(moto_endpoint):
            if removed is None:
                promote(env.ws, v1, "production", group=GROUP)
            else:
                with pytest.raises(GreenlightError) as failed:
                    promote(env.ws, v1, "production", group=GROUP)
        stage = env.registry.get(GROUP, v1).stage_status("production")
        if removed is None:
            assert stage is not None and stage.value == "Approved"
        else:
            assert stage is None and denied in str(failed.value), failed.value
    finally:
        env.close()


@pytest.mark.parametrize("target", ["lambda", "batch"])
def test_a_stage_target_the_stack_grants_nothing_for_is_refused_as_the_handler_role(target, moto_endpoint, roles,
                                                                                   monkeypatch):
    """issue 21: a stack deployed without [stages] names no stage Lambda or schedule in the handler's policy, so a
    stage configured with lambda = true (or batch = true) is refused at the handler's cold start, in one line naming
    the stage, the target and the fix (deploy/stage_resources.py), instead of failing on its first call."""
    from greenlight.errors import ConfigurationError
    from greenlight.workspace import Workspace
    from tests.support.deploy_env_aws import aws_environment

    _state_table(moto_endpoint)
    key = NAMES.stage("staging")
    named = f"its function {GroupNames(key).function}" if target == "lambda" else \
        f"its schedule {GroupNames(key).batch_schedule}"
    creds = create_role(moto_endpoint, roles["ApprovalHandlerRole"])
    for name, value in {**aws_environment(moto_endpoint), **creds, "GREENLIGHT_STATE_TABLE": NAMES.state_table,
                        "GREENLIGHT_STAGES": "staging", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
                        f"GREENLIGHT_STAGES_STAGING_{target.upper()}": "true",
                        "GREENLIGHT_LAMBDA_ECR_REPOSITORY": NAMES.repository,
                        "GREENLIGHT_LAMBDA_BASE_IMAGE_TAG": "base-test"}.items():
        monkeypatch.setenv(name, value)
    ws = Workspace.open("aws")
    with enforcing(moto_endpoint), pytest.raises(ConfigurationError) as refused:
        ws.reconciler(ws.deploy_config(group=GROUP))
    assert str(refused.value).startswith(f"stage staging: {target} is enabled but this role may not manage {named}: "
                                         f"run `greenlight stack deploy` with [stages.staging] {target} = true")


@pytest.mark.parametrize("target, removed", [("lambda", None), ("lambda", "StageLambdaTarget"), ("batch", None),
                                             ("batch", "StageBatchSchedule")])
def test_a_stage_the_stack_was_deployed_with_is_served_as_the_handler_role(target, removed, moto_endpoint,
                                                                          monkeypatch):
    """issue 21 (docs/decisions/0053): a stack deployed with [stages.staging] lambda (or batch) enabled gives the
    handler role an inline policy naming that stage's function (or schedule): as that role the stage's engine is
    built and observes its target; without the statement, the stage is refused as a stack that lacks it."""
    from greenlight.errors import ConfigurationError
    from greenlight.workspace import Workspace
    from tests.support.deploy_env_aws import ROLE, aws_environment

    install()
    stage_env = {"GREENLIGHT_STAGES": "staging", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
                 f"GREENLIGHT_STAGES_STAGING_{target.upper()}": "true",
                 f"GREENLIGHT_STAGES_STAGING_{'BATCH' if target == 'lambda' else 'LAMBDA'}": "false"}
    roles = template_roles(stage_env)
    _state_table(moto_endpoint)
    key = GroupNames(NAMES.stage("staging"))
    if target == "lambda":  # what the stack's loop creates for the stage (tests/contract/test_stacks_aws.py shows it)
        aws_client("iam", moto_endpoint).create_role(RoleName="fn", AssumeRolePolicyDocument="{}")
        aws_client("lambda", moto_endpoint).create_function(
            FunctionName=key.function, Role=ROLE.rsplit("/", 1)[0] + "/fn", PackageType="Image",
            Code={"ImageUri": f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{NAMES.repository}:base-test"})
    creds = create_role(moto_endpoint, roles["ApprovalHandlerRole"], without=removed)
    for name, value in {**aws_environment(moto_endpoint), **creds, **stage_env, "GREENLIGHT_STATE_TABLE":
                        NAMES.state_table, "GREENLIGHT_LAMBDA_ECR_REPOSITORY": NAMES.repository,
                        "GREENLIGHT_LAMBDA_BASE_IMAGE_TAG": "base-test", "GREENLIGHT_BATCH_INPUT": f"s3://{BUCKET}/in/",
                        "GREENLIGHT_BATCH_OUTPUT": f"s3://{BUCKET}/out/", "GREENLIGHT_BATCH_ROLE_ARN": ROLE,
                        "GREENLIGHT_BATCH_DEAD_LETTER_ARN": "arn:aws:sqs:us-east-1:123456789012:dlq"}.items():
        monkeypatch.setenv(name, value)
    ws = Workspace.open("aws")
    with enforcing(moto_endpoint):
        if removed is not None:
            with pytest.raises(ConfigurationError, match=f"stage staging: {target} is enabled but this role may not"):
                ws.reconciler(ws.deploy_config(group=GROUP))
            return
        [(stage, engine)] = ws.reconciler(ws.deploy_config(group=GROUP)).stages
        [observed] = [t.observe() for t in engine.targets if t.name == target]
    assert observed.version is None  # nothing deployed yet, read as the handler role
    assert observed.detail.get("function", observed.detail.get("schedule")) == (
        key.function if target == "lambda" else key.batch_schedule)


# -- deploy/target-account.yaml's roles in another account (0056, 0059, 0060) ----------------------------------------

def target_role(account: str, logical_id: str, policy: str, **parameters: str) -> dict[str, Any]:
    """deploy/target-account.yaml's role `logical_id` for production of GROUP as CloudFormation would create it in
    `account` with `parameters`, its AWS::IAM::RolePolicy `policy` folded in."""
    from tests.support.templates import TARGET_ACCOUNT

    key = NAMES.stage("production")
    stack = evaluate(load(TARGET_ACCOUNT), {
        "StageKey": key, "StageKeyLowerCase": key.lower(), "ArtifactBucket": BUCKET, "Group": GROUP,
        "Stage": "production", "HandlerRoleArn": f"arn:aws:iam::123456789012:role{NAMES.role_path}{NAMES.role('approval')}",
        **parameters})
    role = dict(stack.resources[logical_id].properties)
    folded = stack.resources[policy].properties
    role["Policies"] = [*role["Policies"], {k: folded[k] for k in ("PolicyName", "PolicyDocument")}]
    return json.loads(json.dumps(role).replace(":123456789012:", f":{account}:"))  # cfn_eval's account is fixed


def handler_with_production_there(moto_url: str, roles, monkeypatch, deploy_role: str, **environ: str):
    """The approval handler's workspace as ApprovalHandlerRole (this account), for GROUP with staging here and
    production in OTHER_ACCOUNT managed as `deploy_role` there; endpoint and batch off but for `environ`'s
    GREENLIGHT_* variables. The state table is created first."""
    from greenlight.workspace import Workspace
    from tests.support.deploy_env_aws import aws_environment
    from tests.support.deploy_env_cross_account import OTHER_ACCOUNT

    _state_table(moto_url)
    creds = create_role(moto_url, roles["ApprovalHandlerRole"])
    for name, value in {**aws_environment(moto_url), **creds, "GREENLIGHT_STATE_TABLE": NAMES.state_table,
                        "GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
                        "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_ENDPOINT_ENABLED": "false",
                        "GREENLIGHT_BATCH_ENABLED": "false",
                        "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": f"arn:aws:iam::{OTHER_ACCOUNT}:role/{deploy_role}",
                        **environ}.items():
        monkeypatch.setenv(name, value)
    return Workspace.open("aws")


def production_target(ws):
    """The one target of production's engine, as the handler builds the stages (Workspace.reconciler)."""
    stages = ws.reconciler(ws.deploy_config(group=GROUP)).stages
    [(stage, engine)] = [(s, e) for s, e in stages if s.name == "production"]
    [target] = engine.targets
    return target


def production_observed_or_refused(ws, moto_url: str, refusal: str | None):
    """With IAM enforced: production's target and what it observes; or, given the start of the refusal expected
    (a statement removed), that refusal at composition, and None."""
    from greenlight.errors import ConfigurationError

    with enforcing(moto_url):
        if refusal is not None:
            with pytest.raises(ConfigurationError) as refused:
                ws.reconciler(ws.deploy_config(group=GROUP))
            assert str(refused.value).startswith(refusal)
            return None
        target = production_target(ws)
        return target, target.observe()


# -- a stage Lambda in another account: target-account.yaml's deploy role (docs/decisions/0056) --------------------

@pytest.mark.parametrize("removed", [None, "StageLambdaTarget"])
def test_a_stage_lambda_in_another_account_is_managed_as_its_deploy_role_and_refused_without_its_statement(
        removed, moto_endpoint, roles, monkeypatch):
    """The handler role (this account) assumes target-account.yaml's DeployRole (the other account; moto keeps
    its policies there); as that role production's engine is built and its Lambda target observes the function
    there. Without the Lambda statement (a stack deployed without Lambda=true grants none), the stage is refused
    in one line naming target-account.yaml, before any change. moto does not evaluate the role's trust policy."""
    from tests.support.deploy_env_cross_account import OTHER_ACCOUNT, in_account

    key = GroupNames(NAMES.stage("production"))
    deploy = target_role(OTHER_ACCOUNT, "DeployRole", "DeployRoleLambdaPolicy", Lambda="true",
                         LambdaBaseImageTag="base-test")
    iam_there, lam_there = in_account("iam", moto_endpoint), in_account("lambda", moto_endpoint)
    iam_there.create_role(RoleName=deploy["RoleName"], AssumeRolePolicyDocument=TRUST)
    for policy in deploy["Policies"]:
        document = dict(policy["PolicyDocument"])
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != removed]
        iam_there.put_role_policy(RoleName=deploy["RoleName"], PolicyName=policy["PolicyName"],
                                  PolicyDocument=json.dumps(document))
    iam_there.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")  # what the target stack's step 2 created
    in_account("ecr", moto_endpoint).create_repository(repositoryName=key.repository)
    lam_there.create_function(FunctionName=key.function, Role=f"arn:aws:iam::{OTHER_ACCOUNT}:role/fn",
                              PackageType="Image",
                              Code={"ImageUri": f"{OTHER_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{key.repository}:"
                                                "base-test"})
    ws = handler_with_production_there(
        moto_endpoint, roles, monkeypatch, deploy["RoleName"], GREENLIGHT_STAGES_STAGING_LAMBDA="false",
        GREENLIGHT_STAGES_PRODUCTION_LAMBDA="true", GREENLIGHT_LAMBDA_ECR_REPOSITORY=NAMES.repository,
        GREENLIGHT_LAMBDA_BASE_IMAGE_TAG="base-test")
    seen = production_observed_or_refused(ws, moto_endpoint, removed and (
        f"stage production: lambda is enabled but account {OTHER_ACCOUNT} has no function {key.function} its "
        f"role may manage: deploy deploy/target-account.yaml (StageKey={key.function}) in account "
        f"{OTHER_ACCOUNT} with Lambda=true"))
    if seen is None:
        return
    target, observed = seen
    assert (target.function, target.repository, observed.version) == (key.function, key.repository, None)
    assert lam_there.get_function(FunctionName=key.function)["Configuration"]["FunctionName"] == key.function


# -- the drift monitor reads a stage in another account: target-account.yaml's capture reader (decision 0060) --------

@pytest.mark.parametrize("removed", [None, "AssumeStageCaptureReaders", "ReadLambdaCapture"])
def test_the_monitor_role_reads_a_stage_in_another_account_as_its_capture_reader(removed, moto_endpoint, roles,
                                                                                  monkeypatch):
    """The drift monitor's role (this account) assumes production's capture reader (the other account) at the ARN
    deploy/capture_sources.py derives, the way the monitor Lambda does (Workspace.assumed), and reads the stage's
    endpoint and Lambda log groups there, and no other. Without the monitor role's AssumeRole statement, STS
    refuses (AccessDenied, which the monitor reports as `not-read` with the fix); without the reader's Lambda
    statement, that log group is refused. moto does not evaluate the reader's trust policy (MonitorRoleArn)."""
    from deploy.capture_sources import capture_plans
    from deploy.config import load_config
    from greenlight.errors import AwsError
    from greenlight.workspace import Workspace
    from tests.support.deploy_env_aws import aws_environment
    from tests.support.deploy_env_cross_account import OTHER_ACCOUNT, in_account

    environ = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
               "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "true",
               "GREENLIGHT_STAGES_PRODUCTION_BATCH": "false",
               "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": f"arn:aws:iam::{OTHER_ACCOUNT}:role/{NAMES.stage('production')}-deploy"}
    [plan] = capture_plans(load_config(environ=environ, group=GROUP), "production")
    monitor = roles["MonitorRole"]
    reader = target_role(OTHER_ACCOUNT, "CaptureReaderRole", "CaptureReaderLambdaPolicy", Lambda="true",
                         MonitorRoleArn=f"arn:aws:iam::123456789012:role{monitor['Path']}{monitor['RoleName']}")
    assert plan.reader_arn == f"arn:aws:iam::{OTHER_ACCOUNT}:role/{reader['RoleName']}"
    iam_there, logs_there = in_account("iam", moto_endpoint), in_account("logs", moto_endpoint)
    iam_there.create_role(RoleName=reader["RoleName"], AssumeRolePolicyDocument=TRUST)
    for policy in reader["Policies"]:
        document = dict(policy["PolicyDocument"])
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != removed]
        if document["Statement"]:
            iam_there.put_role_policy(RoleName=reader["RoleName"], PolicyName=policy["PolicyName"],
                                      PolicyDocument=json.dumps(document))
    staging_there = f"/aws/sagemaker/Endpoints/{NAMES.stage('staging')}"
    for group in (*(s.log_group for s in plan.sources), staging_there):
        logs_there.create_log_group(logGroupName=group)
    creds = create_role(moto_endpoint, monitor, without=removed)
    for name, value in {**aws_environment(moto_endpoint), **creds}.items():
        monkeypatch.setenv(name, value)
    ws = Workspace.open("aws")
    with enforcing(moto_endpoint):
        if removed == "AssumeStageCaptureReaders":
            with pytest.raises(AwsError) as refused:
                ws.assumed(str(plan.reader_arn), "production")
            assert (refused.value.code, refused.value.operation) == ("AccessDenied", "AssumeRole")
            return
        logs = ws.assumed(str(plan.reader_arn), "production")("logs")
        answers = {s.target: code_of(lambda s=s: logs.filter_log_events(logGroupName=s.log_group))
                   for s in plan.sources}
        other = code_of(lambda: logs.filter_log_events(logGroupName=staging_there))
    assert answers == {"endpoint": "OK", "lambda": "AccessDenied" if removed else "OK"}
    assert other == "AccessDenied"


# -- a stage's batch schedule in another account: target-account.yaml with Batch=true (docs/decisions/0059) --------

@pytest.mark.parametrize("removed", [None, "StageBatchSchedule"])
def test_a_stage_schedule_in_another_account_is_managed_as_its_deploy_role_and_refused_without_its_statement(
        removed, moto_endpoint, roles, monkeypatch):
    """The handler role assumes target-account.yaml's DeployRole (Batch=true) in the other account; as that role
    production's engine is built (GetSchedule, GetRole on the stack's scheduler role) and its batch target observes
    the schedule there. Without the schedule statement (a stack without Batch=true grants none), the stage is
    refused in one line naming target-account.yaml and Batch=true, before any change."""
    from tests.support.deploy_env_cross_account import OTHER_ACCOUNT, in_account

    key = GroupNames(NAMES.stage("production"))
    data = "s3://data-222222222222/batch/"
    deploy = target_role(OTHER_ACCOUNT, "DeployRole", "DeployRoleBatchPolicy", Batch="true",
                         BatchJobNamePrefix=key.job_prefix, BatchInput=f"{data}input/", BatchOutput=f"{data}output/")
    iam_there = in_account("iam", moto_endpoint)
    iam_there.create_role(RoleName=deploy["RoleName"], AssumeRolePolicyDocument=TRUST)
    for document in (dict(p["PolicyDocument"]) for p in deploy["Policies"]):
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != removed]
        iam_there.put_role_policy(RoleName=deploy["RoleName"], PolicyName=f"p{len(document['Statement'])}",
                                  PolicyDocument=json.dumps(document))
    scheduler = iam_there.create_role(RoleName=key.role("scheduler"), AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    ws = handler_with_production_there(
        moto_endpoint, roles, monkeypatch, deploy["RoleName"], GREENLIGHT_STAGES_PRODUCTION_BATCH="true",
        GREENLIGHT_STAGES_PRODUCTION_ENDPOINT_ROLE_ARN=f"arn:aws:iam::{OTHER_ACCOUNT}:role/x",
        GREENLIGHT_STAGES_PRODUCTION_BATCH_ROLE_ARN=scheduler,
        GREENLIGHT_STAGES_PRODUCTION_BATCH_DEAD_LETTER_ARN=
            f"arn:aws:sqs:us-east-1:{OTHER_ACCOUNT}:{key.group}-batch-dlq",
        GREENLIGHT_STAGES_PRODUCTION_BATCH_INPUT=f"{data}input/",
        GREENLIGHT_STAGES_PRODUCTION_BATCH_OUTPUT=f"{data}output/")
    seen = production_observed_or_refused(ws, moto_endpoint, removed and (
        f"stage production: batch is enabled but account {OTHER_ACCOUNT} has no schedule {key.batch_schedule} "
        f"its role may manage: deploy deploy/target-account.yaml (StageKey={key.group}) in account "
        f"{OTHER_ACCOUNT} with Batch=true BatchJobNamePrefix={key.job_prefix} "))
    if seen is None:
        return
    target, observed = seen
    assert (target.schedule, observed.version) == (key.batch_schedule, None)
    assert in_account("scheduler", moto_endpoint).list_schedules()["Schedules"] == []
