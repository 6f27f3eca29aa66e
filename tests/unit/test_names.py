"""deploy/names.py: every derived name fits its API, for every group SageMaker allows (property-based).

The rules are checked against botocore's service model (the input shape of the operation that takes the
name: min, max, pattern), so the copies in deploy/names.py cannot drift from the SDK; where botocore has
no limit (SQS queue names, DynamoDB table names, stack names' length, S3 keys) the rule cites the
service's quota page and the test checks the names against the rule itself. Hypothesis draws project
names from SageMaker's pattern (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}`), project ids (`p-` and 12 lower-case
alphanumerics), the groups they make (`<ProjectName>-<ProjectId>`, up to 47 characters), and any group up
to the 63 characters a model package group may have.
"""

from __future__ import annotations

import hashlib

import re
from functools import cache

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from deploy import names as N
from deploy.batch.config import BatchConfig
from deploy.config import load_config
from deploy.names import GroupNames, NameDerivationError, fit, parse_versioned, project_group, versioned

# rule -> (service, operation, member) whose botocore shape it copies
SHAPES = {
    "SAGEMAKER": [("sagemaker", "CreateEndpoint", "EndpointName"), ("sagemaker", "CreateEndpointConfig",
                                                                    "EndpointConfigName"),
                  ("sagemaker", "CreateTransformJob", "TransformJobName")],
    "GROUP": [("sagemaker", "CreateModelPackageGroup", "ModelPackageGroupName")],
    "PROJECT_NAME": [("sagemaker", "CreateProject", "ProjectName")],
    "IAM_ROLE": [("iam", "CreateRole", "RoleName")],
    "IAM_POLICY": [("iam", "CreatePolicy", "PolicyName")],
    "IAM_PATH": [("iam", "CreateRole", "Path")],
    "SCHEDULE": [("scheduler", "CreateSchedule", "Name")],
    "EVENTS_RULE": [("events", "PutRule", "Name")],
    "ECR_REPOSITORY": [("ecr", "CreateRepository", "repositoryName")],
    "LOG_GROUP": [("logs", "CreateLogGroup", "logGroupName")],
    "CODEBUILD_PROJECT": [("codebuild", "CreateProject", "name")],
}
# rules without a full botocore shape for the name, and where their limits come from instead
DOCUMENTED = {"TRANSFORM_JOB_PREFIX", "LAMBDA_FUNCTION", "IMAGE_TAG", "DYNAMODB_TABLE", "SQS_QUEUE", "ALARM", "STACK",
              "CODEPIPELINE", "SSM_PARAMETER", "S3_KEY", "PROJECT_ID"}

PROJECT_NAMES = st.from_regex(r"[a-zA-Z0-9](-{0,2}[a-zA-Z0-9]){0,31}", fullmatch=True).filter(lambda s: len(s) <= 32)
PROJECT_IDS = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=12, max_size=12).map(lambda s: f"p-{s}")
ANY_GROUP = st.from_regex(r"[a-zA-Z0-9](-{0,2}[a-zA-Z0-9]){0,62}", fullmatch=True).filter(lambda s: len(s) <= 63)
PROJECT_GROUPS = st.builds(project_group, PROJECT_NAMES, PROJECT_IDS)
GROUPS = st.one_of(PROJECT_GROUPS, ANY_GROUP, st.sampled_from(["a", "A", "ab", "a" * 63, "A-" * 31 + "b",
                                                                 "churn-prediction-models-p-abcdefghijkl"]))
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def _model(service: str):
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def shape(service: str, operation: str, member: str):
    return _model(service).operation_model(operation).input_shape.members[member]


def fits_shape(name: str, service: str, operation: str, member: str) -> bool:
    meta = shape(service, operation, member).metadata
    if len(name) < meta.get("min", 0) or ("max" in meta and len(name) > meta["max"]):
        return False
    return "pattern" not in meta or re.fullmatch(meta["pattern"], name) is not None


def every_name(names: GroupNames) -> list[tuple[N.NameRule, str, list[tuple[str, str, str]]]]:
    """(rule, name, botocore shapes it must also satisfy) for every name of a group."""
    execution_id = "x" * 36  # what the prefix leaves room for
    return [
        (N.SAGEMAKER, names.endpoint, SHAPES["SAGEMAKER"][:1]),
        (N.LAMBDA_FUNCTION, names.function, [("lambda", "CreateFunction", "FunctionName")]),
        (N.LAMBDA_FUNCTION, names.handler_function, [("lambda", "CreateFunction", "FunctionName")]),
        *[(N.IAM_ROLE, names.role(kind), SHAPES["IAM_ROLE"])
          for kind in ("approval", "sagemaker", "scheduler", "inference", "resync", "pipeline", "model-build",
                       "image-build", "deploy-stack", "codepipeline", "seed")],
        (N.IAM_PATH, names.role_path, SHAPES["IAM_PATH"]),
        (N.IAM_POLICY, names.boundary_policy, SHAPES["IAM_POLICY"]),
        (N.ECR_REPOSITORY, names.repository, SHAPES["ECR_REPOSITORY"]),
        (N.IMAGE_TAG, names.image_tag(123456), [("ecr", "PutImage", "imageTag")]),
        (N.DYNAMODB_TABLE, names.state_table, []),
        (N.SQS_QUEUE, names.queue("approval"), []),
        (N.SQS_QUEUE, names.queue("batch"), []),
        (N.EVENTS_RULE, names.approval_rule, SHAPES["EVENTS_RULE"]),
        (N.SCHEDULE, names.batch_schedule, SHAPES["SCHEDULE"]),
        (N.SCHEDULE, names.resync_schedule, SHAPES["SCHEDULE"]),
        (N.TRANSFORM_JOB_PREFIX, names.job_prefix, []),
        (N.SAGEMAKER, f"{names.job_prefix}-{execution_id}", [("sagemaker", "CreateTransformJob", "TransformJobName")]),
        (N.SAGEMAKER, f"{names.job_prefix}-smoke-v99999-0123abcd-999",
         [("sagemaker", "CreateTransformJob", "TransformJobName")]),
        *[(N.LOG_GROUP, names.log_group(kind), SHAPES["LOG_GROUP"]) for kind in ("approval-handler", "inference")],
        *[(N.ALARM, names.alarm(kind), [("cloudwatch", "PutMetricAlarm", "AlarmName")])
          for kind in ("approval-handler-errors", "approval-dlq-not-empty", "batch-dlq-not-empty")],
        *[(N.CODEBUILD_PROJECT, names.codebuild(kind), SHAPES["CODEBUILD_PROJECT"])
          for kind in ("model-build", "image-build")],
        (N.CODEPIPELINE, names.codepipeline, []),
        (N.SAGEMAKER, names.pipeline, [("sagemaker", "CreatePipeline", "PipelineName")]),
        *[(N.STACK, stack, [("cloudformation", "CreateChangeSet", "StackName")]) for stack in names.stacks],
        (N.S3_KEY, names.s3_prefix("batch", "input"), []),
        # the digest hashes the group among what the resource holds, as deploy/endpoint/aws_names.py does:
        # a group cut to fit is told apart by it (a fixed digest here made two long groups alike)
        *[(N.SAGEMAKER, versioned(names.group, version, kind, hashlib.sha256(names.group.encode()).hexdigest()[:8]),
           SHAPES["SAGEMAKER"][:2]) for version in (1, 999, 10 ** 6, 10 ** 12) for kind in "mc"],
    ]


@pytest.mark.parametrize("rule", sorted(SHAPES))
def test_each_rule_is_botocores(rule):
    copied = getattr(N, rule)
    for service, operation, member in SHAPES[rule]:
        meta = shape(service, operation, member).metadata
        assert copied.max_length == meta["max"] and copied.min_length == max(meta.get("min", 1), 1), (rule, meta)
        assert copied.pattern == meta["pattern"], (rule, meta["pattern"])


def test_every_rule_has_a_source():
    assert set(N.RULES) == set(SHAPES) | DOCUMENTED
    assert all(rule.source for rule in N.RULES.values())


def test_the_job_prefix_leaves_room_for_the_execution_id():
    limit = shape("sagemaker", "CreateTransformJob", "TransformJobName").metadata["max"]
    assert N.TRANSFORM_JOB_PREFIX.max_length == limit - 1 - 36
    with pytest.raises(ValueError, match="job_name_prefix"):  # BatchConfig validates with the same limit
        BatchConfig(job_name_prefix="a" * 27)


@PROPERTY
@given(GROUPS)
def test_every_derived_name_fits_its_rule_and_botocore(group):
    for rule, name, shapes in every_name(GroupNames(group)):
        assert rule.accepts(name), (rule.what, name)
        for service, operation, member in shapes:
            assert fits_shape(name, service, operation, member), (name, service, operation, member)


@PROPERTY
@given(GROUPS, st.integers(1, 10 ** 9))
def test_the_image_tag_the_lambda_target_writes_is_names_py(group, version):
    from deploy.image.refs import model_tag

    assert model_tag(group, version) == GroupNames(group).image_tag(version)


@PROPERTY
@given(PROJECT_NAMES, PROJECT_IDS)
def test_a_project_group_is_name_dash_id_and_every_name_fits(project, project_id):
    group = project_group(project, project_id)
    assert group == f"{project}-{project_id}" and len(group) <= 47
    assert fits_shape(group, "sagemaker", "CreateModelPackageGroup", "ModelPackageGroupName")


@PROPERTY
@given(GROUPS, GROUPS)
@example("x" * 63, "x" * 62 + "y")  # alike up to the cut of a versioned name: once failed with a fixed digest
def test_different_groups_get_different_names(a, b):
    # SageMaker writes names in lower case in ARNs, so two groups that differ only in case are one group
    if a.lower() == b.lower():
        return
    for (_, one, _), (_, other, _) in zip(every_name(GroupNames(a)), every_name(GroupNames(b)), strict=True):
        assert one != other


@PROPERTY
@given(GROUPS, st.integers(1, 10 ** 9), st.sampled_from("mc"), st.text("0123456789abcdef", min_size=8, max_size=8))
def test_versioned_names_parse_back(group, version, kind, digest):
    name = versioned(group, version, kind, digest)
    assert len(name) <= 63 and parse_versioned(group, name) == (version, kind)
    assert parse_versioned(group + "x", name) is None or (group + "x")[:39] == group[:39]


@pytest.mark.parametrize("group", ["churn-prediction-models-p-abcdefghijkl", "m" * 48, "Churn-p-abcdefghijkl"])
def test_names_within_the_limits_are_the_group_plus_a_fixed_suffix(group):
    """What the templates build with !Sub for groups of up to 48 characters is exactly what names.py gives."""
    names = GroupNames(group)
    assert names.handler_function == f"{group}-approval" and names.role("approval") == f"{group}-approval"
    assert names.role("sagemaker") == f"{group}-sagemaker" and names.role("deploy-stack") == f"{group}-deploy-stack"
    assert names.batch_schedule == f"{group}-batch" and names.state_table == f"{group}-greenlight-state"
    assert names.repository == group.lower() and names.function == group == names.endpoint
    assert versioned(group, 999, "m", "0123abcd").startswith(f"{group}-v999-m")


def test_names_are_stable_across_releases():
    """Golden values: the algorithm must never change (a different name orphans what the engine created)."""
    names = GroupNames("churn-prediction-models-p-abcdefghijkl")
    assert names.job_prefix == "churn-prediction-5d45341f"
    assert GroupNames("a").repository == "a-ca978112"
    assert GroupNames("x" * 60).handler_function == "x" * 46 + "-dafac224-approval"
    # the endpoint target's names of earlier releases (8 hex digits, long groups cut) still come out and parse
    assert versioned("greenlight-models", 7, "m", "0123abcd") == "greenlight-models-v7-m0123abcd"
    old_cut = "g" * 50 + "-v7-m0123abcd"
    assert versioned("g" * 60, 7, "m", "0123abcd") == old_cut and parse_versioned("g" * 60, old_cut) == (7, "m")
    assert versioned("g" * 48, 1000, "m", "0123abcd") == "g" * 48 + "-v1000-m0123abc"


def test_an_impossible_name_is_one_line_naming_the_rule():
    with pytest.raises(NameDerivationError) as err:
        fit(N.SCHEDULE, "group", "-" + "s" * 64)
    assert "EventBridge Scheduler schedule name" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(NameDerivationError, match="SageMaker project name"):
        project_group("-bad", "p-abcdefghijkl")


def test_a_long_group_configures_and_names_every_target(tmp_path, monkeypatch):
    """The group of a SageMaker Project with a long name: the configuration loads and every target has names."""
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={}, home=tmp_path, group="churn-prediction-models-p-abcdefghijkl")
    batch = config.batch.names_for(config.group)
    assert len(batch.job_name_prefix) <= 26 and batch.schedule_name == "churn-prediction-models-p-abcdefghijkl-batch"
    assert config.endpoint_name == config.function_name == config.group


def test_a_dry_run_deploy_of_a_project_group_exits_0(tmp_path, monkeypatch, capsys):
    """Issue 20's must-show: before deploy/names.py the batch target refused this group at the handler's start."""
    from greenlight.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["deploy", "--dry-run", "--group", "churn-prediction-models-p-abcdefghijkl"]) == 0
    out = capsys.readouterr().out
    assert "churn-prediction-models-p-abcdefghijkl" in out and "batch:" in out, out


def test_the_aws_composition_builds_every_target_for_a_long_group(tmp_path, monkeypatch):
    """The approval handler's start (Workspace.reconciler on AWS) with a project's long group: no name refused."""
    from greenlight.workspace import Workspace

    env = {"AWS_REGION": "us-east-1", "GREENLIGHT_STATE_TABLE": "t", "GREENLIGHT_ENDPOINT_ROLE_ARN":
           "arn:aws:iam::123456789012:role/r", "GREENLIGHT_LAMBDA_ECR_REPOSITORY": "repo",
           "GREENLIGHT_LAMBDA_BASE_IMAGE_TAG": "base-1", "GREENLIGHT_BATCH_ROLE_ARN": "arn:aws:iam::123456789012:role/s",
           "GREENLIGHT_BATCH_DEAD_LETTER_ARN": "arn:aws:sqs:us-east-1:123456789012:q",
           "GREENLIGHT_BATCH_INPUT": "s3://bucket-a/in/", "GREENLIGHT_BATCH_OUTPUT": "s3://bucket-a/out/"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    ws = Workspace.open("aws", home=tmp_path)
    reconciler = ws.reconciler(ws.deploy_config(group="Churn-Prediction-Models-For-EU-p-abcdefghijkl"))
    kinds = sorted(t.kind.value for t in reconciler.targets)
    assert kinds == ["batch", "endpoint", "lambda"]
    batch = next(t for t in reconciler.targets if t.kind.value == "batch")
    assert batch.config.job_name_prefix == GroupNames("Churn-Prediction-Models-For-EU-p-abcdefghijkl").job_prefix
