"""How one stage's deployment engine is built from a workspace's parts (the composition root's wiring of targets).

`Workspace.stage_reconciler` (greenlight/workspace.py) delegates here: the stage's targets named from its key
(local adapters under GREENLIGHT_HOME, or AWS adapters with the workspace's clients), its lock, status store and
traffic policies; a stage with a `role_arn` gets its targets' clients in that account (`assumed_session`, cached by
`Workspace.assumed`), checked first against what deploy/target-account.yaml provides there. Nothing here reads
the environment or builds a client of its own: every client comes from the workspace.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from greenlight.errors import ConfigurationError
from greenlight.workspace import Target

if TYPE_CHECKING:
    from deploy.config import DeployConfig, Stage
    from deploy.engine.reconciler import Reconciler
    from greenlight.workspace import Workspace

__all__ = ["assumed_session", "read_s3", "stage_reconciler"]


def stage_reconciler(ws: Workspace, config: DeployConfig, stage: Stage) -> Reconciler:
    """One stage's engine: its targets (named from the stage's key), lock and status; the implicit stage's
    are today's (the key is the group)."""
    from deploy.engine.model import Gate
    from deploy.engine.reconciler import Reconciler

    gate = Gate() if stage.implicit else Gate(stage.name, stage.gate == "promotion")
    if not stage.implicit:
        config = config.model_copy(update={  # the stage's targets, named from its key
            "endpoint": config.endpoint.model_copy(update={"enabled": stage.endpoint, "name": None,
                                                           "role_arn": stage.endpoint_role_arn}),
            "lambda_": config.lambda_.model_copy(update={"enabled": stage.lambda_, "function_name": None,
                                                         "alarms": _stage_alarms(config, stage)}),
            "batch": config.batch.model_copy(update={"enabled": stage.batch, "schedule_name": None,
                                                     "job_name_prefix": None, **dict(stage.batch_overrides)})})
    if ws.target is Target.LOCAL:
        from deploy.endpoint.target import LocalEndpointTarget
        from deploy.engine.local_state import LocalLock, LocalStatusStore

        targets = []
        if config.endpoint.enabled:
            targets.append(LocalEndpointTarget(ws.home, stage.key, ws.store.path_for,
                                               smoke_timeout=config.smoke.timeout_seconds))
        if config.lambda_.enabled:
            targets.append(_local_lambda(ws, config, stage.key))
        if config.batch.enabled:
            targets.append(_local_batch(ws, config, stage.key))
        return Reconciler(config.group, ws.registry, targets,
                          lock=LocalLock(ws.home, stage.key, config.lock_timeout_seconds),
                          status=LocalStatusStore(ws.home, stage.key), read=ws.store.get_bytes,
                          policy=config.when_nothing_approved, smoke_required=config.smoke.required,
                          history=ws.history(config), stage=stage.name, gate=gate,
                          traffic=_traffic(config, stage, targets))
    return _aws_reconciler(ws, config, stage, gate)


def _aws_reconciler(ws: Workspace, config: DeployConfig, stage: Stage, gate) -> Reconciler:
    """The engine on AWS: the SageMaker endpoint, Lambda and batch targets, the DynamoDB lease and status store;
    a stage's targets in the account of its `role_arn` (assumed), named from its key; lease and status here.

    Raises:
        ConfigurationError: no state table, no execution role while the endpoint or the batch target is
            enabled, no ECR repository while the Lambda is, what the batch target needs (_aws_batch), an
            endpoint traffic policy SageMaker's guardrails refuse (deploy.endpoint.aws_guardrails), or a
            stage's Lambda or schedule the deploy stack does not provide (deploy.stage_resources).
    """
    from deploy.endpoint.aws import SageMakerEndpointTarget
    from deploy.engine.aws_state import DynamoLease, DynamoStatusStore
    from deploy.engine.reconciler import Reconciler
    from deploy.names import GroupNames

    if not config.state_table:
        raise ConfigurationError("deploying to AWS needs a DynamoDB table for the reconcile lease and status: "
                                 "set state_table (GREENLIGHT_STATE_TABLE); its partition key is 'pk' (String)")
    client = ws.client if stage.role_arn is None else ws.assumed(stage.role_arn, stage.name)
    if not stage.implicit:  # a stage's Lambda and schedule: only what the deploy stack provides (issue 21)
        from deploy.stage_resources import (require_account_batch, require_account_lambda, require_stage_batch,
                                            require_stage_lambda)

        if config.lambda_.enabled and stage.role_arn is None:
            require_stage_lambda(client("lambda"), stage.name, GroupNames(stage.key).function)
        elif config.lambda_.enabled and stage.role_arn:  # in another account: target-account.yaml's (0056)
            repository, tag = GroupNames(stage.key).repository, _lambda_base(config)
            require_account_lambda(client("lambda"), client("ecr"), stage.name, GroupNames(stage.key).function,
                                   repository, tag, stage.role_arn,
                                   lambda: _copy_base(ws, config, client("ecr"), repository, tag))
        if config.batch.enabled and stage.role_arn is None:
            require_stage_batch(client("scheduler"), stage.name, config.batch.schedule_name_for(stage.key))
        elif config.batch.enabled and stage.role_arn:  # in another account: target-account.yaml's (0059)
            require_account_batch(client("scheduler"), client("iam"), stage, config.batch.names_for(stage.key))
    targets = []
    if config.endpoint.enabled:
        if not config.endpoint.role_arn:
            raise ConfigurationError("the SageMaker endpoint needs an execution role for its models: set "
                                     "endpoint.role_arn (GREENLIGHT_ENDPOINT_ROLE_ARN), or set "
                                     "endpoint.enabled = false")
        # a progressive policy SageMaker's guardrails would refuse is one ConfigurationError here (aws_guardrails)
        targets.append(SageMakerEndpointTarget(client("sagemaker"), client("sagemaker-runtime"),
                                               config.endpoint, stage.key, config.endpoint.role_arn,
                                               traffic=config.traffic_policy("endpoint", stage)))
    if config.lambda_.enabled:
        targets.append(_aws_lambda(ws, config, stage.key, client, other_account=stage.role_arn is not None))
    if config.batch.enabled:
        targets.append(_aws_batch(config, stage.key, client))
    dynamodb = ws.client("dynamodb")
    return Reconciler(config.group, ws.registry, targets,
                      lock=DynamoLease(dynamodb, config.state_table, stage.key,
                                       timeout=config.lock_timeout_seconds),
                      status=DynamoStatusStore(dynamodb, config.state_table, stage.key),
                      read=partial(read_s3, ws), policy=config.when_nothing_approved,
                      smoke_required=config.smoke.required,
                      history=ws.history(config), stage=stage.name, gate=gate,
                      traffic=_traffic(config, stage, targets))


def assumed_session(ws: Workspace, role_arn: str, stage: str):
    """A boto3 Session in the account of `role_arn` (a stage's deploy role, deploy/target-account.yaml):
    credentials from STS AssumeRole through ws's STS client, refreshed by botocore before they expire."""
    import boto3
    import botocore.session
    from botocore.credentials import RefreshableCredentials

    from greenlight.aws_errors import aws_call

    sts = ws.client("sts")

    def refresh() -> dict[str, str]:
        found = aws_call("AssumeRole", sts.assume_role, RoleArn=role_arn,
                         RoleSessionName=f"greenlight-{stage}")["Credentials"]
        return {"access_key": found["AccessKeyId"], "secret_key": found["SecretAccessKey"],
                "token": found["SessionToken"], "expiry_time": found["Expiration"].isoformat()}

    core = botocore.session.Session()
    # botocore has no public setter for refreshable credentials: assigning the session's is the usual way
    core._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
        refresh(), refresh, "sts-assume-role")
    return boto3.Session(botocore_session=core, region_name=ws.region)


def read_s3(ws: Workspace, uri: str) -> bytes:
    """The bytes of an S3 object (the smoke-test data). Raises: NotFoundError, AwsError."""
    from greenlight.aws_errors import aws_errors
    from greenlight.errors import NotFoundError
    from greenlight.store import split_s3_uri

    bucket, key = split_s3_uri(uri)
    with aws_errors("GetObject", lambda: NotFoundError(f"no object at {uri}")):
        return ws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def _local_lambda(ws: Workspace, config: DeployConfig, key: str):
    """The Lambda target's local adapter: versions and the alias mirrored under GREENLIGHT_HOME."""
    from deploy.function.local import LocalLambdaTarget
    from deploy.names import GroupNames

    settings = config.lambda_
    return LocalLambdaTarget(ws.home, key, ws.store.path_for,
                             function=settings.function_name or GroupNames(key).function,
                             alias=settings.alias, memory_mb=settings.memory_mb, retention=settings.retention,
                             smoke_timeout=config.smoke.timeout_seconds)


def _aws_lambda(ws: Workspace, config: DeployConfig, key: str, client, other_account: bool = False):
    """The Lambda target's AWS adapter: Lambda, S3 and ECR clients; the registry client built per deploy. In
    another account (a stage's role_arn) it pushes to the stage's repository there (`<key>` in lower case,
    deploy/target-account.yaml), copying the base image from the group's repository here when missing.

    Raises:
        ConfigurationError: no ECR repository, or no base image tag and none computable here.
    """
    from deploy.function.aws import AwsLambdaTarget
    from deploy.names import GroupNames

    settings = config.lambda_
    tag = _lambda_base(config)
    ecr = client("ecr")
    source = repository = settings.ecr_repository or ""
    base_source = None
    if other_account:  # the stage's repository there; the base image copied from the group's here when missing
        repository = GroupNames(key).repository
        base_source = lambda: (_registry_of(ws, ws.client("ecr")), source)  # noqa: E731
    return AwsLambdaTarget(client("lambda"), ws.client("s3"), lambda: _registry_of(ws, ecr), group=key,
                           function=settings.function_name or GroupNames(key).function,
                           repository=repository, base_tag=tag,
                           alias=settings.alias, architecture=settings.architecture, memory_mb=settings.memory_mb,
                           retention=settings.retention, update_timeout=settings.update_timeout_seconds,
                           ecr_client=ecr, cloudwatch_client=client("cloudwatch"), alarms=settings.alarms,
                           base_source=base_source)


def _lambda_base(config: DeployConfig) -> str:
    """The Lambda base image's tag: lambda.base_image_tag, else this code's (what CodeBuild tags it).

    Raises:
        ConfigurationError: no ECR repository, or no tag set and none computable here.
    """
    from deploy.image import Platform, base_tag
    from deploy.image.base_tag import BaseTagError

    settings = config.lambda_
    if not settings.ecr_repository:
        raise ConfigurationError("the Lambda target on AWS needs the ECR repository of its base image: set "
                                 "lambda.ecr_repository (GREENLIGHT_LAMBDA_ECR_REPOSITORY), or set "
                                 "lambda.enabled = false")
    if settings.base_image_tag is not None:
        return settings.base_image_tag
    try:  # the tag CodeBuild gives the base image of this code (deploy/lambda/buildspec.yml)
        return base_tag(Path(__file__).resolve().parents[1], str(Platform.for_lambda(settings.architecture)))
    except BaseTagError as exc:
        raise ConfigurationError(f"cannot compute the Lambda base image's tag here ({exc}): set "
                                 "lambda.base_image_tag (GREENLIGHT_LAMBDA_BASE_IMAGE_TAG)") from None


def _registry_of(ws: Workspace, ecr_client):
    """A client of the registry API of `ecr_client`'s account (image_registry if injected)."""
    from deploy.image import ecr_registry

    return (ws.image_registry or ecr_registry)(ecr_client)


def _copy_base(ws: Workspace, config: DeployConfig, ecr_there, repository: str, tag: str) -> None:
    """Copy the Lambda base image from the group's repository here to `repository` in another account."""
    from deploy.image import Platform
    from deploy.image.copy import copy_image

    copy_image(_registry_of(ws, ws.client("ecr")), config.lambda_.ecr_repository or "",
               _registry_of(ws, ecr_there), repository, tag,
               platform=Platform.for_lambda(config.lambda_.architecture))


def _local_batch(ws: Workspace, config: DeployConfig, key: str):
    """The batch target's local adapter: the local schedule under GREENLIGHT_HOME/batch/schedules."""
    from deploy.batch.local_target import LocalBatchTarget

    return LocalBatchTarget(ws.home, config.group, config.batch, ws.store.path_for, key=key)


def _aws_batch(config: DeployConfig, key: str, client):
    """The batch target's AWS adapter: EventBridge Scheduler, SageMaker and S3 clients.

    Raises:
        ConfigurationError: one error naming everything the schedule needs and is not set (the
            Scheduler role, S3 input and output, the dead-letter queue, the Models' execution role).
    """
    from deploy.batch.aws_target import SageMakerBatchTarget

    batch = config.batch
    missing = [what for what, ok in (
        ("batch.role_arn (GREENLIGHT_BATCH_ROLE_ARN): the role EventBridge Scheduler starts the jobs as",
         batch.role_arn),
        ("batch.input (GREENLIGHT_BATCH_INPUT): an s3:// prefix the jobs read",
         (batch.input or "").startswith("s3://")),
        ("batch.output (GREENLIGHT_BATCH_OUTPUT): an s3:// prefix the jobs write under",
         (batch.output or "").startswith("s3://")),
        ("batch.dead_letter_arn (GREENLIGHT_BATCH_DEAD_LETTER_ARN): the SQS queue of runs the scheduler "
         "could not start", batch.dead_letter_arn),
        ("endpoint.role_arn (GREENLIGHT_ENDPOINT_ROLE_ARN): the SageMaker execution role the jobs' Model "
         "runs as", config.endpoint.role_arn)) if not ok]
    role_arn = config.endpoint.role_arn
    if missing or not role_arn:
        raise ConfigurationError("the batch target on AWS needs " + "; ".join(missing) + " (the deploy stack "
                                 "sets them all), or set batch.enabled = false")
    return SageMakerBatchTarget(client("scheduler"), client("sagemaker"), client("s3"), batch, key, role_arn)


def _stage_alarms(config: DeployConfig, stage: Stage) -> tuple[str, ...]:
    """A stage Lambda's rollback alarms: the configured ones, with the deploy stack's alarms on the group's alias
    (`<group>-lambda-errors`, `-latency`) replaced by the stack's on the stage's (`<key>-lambda-...`, issue 21)."""
    from deploy.names import GroupNames

    group, key = GroupNames(config.group), GroupNames(stage.key)
    own = {group.alarm(kind): key.alarm(kind) for kind in ("lambda-errors", "lambda-latency")}
    return tuple(own.get(name, name) for name in config.lambda_.alarms)


def _traffic(config: DeployConfig, stage: Stage, targets: list) -> dict[str, Any]:
    """Each online target's TrafficPolicy (issue 22): its section's, with the stage's `traffic` if it sets one.
    Every online target implements TrafficTarget, locally and on AWS (SageMaker's guardrails, a weighted alias)."""
    from deploy.engine.model import TargetKind

    sections: dict[TargetKind, Literal["endpoint", "lambda"]] = {TargetKind.ENDPOINT: "endpoint",
                                                                 TargetKind.LAMBDA: "lambda"}
    return {t.name: config.traffic_policy(sections[t.kind], stage) for t in targets if t.kind in sections}
