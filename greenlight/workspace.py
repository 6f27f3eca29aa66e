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
imported only by an `aws` workspace. How one stage's engine is wired from these parts (its targets per mode,
lease, status, clients in another account) is greenlight/stage_composition.py's; `Workspace` is its facade.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from enum import Enum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
        are today's (the key is the group). Built by greenlight/stage_composition.py from this workspace's parts.

        Raises:
            ConfigurationError: on AWS, what the stage's targets need and is not set or not provided
                (greenlight.stage_composition).
        """
        from greenlight.stage_composition import stage_reconciler

        return stage_reconciler(self, config, stage)

    def assumed(self, role_arn: str, stage: str):
        """A client factory in the account of `role_arn` (a stage's deploy role, deploy/target-account.yaml):
        credentials from STS AssumeRole, refreshed by botocore before they expire; clients built once."""
        with self._lock:
            made = self._clients.get(f"assumed:{role_arn}")
        if made is not None:
            return made
        from greenlight.stage_composition import assumed_session

        other = Workspace(Target.AWS, home=self.home, region=self.region,
                          session=assumed_session(self, role_arn, stage))
        with self._lock:
            self._clients[f"assumed:{role_arn}"] = other.client
        return other.client
