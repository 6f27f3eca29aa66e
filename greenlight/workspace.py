"""The composition root: the one place that turns a target (`local` or `aws`) into working parts.

The CLI, the notebooks and the Lambda handlers all start here:

    ws = Workspace.open("local")                 # GREENLIGHT_HOME, its artifact store and registry
    ws = Workspace.open("aws", region="eu-west-1")
    ws.registry.list_versions("greenlight-models")
    ws.client("sagemaker")                       # one boto3 session per workspace, clients cached

Region rule for `aws` (never a silent default): the `region` argument (the CLI's `--region`), then
`AWS_REGION`, then `AWS_DEFAULT_REGION`, then the region of the AWS profile in use (`AWS_PROFILE`
or `profile`), else one ConfigurationError saying how to set it. A local workspace has the region
"local" (it appears in local model package ARNs) and builds no boto3 session at all.

Everything is built lazily on first use, so a command pays only for what it touches, and boto3 is
imported only by an `aws` workspace.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from greenlight.errors import ConfigurationError, ParameterError
from greenlight.settings import home as default_home

if TYPE_CHECKING:
    from deploy.config import DeployConfig
    from deploy.config import Stage
    from deploy.engine.reconciler import Reconciler
    from deploy.engine.stages import Stages
    from greenlight.registry import LocalModelRegistry, ModelRegistry
    from greenlight.store import LocalArtifactStore

__all__ = ["LOCAL_REGION", "Target", "Workspace", "resolve_region"]

log = logging.getLogger(__name__)

LOCAL_REGION = "local"
USER_AGENT = "greenlight/0.1"


class Target(str, Enum):
    """Where Greenlight acts: this machine's embedded stand-ins, or an AWS account."""

    LOCAL = "local"
    AWS = "aws"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: Target | str) -> Target:
        """The target named by value. Raises: ParameterError naming the choices."""
        try:
            return cls(value)
        except ValueError:
            raise ParameterError(f"unknown target {value!r} (expected one of: "
                                 f"{', '.join(t.value for t in cls)})") from None


def resolve_region(flag: str | None, environ: Mapping[str, str],
                   profile_region: Callable[[], str | None]) -> tuple[str, str]:
    """(region, where it came from) by the rule in the module docstring; pure but for profile_region.

    Raises:
        ConfigurationError: no source gives a region.
    """
    if flag:
        return flag, "--region"
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(name):
            return environ[name], name
    region = profile_region()
    if region:
        return region, "the AWS profile"
    raise ConfigurationError("no AWS region: pass --region, set AWS_REGION (or AWS_DEFAULT_REGION), "
                             "or set a region in your AWS profile (aws configure set region REGION)")


def _profile_region(profile: str | None) -> str | None:
    """The region configured for `profile` (or AWS_PROFILE / default) in ~/.aws/config, if any."""
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    try:
        return botocore.session.Session(profile=profile).get_scoped_config().get("region")
    except ProfileNotFound as exc:
        raise ConfigurationError(f"AWS profile {exc.kwargs.get('profile', profile)!r} is not configured "
                                 "(check AWS_PROFILE or ~/.aws/config)") from None


class Workspace:
    """What commands need for one target: home, artifact store, registry, AWS clients."""

    def __init__(self, target: Target, *, home: Path, region: str, profile: str | None = None,
                 region_source: str = "", session: Any = None):
        self.target = target
        self.home = Path(home)
        self.region = region
        self.region_source = region_source
        self.profile = profile
        self._session = session
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        # ECR client -> a client of its registry's API (default deploy.image.ecr_registry; tests inject another)
        self.image_registry: Any = None

    @classmethod
    def open(cls, target: Target | str = Target.LOCAL, *, region: str | None = None, profile: str | None = None,
             home: Path | None = None, environ: Mapping[str, str] | None = None,
             session: Any = None) -> Workspace:
        """The workspace for `target`; `session` injects a ready boto3 Session (tests, notebooks).

        Raises:
            ParameterError: an unknown target.
            ConfigurationError: `aws` and no region can be found (see the module docstring).
        """
        target = Target.parse(target)
        environ = os.environ if environ is None else environ
        root = Path(home) if home is not None else default_home()
        if target is Target.LOCAL:
            return cls(target, home=root, region=LOCAL_REGION, region_source="local mode")
        profile = profile or environ.get("AWS_PROFILE") or None
        if session is not None and not region:
            region = getattr(session, "region_name", None)
        name, source = resolve_region(region, environ, lambda: _profile_region(profile))
        log.debug("AWS region %s (from %s)", name, source)
        return cls(target, home=root, region=name, profile=profile, region_source=source, session=session)

    def __repr__(self) -> str:
        return f"Workspace({self.target.value}, region={self.region}, home={self.home})"

    # -- AWS ---------------------------------------------------------------------------------

    def _require_aws(self, what: str) -> None:
        if self.target is not Target.AWS:
            raise ConfigurationError(f"{what} needs AWS: use --target aws")

    @property
    def session(self):
        """The one boto3 Session of this workspace (aws only)."""
        self._require_aws("a boto3 session")
        with self._lock:
            if self._session is None:
                import boto3

                self._session = boto3.Session(region_name=self.region, profile_name=self.profile)
            return self._session

    def client(self, service: str):
        """A boto3 client for `service`, built once per workspace (retries in standard mode)."""
        session = self.session
        with self._lock:
            client = self._clients.get(service)
            if client is None:
                from botocore.config import Config

                config = Config(user_agent_extra=USER_AGENT, connect_timeout=10, read_timeout=70,
                                retries={"mode": "standard"})
                client = self._clients[service] = session.client(service, region_name=self.region, config=config)
            return client

    # -- local state and the registry ----------------------------------------------------------

    @cached_property
    def store(self) -> LocalArtifactStore:
        """The local artifact store: s3://bucket/key -> GREENLIGHT_HOME/s3/bucket/key."""
        from greenlight.store import LocalArtifactStore

        return LocalArtifactStore(self.home / "s3")

    @cached_property
    def local_registry(self) -> LocalModelRegistry:
        """The SQLite registry under GREENLIGHT_HOME, with its outbox (local only)."""
        if self.target is not Target.LOCAL:
            raise ConfigurationError("the local registry and its outbox exist in local mode only (--target local)")
        from greenlight.registry import LocalModelRegistry

        return LocalModelRegistry(self.home)

    @cached_property
    def registry(self) -> ModelRegistry:
        """The model registry of this target: SQLite locally, the SageMaker Model Registry on AWS."""
        if self.target is Target.LOCAL:
            return self.local_registry
        from greenlight.registry import SageMakerModelRegistry

        return SageMakerModelRegistry(self.client("sagemaker"))

    # -- deployment ------------------------------------------------------------------------------

    def deploy_config(self, path: Path | None = None, **overrides: Any) -> DeployConfig:
        """The deployment configuration: defaults < greenlight.toml < GREENLIGHT_* variables < overrides."""
        from deploy.config import load_config

        return load_config(path, home=self.home, **overrides)

    def history(self, config: DeployConfig):
        """The deployment history of config's group: SQLite locally, the state table on AWS.

        Raises:
            ConfigurationError: on AWS, no state table is configured.
        """
        if self.target is Target.LOCAL:
            from deploy.engine.local_history import LocalHistory

            return LocalHistory(self.home, config.group)
        from deploy.engine.aws_history import DynamoHistory

        if not config.state_table:
            raise ConfigurationError("the deployment history on AWS is kept in the state table: set state_table "
                                     "(GREENLIGHT_STATE_TABLE)")
        return DynamoHistory(self.client("dynamodb"), config.state_table, config.group)

    def reconciler(self, config: DeployConfig) -> Reconciler | Stages:
        """The deployment engine for config's group, with this target's adapters, lock and status store;
        with [stages], one per stage behind `Stages` (deploy/engine/stages.py)."""
        if not config.stages:
            return self.stage_reconciler(config, config.stage_list()[0])
        from deploy.engine.stages import Stages

        return Stages(config.group, [(stage, self.stage_reconciler(config, stage)) for stage in config.stage_list()])

    def stage_reconciler(self, config: DeployConfig, stage: Stage) -> Reconciler:
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
        if self.target is Target.LOCAL:
            from deploy.endpoint.target import LocalEndpointTarget
            from deploy.engine.local_state import LocalLock, LocalStatusStore

            targets = []
            if config.endpoint.enabled:
                targets.append(LocalEndpointTarget(self.home, stage.key, self.store.path_for,
                                                   smoke_timeout=config.smoke.timeout_seconds))
            if config.lambda_.enabled:
                targets.append(self._local_lambda(config, stage.key))
            if config.batch.enabled:
                targets.append(self._local_batch(config, stage.key))
            return Reconciler(config.group, self.registry, targets,
                              lock=LocalLock(self.home, stage.key, config.lock_timeout_seconds),
                              status=LocalStatusStore(self.home, stage.key), read=self.store.get_bytes,
                              policy=config.when_nothing_approved, smoke_required=config.smoke.required,
                              history=self.history(config), stage=stage.name, gate=gate,
                              traffic=_traffic(config, stage, targets))
        return self._aws_reconciler(config, stage, gate)

    def _aws_reconciler(self, config: DeployConfig, stage: Stage, gate) -> Reconciler:
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
        client = self.client if stage.role_arn is None else self.assumed(stage.role_arn, stage.name)
        if not stage.implicit:  # a stage's Lambda and schedule: only what the deploy stack provides (issue 21)
            from deploy.stage_resources import (require_account_batch, require_account_lambda, require_stage_batch,
                                                require_stage_lambda)

            if config.lambda_.enabled and stage.role_arn is None:
                require_stage_lambda(client("lambda"), stage.name, GroupNames(stage.key).function)
            elif config.lambda_.enabled and stage.role_arn:  # in another account: target-account.yaml's (0056)
                repository, tag = GroupNames(stage.key).repository, self._lambda_base(config)
                require_account_lambda(client("lambda"), client("ecr"), stage.name, GroupNames(stage.key).function,
                                       repository, tag, stage.role_arn,
                                       lambda: self._copy_base(config, client("ecr"), repository, tag))
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
            targets.append(self._aws_lambda(config, stage.key, client, other_account=stage.role_arn is not None))
        if config.batch.enabled:
            targets.append(self._aws_batch(config, stage.key, client))
        dynamodb = self.client("dynamodb")
        return Reconciler(config.group, self.registry, targets,
                          lock=DynamoLease(dynamodb, config.state_table, stage.key,
                                           timeout=config.lock_timeout_seconds),
                          status=DynamoStatusStore(dynamodb, config.state_table, stage.key),
                          read=self._read_s3, policy=config.when_nothing_approved,
                          smoke_required=config.smoke.required,
                          history=self.history(config), stage=stage.name, gate=gate,
                          traffic=_traffic(config, stage, targets))

    def assumed(self, role_arn: str, stage: str):
        """A client factory in the account of `role_arn` (a stage's deploy role, deploy/target-account.yaml):
        credentials from STS AssumeRole, refreshed by botocore before they expire; clients built once."""
        with self._lock:
            made = self._clients.get(f"assumed:{role_arn}")
        if made is not None:
            return made
        import boto3
        import botocore.session
        from botocore.credentials import RefreshableCredentials

        from greenlight.aws_errors import aws_call

        sts = self.client("sts")

        def refresh() -> dict[str, str]:
            found = aws_call("AssumeRole", sts.assume_role, RoleArn=role_arn,
                             RoleSessionName=f"greenlight-{stage}")["Credentials"]
            return {"access_key": found["AccessKeyId"], "secret_key": found["SecretAccessKey"],
                    "token": found["SessionToken"], "expiry_time": found["Expiration"].isoformat()}

        core = botocore.session.Session()
        # botocore has no public setter for refreshable credentials: assigning the session's is the usual way
        core._credentials = RefreshableCredentials.create_from_metadata(  # type: ignore[attr-defined]
            refresh(), refresh, "sts-assume-role")
        session = boto3.Session(botocore_session=core, region_name=self.region)
        other = Workspace(Target.AWS, home=self.home, region=self.region, session=session)
        with self._lock:
            self._clients[f"assumed:{role_arn}"] = other.client
        return other.client

    def _read_s3(self, uri: str) -> bytes:
        """The bytes of an S3 object (the smoke-test data). Raises: NotFoundError, AwsError."""
        from greenlight.aws_errors import aws_errors
        from greenlight.errors import NotFoundError
        from greenlight.store import split_s3_uri

        bucket, key = split_s3_uri(uri)
        with aws_errors("GetObject", lambda: NotFoundError(f"no object at {uri}")):
            return self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()

    def _local_lambda(self, config: DeployConfig, key: str):
        """The Lambda target's local adapter: versions and the alias mirrored under GREENLIGHT_HOME."""
        from deploy.function.local import LocalLambdaTarget
        from deploy.names import GroupNames

        settings = config.lambda_
        return LocalLambdaTarget(self.home, key, self.store.path_for,
                                 function=settings.function_name or GroupNames(key).function,
                                 alias=settings.alias, memory_mb=settings.memory_mb, retention=settings.retention,
                                 smoke_timeout=config.smoke.timeout_seconds)

    def _aws_lambda(self, config: DeployConfig, key: str, client, other_account: bool = False):
        """The Lambda target's AWS adapter: Lambda, S3 and ECR clients; the registry client built per deploy. In
        another account (a stage's role_arn) it pushes to the stage's repository there (`<key>` in lower case,
        deploy/target-account.yaml), copying the base image from the group's repository here when missing.

        Raises:
            ConfigurationError: no ECR repository, or no base image tag and none computable here.
        """
        from deploy.function.aws import AwsLambdaTarget
        from deploy.names import GroupNames

        settings = config.lambda_
        tag = self._lambda_base(config)
        ecr = client("ecr")
        source = repository = settings.ecr_repository or ""
        base_source = None
        if other_account:  # the stage's repository there; the base image copied from the group's here when missing
            repository = GroupNames(key).repository
            base_source = lambda: (self._registry_of(self.client("ecr")), source)  # noqa: E731
        return AwsLambdaTarget(client("lambda"), self.client("s3"), lambda: self._registry_of(ecr), group=key,
                               function=settings.function_name or GroupNames(key).function,
                               repository=repository, base_tag=tag,
                               alias=settings.alias, architecture=settings.architecture, memory_mb=settings.memory_mb,
                               retention=settings.retention, update_timeout=settings.update_timeout_seconds,
                               ecr_client=ecr, cloudwatch_client=client("cloudwatch"), alarms=settings.alarms,
                               base_source=base_source)

    def _lambda_base(self, config: DeployConfig) -> str:
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

    def _registry_of(self, ecr_client):
        """A client of the registry API of `ecr_client`'s account (image_registry if injected)."""
        from deploy.image import ecr_registry

        return (self.image_registry or ecr_registry)(ecr_client)

    def _copy_base(self, config: DeployConfig, ecr_there, repository: str, tag: str) -> None:
        """Copy the Lambda base image from the group's repository here to `repository` in another account."""
        from deploy.image import Platform
        from deploy.image.copy import copy_image

        copy_image(self._registry_of(self.client("ecr")), config.lambda_.ecr_repository or "",
                   self._registry_of(ecr_there), repository, tag,
                   platform=Platform.for_lambda(config.lambda_.architecture))

    def _local_batch(self, config: DeployConfig, key: str):
        """The batch target's local adapter: the local schedule under GREENLIGHT_HOME/batch/schedules."""
        from deploy.batch.local_target import LocalBatchTarget

        return LocalBatchTarget(self.home, config.group, config.batch, self.store.path_for, key=key)

    def _aws_batch(self, config: DeployConfig, key: str, client):
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
