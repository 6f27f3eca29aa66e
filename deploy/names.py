"""Every AWS name Greenlight derives from a model package group, fitted to each API's rule (pure).

    names = GroupNames("churn-prediction-models-p-abcdefghijkl")
    names.job_prefix             'churn-prediction-8f0c2a1e'   (TransformJobName prefix: at most 26)
    names.role("approval")       'churn-prediction-models-p-abcdefghijkl-approval'
    fit(ECR_REPOSITORY, "Churn")  'churn'

One rule per kind of name (`NameRule`: length and pattern, lower case where the name appears in ARNs
that IAM compares case-sensitively). Each rule's limits are copied from botocore's service model where
the operation's input shape has them (tests/unit/test_names.py compares every copy with botocore, so
an SDK upgrade that changes a limit fails a test instead of changing names), and from the service's
documented quotas otherwise (IAM, SQS, DynamoDB, CloudFormation, S3), named in `source`.

`fit(rule, head, suffix)` is the one name function, and it never changes (names are how the engine
finds what it created: a different name for the same group would orphan resources):

1. `head + suffix`, in lower case if the rule says so, when the rule accepts it (the common case:
   a group of up to 48 characters with the templates' suffixes comes back unchanged);
2. else `<head cut>-<hash8><suffix>`: the head cut to what is left after the suffix and the first 8
   hex digits of sha256(head + suffix), so different groups keep different names;
3. else NameDerivationError (a ConfigurationError) naming the rule: a head that no cut can fit, which
   only a bad suffix can cause for the groups SageMaker allows. Callers derive a target's names when
   that target deploys, so one underivable name fails that target, never the approval handler's start.

A SageMaker model package group is a SageMaker entity name (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`, also
what `DeployConfig.group` accepts); SageMaker writes names in lower case in its ARNs, so `arn_name` is
the form policies must use. In a SageMaker Project the group is `<ProjectName>-<ProjectId>`
(`project_group`). tests/unit/test_names.py checks every name of every such group against its rule
with hypothesis.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from greenlight.errors import ConfigurationError

__all__ = ["ALARM", "CODEBUILD_PROJECT", "CODEPIPELINE", "DIGEST", "DYNAMODB_TABLE", "ECR_REPOSITORY", "EVENTS_RULE",
           "GROUP", "IAM_PATH", "IAM_POLICY", "IAM_ROLE", "IMAGE_TAG", "LAMBDA_FUNCTION", "LOG_GROUP", "PROJECT_ID",
           "PROJECT_NAME", "RULES", "S3_KEY", "SAGEMAKER", "SCHEDULE", "SQS_QUEUE", "SSM_PARAMETER", "STACK",
           "TRANSFORM_JOB_PREFIX", "GroupNames", "NameDerivationError", "NameRule", "fit", "parse_versioned",
           "project_group", "versioned", "versioned_prefix"]

DIGEST = 8  # hex digits of sha256 in a fitted name
_ENTITY = r"[a-zA-Z0-9](-*[a-zA-Z0-9])*"  # SageMaker's entity names, without a length bound


class NameDerivationError(ConfigurationError):
    """A name that no cut of its head can fit into its rule (one line naming the rule)."""


@dataclass(frozen=True)
class NameRule:
    """What an API accepts for one kind of name: min/max length and a full-match pattern."""

    what: str
    max_length: int
    pattern: str
    source: str
    min_length: int = 1
    lower: bool = False  # the name is lower case (ECR), or it appears in ARNs compared case-sensitively

    def accepts(self, name: str) -> bool:
        return (self.min_length <= len(name) <= self.max_length and re.fullmatch(self.pattern, name) is not None
                and (not self.lower or name == name.lower()))


SAGEMAKER = NameRule("SageMaker name (endpoint, endpoint config, model, transform job, model package group)", 63,
                     r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", "botocore sagemaker EndpointName, EndpointConfigName, "
                     "TransformJobName, EntityName (ModelName: the same language)")
GROUP = NameRule("model package group", 63, r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
                 "botocore sagemaker CreateModelPackageGroup ModelPackageGroupName (EntityName)")
PROJECT_NAME = NameRule("SageMaker project name", 32, r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}",
                        "botocore sagemaker ProjectEntityName")
PROJECT_ID = NameRule("SageMaker project id", 20, _ENTITY, "botocore sagemaker ProjectId")
# A scheduled job is <prefix>-<aws.scheduler.execution-id>; the execution id's length is not documented
# (the example has 16 characters), so the prefix leaves 36 free: 63 - 1 - 36 = 26.
TRANSFORM_JOB_PREFIX = NameRule("TransformJobName prefix", 26, _ENTITY,
                                "botocore sagemaker TransformJobName, less '-' and 36 for the execution id", lower=True)
LAMBDA_FUNCTION = NameRule("Lambda function name", 64, r"[a-zA-Z0-9_-]+",
                           "Lambda quotas (function name: 64 characters); botocore lambda FunctionName pattern")
IAM_ROLE = NameRule("IAM role name", 64, r"[\w+=,.@-]+", "botocore iam roleNameType")
IAM_POLICY = NameRule("IAM policy name", 128, r"[\w+=,.@-]+", "botocore iam policyNameType")
IAM_PATH = NameRule("IAM path", 512, r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)", "botocore iam pathType")
SCHEDULE = NameRule("EventBridge Scheduler schedule name", 64, r"[0-9a-zA-Z-_.]+", "botocore scheduler Name")
EVENTS_RULE = NameRule("EventBridge rule name", 64, r"[\.\-_A-Za-z0-9]+", "botocore events RuleName")
ECR_REPOSITORY = NameRule("ECR repository name", 256,
                          r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*",
                          "botocore ecr RepositoryName", min_length=2, lower=True)
IMAGE_TAG = NameRule("image tag", 128, r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}",
                     "OCI distribution spec tag grammar (ECR's ImageTag allows 300)")
DYNAMODB_TABLE = NameRule("DynamoDB table name", 255, r"[a-zA-Z0-9_.-]+",
                          "DynamoDB naming rules (3-255 of a-z A-Z 0-9 _ - .)", min_length=3)
SQS_QUEUE = NameRule("SQS queue name", 80, r"[a-zA-Z0-9_-]+",
                     "SQS quotas (queue name: 80 alphanumerics, hyphens and underscores)")
LOG_GROUP = NameRule("CloudWatch Logs log group name", 512, r"[\.\-_/#A-Za-z0-9]+", "botocore logs LogGroupName")
ALARM = NameRule("CloudWatch alarm name", 255, r"[^\x00-\x1f]+", "botocore cloudwatch AlarmName")
STACK = NameRule("CloudFormation stack name", 128, r"[a-zA-Z][-a-zA-Z0-9]*",
                 "botocore cloudformation StackNameOrId pattern; CloudFormation quotas (128 characters)")
CODEBUILD_PROJECT = NameRule("CodeBuild project name", 150, r"[A-Za-z0-9][A-Za-z0-9\-_]{1,149}",
                             "botocore codebuild ProjectName", min_length=2)
CODEPIPELINE = NameRule("CodePipeline pipeline name", 100, r"[A-Za-z0-9.@\-_]+", "botocore codepipeline PipelineName")
SSM_PARAMETER = NameRule("SSM parameter name", 2048, r"[a-zA-Z0-9_.\-/]+", "botocore ssm PSParameterName; SSM "
                                                                          "naming rules (a-z A-Z 0-9 _ . - /)")
S3_KEY = NameRule("S3 object key", 1024, r"[^\x00]+", "S3 object key naming (1024 bytes of UTF-8)")
RULES = {name: value for name, value in globals().items() if isinstance(value, NameRule)}


def _digest(text: str, length: int = DIGEST) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def fit(rule: NameRule, head: str, suffix: str = "") -> str:
    """The name `head + suffix` fitted to `rule` (module docstring: the algorithm never changes).

    Raises:
        NameDerivationError: no cut of `head` fits (a suffix too long for the rule, or characters it refuses).
    """
    whole = head + suffix
    name = whole.lower() if rule.lower else whole
    if rule.accepts(name):
        return name
    room = rule.max_length - len(suffix) - 1 - DIGEST
    cut = (head.lower() if rule.lower else head)[:max(room, 0)].rstrip("-_.")
    name = f"{cut}-{_digest(whole)}{suffix}" if cut else f"{_digest(whole)}{suffix}"
    if not rule.accepts(name):
        raise NameDerivationError(f"cannot derive a {rule.what} from {whole!r}: {rule.min_length}-{rule.max_length} "
                                  f"characters of {rule.pattern} ({rule.source}), and {name!r} is not")
    return name


def project_group(project_name: str, project_id: str) -> str:
    """The model package group of a SageMaker Project: `<ProjectName>-<ProjectId>` (what AWS's project
    templates and Greenlight's CodeBuild use). Raises: NameDerivationError for a name or id SageMaker refuses."""
    for rule, value in ((PROJECT_NAME, project_name), (PROJECT_ID, project_id)):
        if not rule.accepts(value):
            raise NameDerivationError(f"{value!r} is not a {rule.what} ({rule.pattern}, at most {rule.max_length})")
    return fit(GROUP, f"{project_name}-{project_id}")


# -- SageMaker names of a version: <group>-v<N>-<kind><digest> -------------------------------------------

_VERSIONED = re.compile(r"^(?P<head>[a-zA-Z0-9-]+)-v(?P<version>\d+)-(?P<kind>[a-z])(?P<digest>[0-9a-f]{4,8})$")


def versioned(group: str, version: int, kind: str, digest: str) -> str:
    """`<group>-v<version>-<kind><digest>` within SageMaker's 63 characters: the whole group with the
    digest shortened to no fewer than 4 hex digits if that fits, else (as Greenlight always did) the
    group cut with all 8 digits. The digest is the caller's hash of what the resource holds."""
    for length in range(len(digest), 3, -1):
        name = f"{group}-v{version}-{kind}{digest[:length]}"
        if len(name) <= SAGEMAKER.max_length:
            return name
    suffix = f"-v{version}-{kind}{digest}"
    return group[:SAGEMAKER.max_length - len(suffix)].rstrip("-") + suffix


def parse_versioned(group: str, name: str, kind: str | None = None) -> tuple[int, str] | None:
    """(version, kind) if `name` is one of `group`'s versioned names (of `kind`, when given), else None.
    Both forms `versioned` gives are recognised (the whole group, or the cut one)."""
    match = _VERSIONED.match(name)
    if match is None or (kind is not None and match["kind"] != kind):
        return None
    suffix = f"-v{match['version']}-{match['kind']}{match['digest']}"
    if match["head"] not in (group, group[:SAGEMAKER.max_length - len(suffix)].rstrip("-")):
        return None
    return int(match["version"]), match["kind"]


def versioned_prefix(group: str) -> str:
    """A prefix every versioned name of `group` starts with (for NameContains): the group cut to 39
    characters, which every cut in `versioned` keeps while versions have fewer than 13 digits."""
    return group[:39].rstrip("-")


@dataclass(frozen=True)
class GroupNames:
    """The names of one group's AWS resources (each through `fit`; properties raise NameDerivationError)."""

    group: str

    @property
    def arn_name(self) -> str:
        """The group as SageMaker writes it in ARNs (lower case), for policies."""
        return self.group.lower()

    def stage(self, name: str | None) -> str:
        """The deployment key of a stage (issue 21): the group itself for the implicit stage (None), else
        `<group>-<stage>` fitted as a group name; its own GroupNames derive that stage's target names."""
        return self.group if name is None else fit(GROUP, self.group, f"-{name}")

    @property
    def endpoint(self) -> str:
        return fit(SAGEMAKER, self.group)

    @property
    def function(self) -> str:
        """The inference Lambda."""
        return fit(LAMBDA_FUNCTION, self.group)

    @property
    def handler_function(self) -> str:
        """The approval handler."""
        return fit(LAMBDA_FUNCTION, self.group, "-approval")

    def role(self, kind: str) -> str:
        return fit(IAM_ROLE, self.group, f"-{kind}")

    @property
    def role_path(self) -> str:
        return fit(IAM_PATH, f"/greenlight/{self.group}/")

    @property
    def boundary_policy(self) -> str:
        """The permissions boundary every role of the deploy stack carries."""
        return fit(IAM_POLICY, self.group, "-boundary")

    @property
    def repository(self) -> str:
        """The ECR repository of the inference Lambda's base and model images."""
        return fit(ECR_REPOSITORY, self.group)

    def image_tag(self, version: int) -> str:
        return fit(IMAGE_TAG, self.group, f"-v{version}")

    @property
    def state_table(self) -> str:
        return fit(DYNAMODB_TABLE, self.group, "-greenlight-state")

    def queue(self, kind: str) -> str:
        return fit(SQS_QUEUE, self.group, f"-{kind}-dlq")

    @property
    def approval_rule(self) -> str:
        return fit(EVENTS_RULE, self.group, "-approval")

    @property
    def batch_schedule(self) -> str:
        return fit(SCHEDULE, self.group, "-batch")

    @property
    def resync_schedule(self) -> str:
        return fit(SCHEDULE, self.group, "-resync")

    @property
    def monitor_function(self) -> str:
        """The scheduled drift monitor (deploy/monitor_handler.py)."""
        return fit(LAMBDA_FUNCTION, self.group, "-drift-monitor")

    @property
    def monitor_schedule(self) -> str:
        return fit(SCHEDULE, self.group, "-drift-monitor")

    @property
    def job_prefix(self) -> str:
        """The default TransformJobName prefix of the group's scheduled and smoke jobs."""
        return fit(TRANSFORM_JOB_PREFIX, self.group)

    def log_group(self, kind: str) -> str:
        return fit(LOG_GROUP, f"/greenlight/{self.group}/{kind}")

    def inference_log_group(self, stage: str | None = None) -> str:
        """The inference Lambda's log group: the group's `/greenlight/<group>/inference`, or a stage's
        `/greenlight/<group>/<stage>/inference` (the deploy stack's StageLambdas, docs/decisions/0053)."""
        return self.log_group("inference" if stage is None else f"{stage}/inference")

    def alarm(self, kind: str) -> str:
        return fit(ALARM, self.group, f"-{kind}")

    def codebuild(self, kind: str) -> str:
        return fit(CODEBUILD_PROJECT, self.group, f"-{kind}")

    @property
    def pipeline(self) -> str:
        """The SageMaker Pipeline (`greenlight pipeline upsert` in a project)."""
        return fit(SAGEMAKER, self.group)

    @property
    def codepipeline(self) -> str:
        """The CodePipeline pipeline of a SageMaker Project (deploy/project.yaml)."""
        return fit(CODEPIPELINE, f"greenlight-{self.group}")

    @property
    def stacks(self) -> tuple[str, str]:
        """(bootstrap stack, deploy stack)."""
        return fit(STACK, f"greenlight-{self.group}", "-bootstrap"), fit(STACK, f"greenlight-{self.group}")

    def s3_prefix(self, *parts: str) -> str:
        """`<group>/<parts>/` in the artifact bucket."""
        return fit(S3_KEY, "/".join((self.group, *parts)) + "/")
