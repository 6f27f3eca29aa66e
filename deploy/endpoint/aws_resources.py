"""The SageMaker calls the endpoint target makes, one method each, through greenlight.aws_errors.

`GroupResources` knows a group's SageMaker Models and endpoint configs: find or create a version's
Model (deterministic name and tags: aws_names), list them, delete one the group owns. The endpoint
target and the batch target (deploy.batch.aws_target: its schedule names the same Models) share it.
`EndpointResources` adds one endpoint: describe, create, update, wait for, delete;
deploy.endpoint.aws decides which of them to call. Creations describe first and create only what is
missing.

moto 5.2 quirks handled here: AddTags appends a second value for an existing key instead of
replacing it (tags are read in order and the last value wins, which is what AWS's replace gives);
ListModels ignores NameContains (names are matched by pattern here anyway).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from deploy.endpoint.aws_names import config_name, model_name, name_prefix, parse_name, serverless_config
from deploy.engine.deadline import hand_over_before_sleep
from deploy.engine.model import Release
from greenlight.aws_errors import aws_errors as _aws
from greenlight.errors import AwsError, DeploymentFailed, NotFoundError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import DeploymentConfigTypeDef, TagTypeDef

    from deploy.config import EndpointConfig

__all__ = ["GROUP_TAG", "SERVING", "SETTLING", "VERSION_TAG", "EndpointResources", "GroupResources"]

log = logging.getLogger(__name__)

GROUP_TAG, VERSION_TAG = "greenlight:group", "greenlight:model-version"
SETTLING = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
SERVING = frozenset({"InService", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed"})


class _Gone(NotFoundError):
    """The resource described does not exist (internal)."""


class GroupResources:
    """A group's SageMaker Models and endpoint configs, over an injected client."""

    def __init__(self, sagemaker: SageMakerClient, group: str):
        self._sm, self.group = sagemaker, group

    def tags(self, arn: str) -> dict[str, str]:
        """A resource's tags; on a repeated key the last value wins (moto appends on AddTags)."""
        with _aws("ListTags"):
            pages = self._sm.get_paginator("list_tags").paginate(ResourceArn=arn)
            return {t["Key"]: t["Value"] for page in pages for t in page.get("Tags", [])}

    def model_of(self, config: str) -> str | None:
        """The model an endpoint config serves (None: the config is gone)."""
        try:
            with _aws("DescribeEndpointConfig", lambda: _Gone(config)):
                variants = self._sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        except _Gone:
            return None
        return variants[0]["ModelName"] if variants else None

    def listed(self, kind: str) -> dict[str, int]:
        """{name: version} of the group's endpoint configs (kind 'c') or models ('m')."""
        prefix = name_prefix(self.group)
        if kind == "c":
            with _aws("ListEndpointConfigs"):
                pages = self._sm.get_paginator("list_endpoint_configs").paginate(NameContains=prefix)
                names = [item["EndpointConfigName"] for page in pages for item in page.get("EndpointConfigs", [])]
        else:
            with _aws("ListModels"):
                models = self._sm.get_paginator("list_models").paginate(NameContains=prefix)
                names = [item["ModelName"] for page in models for item in page.get("Models", [])]
        return {n: parsed[0] for n in names for parsed in [parse_name(self.group, n, kind)] if parsed}

    # -- writes --------------------------------------------------------------------------------------

    def _version_tags(self, version: int) -> list[TagTypeDef]:
        return [{"Key": GROUP_TAG, "Value": self.group}, {"Key": VERSION_TAG, "Value": str(version)}]

    def ensure_model(self, release: Release, role_arn: str) -> str:
        """The Model of `release` from its versioned package ARN; created only if missing."""
        name = model_name(self.group, release.version, release.package_arn, role_arn)
        try:
            with _aws("DescribeModel", lambda: _Gone(name)):
                self._sm.describe_model(ModelName=name)
            return name
        except _Gone:
            pass
        with _aws("CreateModel"):
            self._sm.create_model(ModelName=name, ExecutionRoleArn=role_arn,
                                  Containers=[{"ModelPackageName": release.package_arn}],
                                  Tags=self._version_tags(release.version))
        log.info("created model %s from %s", name, release.package_arn)
        return name

    def ensure_config(self, release: Release, model: str, settings: EndpointConfig) -> str:
        """The endpoint config serving `model` with the configured ServerlessConfig; created only if missing."""
        name = config_name(self.group, release.version, model, settings)
        try:
            with _aws("DescribeEndpointConfig", lambda: _Gone(name)):
                self._sm.describe_endpoint_config(EndpointConfigName=name)
            return name
        except _Gone:
            pass
        with _aws("CreateEndpointConfig"):
            self._sm.create_endpoint_config(
                EndpointConfigName=name, Tags=self._version_tags(release.version),
                ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": model,
                                     "ServerlessConfig": serverless_config(settings)}])
        log.info("created endpoint config %s (%s)", name, serverless_config(settings))
        return name

    def add_tags(self, arn: str, tags: dict[str, str]) -> None:
        with _aws("AddTags"):
            self._sm.add_tags(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def delete_owned(self, kind: str, name: str) -> bool:
        """Delete one of the group's models ('m') or endpoint configs ('c') if its tags say it is the group's.

        Returns whether it was deleted; failures are logged, never raised (retention is housekeeping).
        """
        describe, delete, key, arn_key = (("describe_endpoint_config", "delete_endpoint_config", "EndpointConfigName",
                                           "EndpointConfigArn") if kind == "c" else
                                          ("describe_model", "delete_model", "ModelName", "ModelArn"))
        try:
            with _aws(describe.title().replace("_", "")):
                arn = getattr(self._sm, describe)(**{key: name})[arn_key]
            if self.tags(arn).get(GROUP_TAG) != self.group:
                log.warning("not pruning %s: its %s tag does not name %s", name, GROUP_TAG, self.group)
                return False
            with _aws(delete.title().replace("_", "")):
                getattr(self._sm, delete)(**{key: name})
        except AwsError as exc:
            log.warning("could not prune %s: %s", name, exc)
            return False
        return True


class EndpointResources(GroupResources):
    """One endpoint of one group, and the group's models and endpoint configs."""

    def __init__(self, sagemaker: SageMakerClient, group: str, endpoint: str, *, timeout: float, poll: float,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        super().__init__(sagemaker, group)
        self.endpoint = endpoint
        self.timeout, self.poll, self._sleep, self._clock = timeout, poll, sleep, clock

    # -- reads ---------------------------------------------------------------------------------------

    def describe(self) -> Mapping[str, Any] | None:
        """DescribeEndpoint, or None when there is no endpoint."""
        try:
            with _aws("DescribeEndpoint", lambda: _Gone(self.endpoint)):
                return self._sm.describe_endpoint(EndpointName=self.endpoint)
        except _Gone:
            return None

    def version_of(self, config: str) -> tuple[int | None, str | None]:
        """(version, model name) an endpoint config serves: the model's tags, else the names.

        Raises:
            DeploymentFailed: the config's model is not this group's (Greenlight takes over no endpoint
                it did not make).
        """
        model = self.model_of(config)
        tags: dict[str, str] = {}
        if model is not None:
            try:
                with _aws("DescribeModel", lambda: _Gone(model)):
                    tags = self.tags(self._sm.describe_model(ModelName=model)["ModelArn"])
            except _Gone:
                pass
        if tags.get(GROUP_TAG) == self.group and tags.get(VERSION_TAG, "").isdigit():
            return int(tags[VERSION_TAG]), model
        for name in (model, config):
            parsed = parse_name(self.group, name or "")
            if parsed is not None:
                return parsed[0], model
        raise DeploymentFailed(f"endpoint {self.endpoint} runs {config} (model {model}), which is not a Greenlight "
                               f"deployment of {self.group}; set endpoint.name to an endpoint Greenlight may manage")

    def settle(self, why: str, timeout: float | None = None) -> Mapping[str, Any] | None:
        """DescribeEndpoint until it leaves the settling states (None: it is gone), bounded by `timeout`
        (default: the resources' own).

        Raises:
            DeploymentFailed: still settling after `timeout` seconds.
        """
        timeout = self.timeout if timeout is None else timeout
        deadline = self._clock() + timeout
        while True:
            endpoint = self.describe()
            if endpoint is None or endpoint["EndpointStatus"] not in SETTLING:
                return endpoint
            if self._clock() >= deadline:
                raise DeploymentFailed(f"endpoint {self.endpoint} is still {endpoint['EndpointStatus']} after "
                                       f"{timeout:g} s ({why}); SageMaker may still finish it, and the next "
                                       "reconcile observes where it ended")
            hand_over_before_sleep(f"endpoint {self.endpoint} to leave {endpoint['EndpointStatus']} ({why})", self.poll)
            self._sleep(self.poll)

    # -- writes --------------------------------------------------------------------------------------

    def create(self, config: str) -> None:
        with _aws("CreateEndpoint"):
            self._sm.create_endpoint(EndpointName=self.endpoint, EndpointConfigName=config,
                                     Tags=[{"Key": GROUP_TAG, "Value": self.group}])
        log.info("creating endpoint %s on %s", self.endpoint, config)

    def update(self, config: str, deployment: Mapping[str, Any] | None = None) -> None:
        """UpdateEndpoint to `config`; with `deployment`, a guarded blue/green update (aws_guardrails)."""
        with _aws("UpdateEndpoint"):
            if deployment is None:
                self._sm.update_endpoint(EndpointName=self.endpoint, EndpointConfigName=config)
            else:
                self._sm.update_endpoint(EndpointName=self.endpoint, EndpointConfigName=config,
                                         DeploymentConfig=cast("DeploymentConfigTypeDef", deployment))
        log.info("updating endpoint %s to %s%s", self.endpoint, config, "" if deployment is None else
                 f" ({deployment['BlueGreenUpdatePolicy']['TrafficRoutingConfiguration']['Type']} blue/green)")

    def request_delete(self) -> bool:
        """DeleteEndpoint, not waited for; False when there is no endpoint (or it is being deleted already)."""
        try:
            with _aws("DeleteEndpoint", lambda: _Gone(self.endpoint)):
                self._sm.delete_endpoint(EndpointName=self.endpoint)
        except _Gone:
            return False
        except AwsError as exc:
            if "Deleting" not in str(exc):
                raise
            return False
        return True

    def delete(self, why: str) -> None:
        """DeleteEndpoint (if there is one) and wait until it is gone.

        Raises:
            DeploymentFailed: it is still there after `timeout`.
        """
        if self.request_delete():
            log.warning("deleting endpoint %s: %s", self.endpoint, why)
        left = self.settle(f"delete endpoint {self.endpoint}")
        if left is not None:
            raise DeploymentFailed(f"endpoint {self.endpoint} is {left['EndpointStatus']} after DeleteEndpoint, "
                                   "not gone")
