"""moto's SageMaker, extended in the test process where it lacks what the endpoint target needs.

moto 5.2.5 (measured; /work/shared/research/moto.md) has no `UpdateEndpoint` (HTTP 500), puts every
endpoint InService at once, and answers `InvokeEndpoint` with canned results whatever the endpoint
serves (even an endpoint that does not exist; its server loses the endpoint's name from the REST
path), repeating the first answer for a repeated body.
`install()` adds, on moto's own backend and responses classes (so `ThreadedMotoServer` in this
process serves them over HTTP; moto looks methods up per request):

- `UpdateEndpoint` (backend + responses method): the endpoint goes `Updating`, and the next
  DescribeEndpoint (or the one after `settle_after(n)` more polls) shows the outcome: InService on the
  new config, or, for a config whose model package was marked with `fail(arn, reason)`, what SageMaker
  does on a failed update: InService on the *old* config with `FailureReason` (or `Failed` /
  `UpdateRollbackFailed` when asked). `fail_next(status, reason)` fails the next update or creation
  whatever it deploys; `fail_endpoint(name, reason, status)` fails every update or creation of that
  endpoint (the live one, not the target's verification endpoint on the same config). CreateEndpoint gets the same treatment (`Creating`, then InService or Failed).
  Updating an endpoint that is not InService (or UpdateRollbackFailed) is refused, as SageMaker does.
- UpdateEndpoint's `DeploymentConfig` (deployment guardrails, issue 22): kept on the endpoint and shown
  as `LastDeploymentConfig`; a blue/green update with it stays Updating for `rollout_polls`
  DescribeEndpoint calls (the steps and baking periods), and while it does, an alarm it names under
  AutoRollbackConfiguration that moto's CloudWatch holds in ALARM (SetAlarmState) rolls it back:
  RollingBack on that DescribeEndpoint, then InService on the *old* config with a FailureReason naming
  the alarm (SageMaker's own wording is not documented). moto's UpdateEndpoint would take no
  DeploymentConfig at all.
- `InvokeEndpoint` answers only an endpoint that exists and serves (else ValidationError, as AWS). It
  takes the next of the results posted to moto's `/moto-api/static/sagemaker/endpoint-results` (each
  result once; moto would repeat the first answer for the same body), and when none is queued it
  answers as the model package the endpoint serves would: the body registered with `answer(arn, body)`
  (the predictions that model gives), with CustomAttributes naming the package, so a test can tell
  which version answered. Without either it fails with ModelError, as a model that cannot answer.
- `ModelLifeCycle` on UpdateModelPackage and DescribeModelPackage (issue 21): moto drops the member; the
  extension keeps it on the package (botocore's shape: Stage and StageStatus required, StageDescription).
- DynamoDB's PutItem, UpdateItem, DeleteItem and TransactWriteItems are serialised by one lock: moto
  checks a ConditionExpression and writes in two steps, so two requests on its threaded server could
  both pass the check, while DynamoDB makes each conditional write atomic. The lease tests rely on it.

State lives in this process (`FAKE`); `FAKE.reset()` clears it (the `moto_sagemaker` fixture does, with
moto's own reset).
"""

from __future__ import annotations

import functools
import json
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAKE", "FakeSageMaker", "install", "post_results"]


@dataclass
class _Pending:
    config: str | None  # None: a creation
    outcome: tuple[str, str] | None  # (status, FailureReason) of a failure, None: success
    polls: int
    alarms: tuple[str, ...] = ()  # a guarded blue/green update: the alarms that roll it back


@dataclass
class FakeSageMaker:
    """What the extended moto does beyond moto: failures to inject, answers per model package."""

    failing: dict[str, tuple[str, str]] = field(default_factory=dict)  # package ARN -> (status, reason)
    failing_endpoints: dict[str, tuple[str, str]] = field(default_factory=dict)  # endpoint name -> (status, reason)
    answers: dict[str, str] = field(default_factory=dict)  # package ARN -> response body
    next_failure: tuple[str, str] | None = None
    polls: int = 0
    pending: dict[tuple[str, str, str], _Pending] = field(default_factory=dict)
    updates: int = 0  # UpdateEndpoint calls served
    rollout_polls: int = 2  # DescribeEndpoint calls a guarded (DeploymentConfig) update stays Updating for
    deployments: list[dict[str, Any]] = field(default_factory=list)  # every DeploymentConfig received

    def reset(self) -> None:
        self.failing.clear()
        self.failing_endpoints.clear()
        self.answers.clear()
        self.pending.clear()
        self.next_failure, self.polls, self.updates, self.rollout_polls = None, 0, 0, 2
        self.deployments.clear()

    def fail(self, package_arn: str, reason: str, status: str = "InService") -> None:
        """Updates to (and creations of) an endpoint serving this package fail with `reason`; `status`
        is where a failed update ends: InService on the old config, Failed, or UpdateRollbackFailed."""
        self.failing[package_arn] = (status, reason)

    def fail_endpoint(self, name: str, reason: str, status: str = "InService") -> None:
        """Updates and creations of endpoint `name` fail with `reason` (whatever they deploy)."""
        self.failing_endpoints[name] = (status, reason)

    def fail_next(self, status: str, reason: str) -> None:
        self.next_failure = (status, reason)

    def answer(self, package_arn: str, body: str) -> None:
        """What an endpoint serving this package answers (when no posted result is queued)."""
        self.answers[package_arn] = body

    def settle_after(self, polls: int) -> None:
        """Creations and updates stay Creating/Updating for `polls` DescribeEndpoint calls."""
        self.polls = polls


FAKE = FakeSageMaker()
_installed = threading.Lock()
_done: list[bool] = []
_dynamodb_writes = threading.RLock()


def post_results(endpoint: str, results: list[dict[str, Any]], region: str = "us-east-1") -> None:
    """Queue canned InvokeEndpoint results through moto's own API (each is answered once, in order)."""
    body = json.dumps({"results": results, "region": region}).encode()
    request = urllib.request.Request(f"{endpoint}/moto-api/static/sagemaker/endpoint-results", data=body,
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201)


def _package_of(backend, config_name: str) -> str | None:
    config = backend.endpoint_configs.get(config_name)
    if config is None:
        return None
    model = backend._models.get(config.production_variants[0]["ModelName"])
    containers = (model.containers or [model.primary_container]) if model is not None else []
    return next((c.get("ModelPackageName") for c in containers if c and c.get("ModelPackageName")), None)


def _outcome(backend, config_name: str, endpoint_name: str) -> tuple[str, str] | None:
    if FAKE.next_failure is not None:
        outcome, FAKE.next_failure = FAKE.next_failure, None
        return outcome
    if endpoint_name in FAKE.failing_endpoints:
        return FAKE.failing_endpoints[endpoint_name]
    return FAKE.failing.get(_package_of(backend, config_name) or "")


def _apply(backend, endpoint, pending: _Pending) -> None:
    if pending.config is None:  # a creation: InService, or Failed with the reason
        endpoint.endpoint_status = "InService" if pending.outcome is None else "Failed"
        endpoint.failure_reason = None if pending.outcome is None else pending.outcome[1]
        return
    status, reason = pending.outcome or ("InService", None)
    if pending.outcome is None or status == "UpdateRollbackFailed":  # the new config (partly) serves
        config = backend.describe_endpoint_config(pending.config)
        endpoint.endpoint_config_name = pending.config
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.endpoint_status, endpoint.failure_reason = status, reason


def _alarm_in_alarm(account_id: str, region: str, names: tuple[str, ...]) -> str | None:
    from moto.cloudwatch.models import cloudwatch_backends

    alarms = cloudwatch_backends[account_id][region].get_alarms_by_alarm_names(list(names))
    return next((a.name for a in alarms if a.state_value == "ALARM"), None)


def install() -> FakeSageMaker:
    """Extend moto's classes (idempotent); returns FAKE."""
    with _installed:
        if _done:
            return FAKE
        _install_sagemaker()
        _install_lifecycle()
        _install_runtime()
        _install_dynamodb()
        _done.append(True)
    return FAKE


def _install_lifecycle() -> None:
    """UpdateModelPackage's ModelLifeCycle kept on moto's ModelPackage and shown by DescribeModelPackage; what
    an UpdateModelPackage leaves out (ModelApprovalStatus, ApprovalDescription, CustomerMetadataProperties)
    kept as it was, where moto wipes it (a promotion must not carry ModelApprovalStatus: the promoter's policy
    refuses it, deploy/template.yaml PromoterRole)."""
    from moto.sagemaker.models import ModelPackage, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    original_backend_update = SageMakerModelBackend.update_model_package

    @functools.wraps(original_backend_update)
    def keeps_what_is_left_out(self, model_package_arn, model_approval_status, approval_description,
                               customer_metadata_properties, *args, **kwargs):
        package = self.model_packages.get(self.model_package_name_mapping.get(model_package_arn, model_package_arn))
        if package is not None:
            if model_approval_status is None:
                model_approval_status = package.model_approval_status
            if approval_description is None:
                approval_description = package.approval_description
            if customer_metadata_properties is None:
                customer_metadata_properties = package.customer_metadata_properties
        return original_backend_update(self, model_package_arn, model_approval_status, approval_description,
                                       customer_metadata_properties, *args, **kwargs)

    SageMakerModelBackend.update_model_package = keeps_what_is_left_out

    original_update, original_describe = SageMakerResponse.update_model_package, ModelPackage.gen_response_object

    @functools.wraps(original_update)
    def update_model_package(self):
        result = original_update(self)
        lifecycle = self._get_param("ModelLifeCycle")
        if lifecycle:
            package = self.sagemaker_backend.describe_model_package(self._get_param("ModelPackageArn"))
            package.greenlight_lifecycle = dict(lifecycle)
        return result

    @functools.wraps(original_describe)
    def gen_response_object(self):
        response = original_describe(self)
        if getattr(self, "greenlight_lifecycle", None):
            response["ModelLifeCycle"] = dict(self.greenlight_lifecycle)
        return response

    SageMakerResponse.update_model_package = update_model_package
    ModelPackage.gen_response_object = gen_response_object


def _install_sagemaker() -> None:
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(self, endpoint_name: str, endpoint_config_name: str,
                        deployment_config: dict[str, Any] | None = None) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        if endpoint.endpoint_status not in ("InService", "UpdateRollbackFailed"):  # SageMaker's remedy for the latter
            raise ValidationError(message=f"Cannot update endpoint {endpoint_name} while it is "
                                          f"{endpoint.endpoint_status}.")
        self.describe_endpoint_config(endpoint_config_name)  # ValidationError if it does not exist
        FAKE.updates += 1
        endpoint.endpoint_status, endpoint.last_modified_time = "Updating", utcnow()
        alarms: tuple[str, ...] = ()
        if deployment_config:
            FAKE.deployments.append(deployment_config)
            endpoint.last_deployment_config = deployment_config  # moto's Describe shows it as LastDeploymentConfig
            alarms = tuple(a["AlarmName"] for a in
                           deployment_config.get("AutoRollbackConfiguration", {}).get("Alarms", []))
        FAKE.pending[(self.account_id, self.region_name, endpoint_name)] = _Pending(
            endpoint_config_name, _outcome(self, endpoint_config_name, endpoint_name),
            max(FAKE.polls, FAKE.rollout_polls) if deployment_config else FAKE.polls, alarms)
        return endpoint.arn

    original_create, original_describe, original_delete = (SageMakerModelBackend.create_endpoint,
                                                           SageMakerModelBackend.describe_endpoint,
                                                           SageMakerModelBackend.delete_endpoint)

    @functools.wraps(original_create)
    def create_endpoint(self, endpoint_name, endpoint_config_name, tags):
        endpoint = original_create(self, endpoint_name, endpoint_config_name, tags)
        endpoint.endpoint_status = "Creating"
        FAKE.pending[(self.account_id, self.region_name, endpoint_name)] = _Pending(
            None, _outcome(self, endpoint_config_name, endpoint_name), FAKE.polls)
        return endpoint

    @functools.wraps(original_describe)
    def describe_endpoint(self, endpoint_name):
        key = (self.account_id, self.region_name, endpoint_name)
        pending, endpoint = FAKE.pending.get(key), self.endpoints.get(endpoint_name)
        if pending is not None and endpoint is not None:
            tripped = _alarm_in_alarm(self.account_id, self.region_name, pending.alarms) if pending.alarms else None
            if tripped is not None and pending.polls > 0:  # a baking period saw the alarm: roll back
                reason = (f"Endpoint update rolled back: CloudWatch alarm {tripped} was in ALARM during the "
                          "blue/green deployment (tests/support/moto_sagemaker.py)")
                pending.outcome, pending.polls, pending.alarms = ("InService", reason), 0, ()
                endpoint.endpoint_status, endpoint.failure_reason = "RollingBack", reason
            elif pending.polls > 0:
                pending.polls -= 1
            else:
                del FAKE.pending[key]
                _apply(self, endpoint, pending)
        return original_describe(self, endpoint_name)

    @functools.wraps(original_delete)
    def delete_endpoint(self, endpoint_name):
        FAKE.pending.pop((self.account_id, self.region_name, endpoint_name), None)
        return original_delete(self, endpoint_name)

    def update_endpoint_response(self):
        arn = self.sagemaker_backend.update_endpoint(self._get_param("EndpointName"),
                                                     self._get_param("EndpointConfigName"),
                                                     self._get_param("DeploymentConfig"))
        return json.dumps({"EndpointArn": arn})

    SageMakerModelBackend.update_endpoint = update_endpoint
    SageMakerModelBackend.create_endpoint = create_endpoint
    SageMakerModelBackend.describe_endpoint = describe_endpoint
    SageMakerModelBackend.delete_endpoint = delete_endpoint
    SageMakerResponse.update_endpoint = update_endpoint_response


def _install_runtime() -> None:
    from moto.core.exceptions import JsonRESTError
    from moto.sagemaker.models import sagemaker_backends
    from moto.sagemakerruntime.models import SageMakerRuntimeBackend
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    def invoke_endpoint(self, endpoint_name: str, unique_repr: bytes):
        backend = sagemaker_backends[self.account_id][self.region_name]
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None or endpoint.endpoint_status not in ("InService", "Updating", "UpdateRollbackFailed"):
            raise JsonRESTError("ValidationError", f"Endpoint {endpoint_name} of account {self.account_id} not found.")
        if self.results_queue:
            return self.results_queue.pop(0)
        package = _package_of(backend, endpoint.endpoint_config_name)
        if package in FAKE.answers:
            return FAKE.answers[package], "application/json", "AllTraffic", f"greenlight-model-package={package}"
        error = JsonRESTError("ModelError", f"Received server error (500) from primary: no answer is configured "
                                            f"for {package} (tests/support/moto_sagemaker.py)")
        error.code = 424
        raise error

    original_response = SageMakerRuntimeResponse.invoke_endpoint

    @functools.wraps(original_response)
    def invoke_endpoint_response(self):
        # moto's server reads EndpointName from the parameters, where the REST path's name is missing
        name = urllib.parse.unquote(self.path.split("/")[2])
        original_params = self._get_params
        self._get_params = lambda: {**original_params(), "EndpointName": name}
        return original_response(self)

    SageMakerRuntimeBackend.invoke_endpoint = invoke_endpoint
    SageMakerRuntimeResponse.invoke_endpoint = invoke_endpoint_response


def _install_dynamodb() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        def serialised(self, *args, __original=original, **kwargs):
            with _dynamodb_writes:
                return __original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, functools.wraps(original)(serialised))
