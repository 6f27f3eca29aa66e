"""The stacks on moto's CloudFormation, through its HTTP server: `greenlight stack deploy` and `delete`.

One story shares its stacks across the assertions (moto's CloudFormation is slow-ish): deploy creates
the bootstrap stack (deploy/project.yaml without its pipeline) and the deploy stack (deploy/template.yaml)
with the approval handler's real package uploaded; without a base image the inference Lambda waits;
the base image found in ECR is the tag the next deploy uses; a stack created with it has the function,
its `live` alias and the Function URL; a deploy with nothing new is "no changes"; a failed resource
fails the deploy with its event; delete --purge removes everything. Every output is read
back. moto is extended in this process (tests/support/moto_cloudformation.py): CloudFormation models
for the types whose backends it has, and rollback on a failed resource. The types it lacks altogether
are in moto_cloudformation.LACKING with the reason; project.yaml with its pipeline is created without them.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from deploy.image.base_tag import base_tag
from deploy.stack import Stacks
from greenlight.errors import DeploymentFailed
from tests.contract.conftest import REGION, aws_client
from tests.support.moto_cloudformation import LACKING
from tests.support.templates import PROJECT, ROOT, TEMPLATE, load, staged

GROUP = "stack-models"
# the stack carries the stages to the handler (parameter Stages) and creates the promoter (issue 21)
STAGES = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
          "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_STAGES_PRODUCTION_SOAK_MINUTES": "30"}
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
                                  "digest": "sha256:" + "0" * 64}, "layers": []})


def _reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def _cli(capsys, *argv: str) -> tuple[int, str]:
    from greenlight.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.fixture(scope="module")
def world(moto_server, tmp_path_factory):
    """moto wiped once for the module, and the environment `greenlight stack` runs with against it."""
    _reset(moto_server)
    home = tmp_path_factory.mktemp("home")
    env = {"AWS_ENDPOINT_URL": moto_server, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_MAX_ATTEMPTS": "1",
           "AWS_EC2_METADATA_DISABLED": "true", "GREENLIGHT_HOME": str(home), **STAGES}
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "GREENLIGHT_CONFIG", "SAGEMAKER_PROJECT_NAME", "SAGEMAKER_PROJECT_ID"):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        yield moto_server


@pytest.fixture(scope="module")
def first(world):
    """The first `stack deploy` (no base image yet), its output and exit code."""
    from greenlight.cli import main

    capture = _Capture()
    with capture:
        code = main(["stack", "deploy", "--group", GROUP, "--poll-seconds", "0", "--parameter", "ModelImagesKept=5",
                     "--parameter", "EndpointMaxP99Ms=250"])  # a p99 limit: the latency alarm too
    return code, capture.text


class _Capture:
    """stdout/stderr of a module-scoped CLI call (capsys is per test)."""

    def __enter__(self):
        import contextlib
        import io

        self._out = io.StringIO()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(self._out))
        self._stack.enter_context(contextlib.redirect_stderr(self._out))
        return self

    def __exit__(self, *exc):
        self._stack.close()
        self.text = self._out.getvalue()


def _outputs(url: str, stack: str) -> dict[str, str]:
    return Stacks(aws_client("cloudformation", url), echo=lambda line: None).outputs(stack)


def test_deploy_creates_the_bootstrap_and_deploy_stacks_without_a_base_image(world, first):
    code, text = first
    assert code == 0, text
    boot = _outputs(world, f"greenlight-{GROUP}-bootstrap")
    assert set(boot) >= {"ArtifactBucket", "SageMakerPipelineRoleArn", "Group", "DeployStackName"}
    assert boot["Group"] == GROUP and boot["DeployStackName"] == f"greenlight-{GROUP}"
    assert boot["SageMakerPipelineRoleArn"].endswith(f":role/greenlight/{GROUP}/{GROUP}-pipeline")
    out = _outputs(world, f"greenlight-{GROUP}")
    assert out["StateTableName"] == f"{GROUP}-greenlight-state"
    assert out["EndpointName"] == GROUP and out["RepositoryName"] == GROUP
    assert out["SageMakerExecutionRoleArn"].endswith(f"/{GROUP}-sagemaker")
    assert out["SchedulerRoleArn"].endswith(f"/{GROUP}-scheduler")
    assert out["ResyncScheduleArn"].endswith(f":schedule/default/{GROUP}-resync")
    resync = aws_client("scheduler", world).get_schedule(Name=f"{GROUP}-resync")
    assert resync["ScheduleExpression"] == "rate(10 minutes)" and resync["Target"]["Arn"] == out["ApprovalHandlerArn"]
    assert out["DeadLetterQueueArn"].endswith(f":{GROUP}-approval-dlq")
    assert "FunctionUrl" not in out, "no inference Lambda before its base image exists"
    assert "is not in ECR yet" in text and "next: build the inference Lambda's base image" in text
    assert "CREATE_COMPLETE" in text  # progress is printed
    # the handler's package went to the artifact bucket, and the function runs it
    s3 = aws_client("s3", world)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=boot["ArtifactBucket"])["Contents"]]
    assert [k for k in keys if k.startswith("greenlight/handler/greenlight-handler-")], keys
    handler = aws_client("lambda", world).get_function(FunctionName=out["ApprovalHandlerArn"])["Configuration"]
    assert handler["Handler"] == "deploy.handler.lambda_handler" and handler["Runtime"] == "python3.12"
    assert handler["Timeout"] == 900
    variables = handler["Environment"]["Variables"]
    assert variables["GREENLIGHT_GROUP"] == GROUP and variables["GREENLIGHT_STATE_TABLE"] == out["StateTableName"]
    assert variables["GREENLIGHT_ENDPOINT_ROLE_ARN"] == out["SageMakerExecutionRoleArn"]


def test_the_resources_exist_as_the_template_says(world, first):
    out = _outputs(world, f"greenlight-{GROUP}")
    table = aws_client("dynamodb", world).describe_table(TableName=out["StateTableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["history-by-time"]
    # (moto's table model ignores TimeToLiveSpecification; tests/unit/test_template_config.py checks it)
    rule = aws_client("events", world).describe_rule(Name=f"{GROUP}-approval")
    assert json.loads(rule["EventPattern"])["detail"] == {"ModelPackageGroupName": [GROUP]}
    [target] = aws_client("events", world).list_targets_by_rule(Rule=f"{GROUP}-approval")["Targets"]
    assert target["DeadLetterConfig"]["Arn"] == out["DeadLetterQueueArn"] and target["RetryPolicy"]
    queue = aws_client("sqs", world).get_queue_attributes(QueueUrl=out["DeadLetterQueueUrl"], AttributeNames=["Policy"])
    assert "events.amazonaws.com" in queue["Attributes"]["Policy"]
    alarms = {a["AlarmName"]: a for a in aws_client("cloudwatch", world).describe_alarms()["MetricAlarms"]}
    assert alarms[f"{GROUP}-approval-handler-errors"]["MetricName"] == "Errors"
    assert alarms[f"{GROUP}-approval-dlq-not-empty"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    # moto's repository model ignores ImageScanningConfiguration, LifecyclePolicy and RepositoryPolicyText
    # (cfn-lint and the unit tests check those properties); the repository itself exists:
    assert aws_client("ecr", world).describe_repositories(repositoryNames=[GROUP])["repositories"]
    logs = aws_client("logs", world).describe_log_groups(logGroupNamePrefix=f"/greenlight/{GROUP}/")["logGroups"]
    assert {g["logGroupName"]: g.get("retentionInDays") for g in logs} == {
        f"/greenlight/{GROUP}/approval-handler": 30, f"/greenlight/{GROUP}/inference": 30,
        f"/greenlight/{GROUP}/drift-monitor": 30}
    # the scheduled drift monitor (issue 25): the handler package's other entry, its schedule, the alarm
    monitor = aws_client("lambda", world).get_function(FunctionName=out["MonitorFunctionArn"])["Configuration"]
    assert monitor["Handler"] == "deploy.monitor_handler.lambda_handler"
    assert monitor["Environment"]["Variables"]["GREENLIGHT_MONITOR_LAMBDA_LOG_GROUP"] == f"/greenlight/{GROUP}/inference"
    schedule = aws_client("scheduler", world).get_schedule(Name=f"{GROUP}-drift-monitor")
    assert schedule["ScheduleExpression"] == "rate(1 day)" and schedule["Target"]["Arn"] == out["MonitorFunctionArn"]
    # the stages reach the handler as the CLI read them; the promoter role exists, trusting the account
    from deploy.config import load_config

    handler = aws_client("lambda", world).get_function(FunctionName=out["ApprovalHandlerArn"])["Configuration"]
    variables = handler["Environment"]["Variables"]
    assert [(s.name, s.gate, s.key, s.soak_minutes) for s in load_config(environ=variables).stage_list()] == [
        ("staging", "approval", f"{GROUP}-staging", 0.0), ("production", "promotion", f"{GROUP}-production", 30.0)]
    role = aws_client("iam", world).get_role(RoleName=f"{GROUP}-promoter")["Role"]
    assert role["Arn"] == out["PromoterRoleArn"] and role["Path"] == f"/greenlight/{GROUP}/"
    # its own policy, and (batch on by default: BatchStages) the read of each stage's schedule (issue 21, 0053)
    policies = aws_client("iam", world).list_role_policies(RoleName=f"{GROUP}-promoter")["PolicyNames"]
    assert sorted(policies) == ["promote", "stage-production-batch", "stage-staging-batch"]
    policy = "promote"
    document = aws_client("iam", world).get_role_policy(RoleName=f"{GROUP}-promoter", PolicyName=policy)["PolicyDocument"]
    if isinstance(document, str):  # moto's CloudFormation stores an inline policy as Python's repr of the dict
        import ast

        document = ast.literal_eval(document)
    [promote] = [s for s in document["Statement"] if s["Sid"] == "Promote"]
    assert promote["Condition"]["StringEquals"]["sagemaker:ModelLifeCycle:Stage"] == ["production"]
    drift = alarms[f"{GROUP}-drift"]
    assert (drift["Namespace"], drift["MetricName"], drift["Dimensions"]) == (
        "Greenlight/Drift", "DriftDetected", [{"Name": "Group", "Value": GROUP}])
    # progressive delivery (issue 22): the endpoint's rollback alarms, metric math on its variant's metrics
    assert out["EndpointAlarmNames"] == f"{GROUP}-endpoint-5xx,{GROUP}-endpoint-latency"
    # the handler gets them beside the user's (none here), thresholds from the engine's own rules
    assert load_config(environ=variables).endpoint.alarms == (f"{GROUP}-endpoint-5xx", f"{GROUP}-endpoint-latency")
    assert (alarms[f"{GROUP}-endpoint-5xx"]["Threshold"], alarms[f"{GROUP}-endpoint-latency"]["Threshold"]) == (1, 250)
    variant = [{"Name": "EndpointName", "Value": GROUP}, {"Name": "VariantName", "Value": "AllTraffic"}]
    for name, metrics, expression in ((f"{GROUP}-endpoint-5xx", ["Invocation5XXErrors", "Invocations"],
                                       "100 * errors / requests"),
                                      (f"{GROUP}-endpoint-latency", ["ModelLatency"], "latency / 1000")):
        queries = alarms[name]["Metrics"]
        stats = [q["MetricStat"] for q in queries if "MetricStat" in q]
        assert [m["Metric"]["MetricName"] for m in stats] == metrics, queries
        assert all(m["Metric"]["Namespace"] == "AWS/SageMaker" and m["Metric"]["Dimensions"] == variant
                   for m in stats)
        assert [q["Expression"] for q in queries if q.get("Expression")] == [expression]
    assert f"{GROUP}-lambda-errors" not in alarms, "no Lambda alarms before the inference Lambda exists"


@pytest.fixture(scope="module")
def second(world, first):
    """The deploy stack of another group, created with a base image tag: the inference Lambda, its alias and
    URL. (A separate stack: moto applies an update that turns a condition on without creating the
    resources it guards, so the first stack cannot show it.)"""
    params = {p["ParameterKey"]: p["ParameterValue"] for p in aws_client("cloudformation", world).describe_stacks(
        StackName=f"greenlight-{GROUP}")["Stacks"][0]["Parameters"]}
    from deploy.config import load_config
    from deploy.stack_parameters import stage_parameters

    tag = base_tag(ROOT, "linux/amd64")
    lines: list[str] = []
    staged = stage_parameters(load_config(environ=STAGES, group="url-models"))  # lambda on: a function per stage
    result = Stacks(aws_client("cloudformation", world), echo=lines.append, poll=0).deploy(
        "greenlight-url-models", TEMPLATE.read_text(), {**params, **staged, "Group": "url-models",
                                                        "GroupLowerCase": "url-models",
                                                        "BatchJobNamePrefix": "url-models", "LambdaBaseImageTag": tag,
                                                        "LambdaMaxP99Ms": "300"})
    return result, "\n".join(lines), tag


def test_the_base_image_found_in_ecr_is_the_one_deploy_uses(world, first):
    from greenlight.cli.stack import _base_tag
    from greenlight.workspace import Workspace

    tag = base_tag(ROOT, "linux/amd64")
    ws = Workspace.open("aws")
    stacks = Stacks(ws.client("cloudformation"), echo=lambda line: None)
    assert _base_tag(ws, stacks, f"greenlight-{GROUP}", GROUP, "x86_64", None) == ""
    aws_client("ecr", world).put_image(repositoryName=GROUP, imageManifest=MANIFEST, imageTag=tag)
    assert _base_tag(ws, stacks, f"greenlight-{GROUP}", GROUP, "x86_64", None) == tag
    assert _base_tag(ws, stacks, f"greenlight-{GROUP}", GROUP, "x86_64", "base-given") == "base-given"


def test_with_the_base_image_the_inference_lambda_its_alias_and_url_appear(world, second):
    result, text, tag = second
    out = result.outputs
    assert out["FunctionUrl"].startswith("https://") and ".lambda-url." in out["FunctionUrl"], text
    assert out["InferenceAliasArn"].endswith(":function:url-models:live")
    # its alias's rollback alarms (issue 22): the alias's own metrics (Resource <function>:<alias>)
    assert out["LambdaAlarmNames"] == "url-models-lambda-errors,url-models-lambda-latency"
    alarms = {a["AlarmName"]: a for a in aws_client("cloudwatch", world).describe_alarms(
        AlarmNamePrefix="url-models-lambda-")["MetricAlarms"]}
    alias = [{"Name": "FunctionName", "Value": "url-models"}, {"Name": "Resource", "Value": "url-models:live"}]
    latency = alarms["url-models-lambda-latency"]
    assert (latency["MetricName"], latency["ExtendedStatistic"], latency["Dimensions"]) == ("Duration", "p99", alias)
    errors = [q["MetricStat"]["Metric"] for q in alarms["url-models-lambda-errors"]["Metrics"] if "MetricStat" in q]
    assert [(m["MetricName"], m["Dimensions"]) for m in errors] == [("Errors", alias), ("Invocations", alias)]
    # moto's function model drops PackageType (it reports Zip); the image is what the template gave
    function = aws_client("lambda", world).get_function(FunctionName="url-models")
    assert function["Code"]["ImageUri"].endswith(f"/url-models:{tag}")
    # its predictions are captured to its log group, at the stack's sample rate and row bound (issue 25)
    assert function["Configuration"]["Environment"]["Variables"] == {
        "GREENLIGHT_CAPTURE": "stdout", "GREENLIGHT_CAPTURE_SAMPLE_RATE": "1", "GREENLIGHT_CAPTURE_MAX_ROWS": "100"}
    alias = aws_client("lambda", world).get_alias(FunctionName="url-models", Name="live")
    assert alias["FunctionVersion"] == "1"
    assert aws_client("lambda", world).get_function_url_config(FunctionName="url-models")["AuthType"] == "AWS_IAM"
    assert "add InferenceFunction (AWS::Lambda::Function)" in text
    # each stage's Lambda (issue 21, Fn::ForEach over LambdaStages): function <group>-<stage> on the base image,
    # its own role and log group, `live` on version 1, an IAM-authenticated URL; the handler may manage it
    lam, iam = aws_client("lambda", world), aws_client("iam", world)
    for stage in ("staging", "production"):
        function = lam.get_function(FunctionName=f"url-models-{stage}")
        assert function["Code"]["ImageUri"].endswith(f"/url-models:{tag}")
        assert function["Configuration"]["Role"].endswith(f":role/greenlight/url-models/url-models-{stage}-inference")
        assert lam.get_alias(FunctionName=f"url-models-{stage}", Name="live")["FunctionVersion"] == "1"
        assert lam.get_function_url_config(FunctionName=f"url-models-{stage}")["AuthType"] == "AWS_IAM"
        assert f"stage-{stage}-lambda" in iam.list_role_policies(RoleName="url-models-approval")["PolicyNames"]
        assert f"add StageInferenceFunction{stage} (AWS::Lambda::Function)" in text
    logs = aws_client("logs", world).describe_log_groups(logGroupNamePrefix="/greenlight/url-models/")["logGroups"]
    assert {"/greenlight/url-models/staging/inference", "/greenlight/url-models/production/inference"} <= {
        g["logGroupName"] for g in logs}
    Stacks(aws_client("cloudformation", world), echo=lambda line: None, poll=0).delete("greenlight-url-models")
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"] if f["FunctionName"].startswith(
        "url-models-s")] == []  # deleted with the stack


def test_a_deploy_with_nothing_new_is_no_changes(world, first, capsys):
    # the same settings as the first deploy (whose base image tag was empty)
    code, text = _cli(capsys, "stack", "deploy", "--group", GROUP, "--poll-seconds", "0", "--parameter",
                      "ModelImagesKept=5", "--parameter", "EndpointMaxP99Ms=250", "--base-image-tag", "")
    assert code == 0, text
    assert f"greenlight-{GROUP}-bootstrap: no changes" in text and f"greenlight-{GROUP}: no changes" in text
    assert "already in s3://" in text  # the same package is not uploaded twice


def test_a_failed_resource_fails_with_its_event(world, first):
    stacks = Stacks(aws_client("cloudformation", world), echo=lambda line: None, poll=0)
    params = {p["ParameterKey"]: p["ParameterValue"] for p in
              aws_client("cloudformation", world).describe_stacks(StackName=f"greenlight-{GROUP}")["Stacks"][0]["Parameters"]}
    params.update(Group="broken-models", GroupLowerCase="broken-models", BatchJobNamePrefix="broken-models",
                  HandlerS3Bucket="no-such-bucket", LambdaBaseImageTag="")
    with pytest.raises(DeploymentFailed) as failed:
        stacks.deploy("greenlight-broken", TEMPLATE.read_text(), params)
    message = str(failed.value)
    assert message.startswith("stack greenlight-broken is ROLLBACK_COMPLETE: ApprovalHandler (AWS::Lambda::Function) "
                              "CREATE_FAILED: "), message
    assert "\n" not in message
    # a stack whose creation failed cannot be updated: the next deploy deletes it and creates it again
    lines: list[str] = []
    fixed = Stacks(aws_client("cloudformation", world), echo=lines.append, poll=0).deploy(
        "greenlight-broken", TEMPLATE.read_text(), {**params, "HandlerS3Bucket": params["ArtifactBucket"]})
    assert fixed.status == "CREATE_COMPLETE" and "its creation failed earlier (ROLLBACK_COMPLETE); deleting it" in \
        "\n".join(lines)
    Stacks(aws_client("cloudformation", world), echo=lambda line: None, poll=0).delete("greenlight-broken")


def _without(template: dict[str, Any], types: set[str]) -> dict[str, Any]:
    """The template with resources of `types` removed, references to them replaced by a placeholder ARN, and
    the outputs that show them dropped."""
    gone = {name for name, r in template["Resources"].items() if r["Type"] in types}

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            target = node.get("Ref") or (node.get("Fn::GetAtt") or [None])[0]
            if target in gone:
                return f"arn:aws:codebuild:{REGION}:123456789012:project/{target}"
            return {k: swap(v) for k, v in node.items()}
        return [swap(v) for v in node] if isinstance(node, list) else node

    kept = {n: swap(r) for n, r in template["Resources"].items() if n not in gone}
    outputs = {n: o for n, o in template.get("Outputs", {}).items() if swap(o) == o}
    return {**template, "Resources": kept, "Outputs": outputs}


def test_the_project_template_with_its_pipeline(world):
    from moto.cloudformation.parsing import get_model_map

    project = load(PROJECT)
    types = {r["Type"] for r in project["Resources"].values()} | {r["Type"] for r in
                                                                   staged(load(TEMPLATE))["Resources"].values()}
    supported = set(get_model_map())
    assert types - supported == set(LACKING), "LACKING must list exactly the types moto cannot create"
    stacks = Stacks(aws_client("cloudformation", world), echo=lambda line: None, poll=0)
    result = stacks.deploy("greenlight-proj-p-1234", json.dumps(_without(project, set(LACKING))),
                           {"SageMakerProjectName": "proj", "SageMakerProjectId": "p-1234",
                            "ConnectionArn": f"arn:aws:codeconnections:{REGION}:123456789012:connection/0a1b2c3d"})
    assert result.outputs["Group"] == "proj-p-1234" and result.outputs["DeployStackName"] == "greenlight-proj-p-1234"
    iam = aws_client("iam", world)
    roles = {r["RoleName"] for r in iam.list_roles(PathPrefix="/greenlight/proj-p-1234/")["Roles"]}
    assert roles == {f"proj-p-1234-{n}" for n in ("pipeline", "model-build", "image-build", "deploy-stack",
                                                  "codepipeline")}  # no seed: the source is Git
    policy = aws_client("s3", world).get_bucket_policy(Bucket=result.outputs["ArtifactBucket"])["Policy"]
    assert "aws:SecureTransport" in policy
    # (moto's bucket model ignores PublicAccessBlockConfiguration; cfn-lint checks the property)
    encryption = aws_client("s3", world).get_bucket_encryption(Bucket=result.outputs["ArtifactBucket"])
    assert encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]


def test_delete_purge_removes_the_stacks_the_images_and_the_bucket(world, first, capsys):
    bucket = _outputs(world, f"greenlight-{GROUP}-bootstrap")["ArtifactBucket"]
    code, text = _cli(capsys, "stack", "delete", "--group", GROUP, "--purge", "--poll-seconds", "0")
    assert code == 0, text
    stacks = Stacks(aws_client("cloudformation", world), echo=lambda line: None)
    assert stacks.describe(f"greenlight-{GROUP}") is None and stacks.describe(f"greenlight-{GROUP}-bootstrap") is None
    assert "deleted 1 image(s)" in text and f"deleted the artifact bucket {bucket}" in text
    assert bucket not in [b["Name"] for b in aws_client("s3", world).list_buckets()["Buckets"]]
    code, text = _cli(capsys, "stack", "delete", "--group", GROUP, "--poll-seconds", "0")
    assert code == 0 and "nothing to delete" in text


# -- Fn::ForEach on moto's CloudFormation (tests/support/cfn_foreach.py, installed by moto_cloudformation) -----

FOREACH = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::LanguageExtensions
Parameters:
  Names: {Type: CommaDelimitedList, Default: ""}
Conditions:
  Fn::ForEach::Named:
    - Name
    - !Ref Names
    - Named${Name}: !Not [!Equals [!Ref Name, ""]]
Resources:
  Fn::ForEach::Queues:
    - Name
    - !Ref Names
    - Queue${Name}:
        Type: AWS::SQS::Queue
        Condition: !Sub "Named${Name}"
        Properties:
          QueueName: !Sub "foreach-${Name}"
  Always:
    Type: AWS::SQS::Queue
    Properties: {QueueName: foreach-always}
Outputs:
  Fn::ForEach::Arns:
    - Name
    - !Ref Names
    - Arn${Name}:
        Condition: !Sub "Named${Name}"
        Value:
          Fn::GetAtt: [!Sub "Queue${Name}", Arn]  # (moto's YAML loader reads no tag inside !GetAtt's list)
"""


def test_moto_cloudformation_expands_fn_foreach_at_create_update_and_change_set(moto_endpoint):
    """GIVEN a loop over a CommaDelimitedList WHEN the stack is created, updated and changed through a change set
    THEN the resources and outputs follow the list, and an empty list (CloudFormation's [""]) creates none."""
    cf, sqs = aws_client("cloudformation", moto_endpoint), aws_client("sqs", moto_endpoint)

    def queues() -> list[str]:
        return sorted(url.rsplit("/", 1)[-1] for url in sqs.list_queues().get("QueueUrls", []))

    def outputs() -> list[str]:
        return sorted(o["OutputKey"] for o in cf.describe_stacks(StackName="foreach")["Stacks"][0].get("Outputs", []))

    cf.create_stack(StackName="foreach", TemplateBody=FOREACH,
                    Parameters=[{"ParameterKey": "Names", "ParameterValue": "a,bc"}])
    assert queues() == ["foreach-a", "foreach-always", "foreach-bc"]
    assert outputs() == ["Arna", "Arnbc"]
    cf.update_stack(StackName="foreach", TemplateBody=FOREACH,
                    Parameters=[{"ParameterKey": "Names", "ParameterValue": "a"}])
    assert queues() == ["foreach-a", "foreach-always"]
    cf.create_change_set(StackName="foreach", ChangeSetName="more", TemplateBody=FOREACH, ChangeSetType="UPDATE",
                         Parameters=[{"ParameterKey": "Names", "ParameterValue": "a,d"}])
    cf.execute_change_set(StackName="foreach", ChangeSetName="more")
    assert queues() == ["foreach-a", "foreach-always", "foreach-d"]
    assert outputs() == ["Arna", "Arnd"]
    cf.create_stack(StackName="foreach-empty", TemplateBody=FOREACH.replace("foreach-always", "foreach-other"))
    assert queues() == ["foreach-a", "foreach-always", "foreach-d", "foreach-other"]  # [""]: its Condition is false
