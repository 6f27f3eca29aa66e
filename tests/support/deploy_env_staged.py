"""Staged deployment worlds (issue 21): the shared suites run on the *production* stage of a two-stage
configuration (staging gated by approval, production by promotion), locally and on moto, endpoint target.

In these worlds "approve" is what a release manager does for production: approve the version and promote it
(ModelLifeCycle Stage=production, StageStatus=Approved); "reject" rejects the approval, which removes it from
every stage. The engine under test is production's reconciler: its own key (`<group>-production`), lock,
status and endpoint (locally the one `endpoint serve --stage production` would be; on moto the SageMaker
endpoint named from the key). The same configuration, the same rules: only the adapters differ.

AwsStagedLambdaDeployEnv is the same on each stage's Lambda, created by the deploy stack on moto's CloudFormation.

The worlds also answer for every stage at once (the staged scenarios of tests/contract/test_deploy_scenarios.py):

    env.approve_only(n)          ModelApprovalStatus=Approved, no promotion
    env.promote(n, status)       ModelLifeCycle Stage=production, StageStatus=status
    env.lifecycle_event(n)       the canned lifecycle event (tests/events/) rewritten for this world
    env.handle_stages(event)     the approval handler with every stage's reconciler (deploy.engine.stages.Stages)
    env.running()                {stage: the version its endpoint runs}, observed
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy.endpoint.deployed import DeployedSource, register_serving, unregister_serving
from deploy.endpoint.server import Endpoint
from deploy.endpoint.slot import ModelSlot
from greenlight.registry import SageMakerModelRegistry
from greenlight.registry.model import ApprovalStatus, ModelLifeCycle
from tests.support.deploy_env import EVENTS, LocalDeployEnv
from tests.support.deploy_env_aws import AwsDeployEnv
from tests.support.deploy_env_lambda import AwsLambdaDeployEnv

STAGE = "production"
STAGES = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
          "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion"}


class _Staged:
    """What both staged worlds add to their mode's world (module docstring)."""

    ws: Any
    registry: Any
    group: str
    account: str
    region: str

    def approve_only(self, version: int) -> None:
        self.registry.update_status(self.group, version, ApprovalStatus.APPROVED)

    def promote(self, version: int, status: str = "Approved") -> None:
        self.registry.update_lifecycle(self.group, version, ModelLifeCycle(STAGE, status))

    def approve(self, version: int) -> None:
        self.approve_only(version)
        self.promote(version)

    def reconciler(self, **overrides: Any):
        config = self.ws.deploy_config(group=self.group, **overrides)
        return self.ws.stage_reconciler(config, config.stage(STAGE))

    def stages(self, **overrides: Any):
        """Every stage's reconciler behind `Stages`, as the approval handler gets it (Workspace.reconciler)."""
        return self.ws.reconciler(self.ws.deploy_config(group=self.group, **overrides))

    def handle_stages(self, event: Any) -> dict[str, Any]:
        from deploy.handler import handle

        return handle(event, self.stages(), account=self.account, region=self.region)

    def running(self) -> dict[str, int | None]:
        return {stage.name: reconciler.targets[0].observe().version for stage, reconciler in self.stages().stages}

    def lifecycle_event(self, version: int, status: str = "Approved") -> dict[str, Any]:
        """The canned lifecycle event: the version's approval as it is, ModelLifeCycle as promoted."""
        from tests.support.deploy_env import canned_event

        found = self.registry.get(self.group, version)
        event = canned_event(self.group, version, found.status.value, found.arn, self.account, self.region)
        canned = json.loads((EVENTS / "model_package_state_change_lifecycle.json").read_text(encoding="utf-8"))
        event["detail"]["ModelLifeCycle"] = {**canned["detail"]["ModelLifeCycle"], "Stage": STAGE,
                                             "StageStatus": status}
        return event

    def worker_spec(self) -> dict[str, Any]:
        return {**super().worker_spec(), "stage": STAGE}  # type: ignore[misc]


def set_stages(monkeypatch) -> None:
    for name, value in STAGES.items():
        monkeypatch.setenv(name, value)  # worker processes inherit them


class LocalStagedDeployEnv(_Staged, LocalDeployEnv):
    """LocalDeployEnv on the production stage (module docstring)."""

    def __init__(self, home: Path, models: dict[str, Path], monkeypatch):
        from greenlight.workspace import Workspace
        from tests.support.deploy_env import GROUP

        set_stages(monkeypatch)
        self.key = Workspace.open("local", home=Path(home)).deploy_config(group=GROUP).stage(STAGE).key
        super().__init__(home, models, monkeypatch, kind="endpoint")

    def _serve(self) -> None:  # the endpoint of the stage, registered under its key
        self.endpoint = Endpoint(ModelSlot(DeployedSource(self.home, self.key), retry_seconds=0.0),
                                 "127.0.0.1", 0, poll_seconds=0.02).start()
        self.record = register_serving(self.home, self.key, self.endpoint.url, self.kind,
                                       token=getattr(self.endpoint, "token", None))

    def close(self) -> None:
        unregister_serving(self.home, self.key, self.kind, self.record)
        self.endpoint.close()

    def served_group(self) -> str:
        return self.key


class AwsStagedDeployEnv(_Staged, AwsDeployEnv):
    """AwsDeployEnv on the production stage (module docstring): the registry on moto's HTTP server keeps
    ModelLifeCycle (tests/support/moto_sagemaker.py), each stage's endpoint is named from its key."""

    def __init__(self, moto_url: str, home: Path, models: dict[str, Path], monkeypatch, group: str):
        set_stages(monkeypatch)
        super().__init__(moto_url, home, models, monkeypatch, group, kind="endpoint")
        self.key = self.ws.deploy_config(group=group).stage(STAGE).key
        assert self.target.endpoint == self.key, (self.target.endpoint, self.key)


# each stage's Lambda on, nothing else: what the deploy stack creates per stage (docs/decisions/0053)
LAMBDA_STAGES = {**STAGES, "GREENLIGHT_ENDPOINT_ENABLED": "false", "GREENLIGHT_BATCH_ENABLED": "false",
                 "GREENLIGHT_LAMBDA_ENABLED": "true"}


class AwsStagedLambdaDeployEnv(_Staged, AwsLambdaDeployEnv):
    """The staged world with each stage's Lambda (issue 21, docs/decisions/0053): the deploy stack itself, created
    on moto's CloudFormation (its Fn::ForEach loops expanded by tests/support/cfn_foreach.py), makes function
    <group>-<stage> with its role, `live` alias and URL per stage; the engine runs with the variables that stack
    gives its approval handler. As in AwsLambdaDeployEnv, the registry client and the invoker are injected (moto
    has no registry API and cannot run an image); images go to the world's repository in the loopback registry."""

    def __init__(self, moto_url: str, registry_url: str, home: Path, models: dict[str, Path], monkeypatch,
                 group: str, stages: dict[str, str] = LAMBDA_STAGES):
        from deploy.config import load_config
        from deploy.stack import Stacks
        from deploy.stack_parameters import template_parameters
        from greenlight.workspace import Workspace
        from tests.contract.conftest import aws_client
        from tests.support.deploy_env_aws import ACCOUNT, REGION, aws_environment
        from tests.support.lambda_world import BASE, BUCKET, LambdaAwsWorld
        from tests.support.templates import TEMPLATE

        for name in ("AWS_PROFILE", "GREENLIGHT_CONFIG", "GREENLIGHT_LAMBDA_FUNCTION_NAME",
                     "GREENLIGHT_LAMBDA_BASE_IMAGE_TAG"):
            monkeypatch.delenv(name, raising=False)
        self.moto_url, self.home, self.models, self.group = moto_url, Path(home), models, group
        self.account, self.region = ACCOUNT, REGION
        self.world = LambdaAwsWorld(moto_url, registry_url, self.home / "aws", function=f"{group}-{STAGE}",
                                    create_function=False)
        self.world.upload("handler.zip", b"PK\x05\x06" + b"\x00" * 18)  # an empty zip: moto never runs it
        parameters = {**template_parameters(load_config(environ=stages, group=group)),
                      "HandlerS3Bucket": BUCKET, "HandlerS3Key": "handler.zip", "ArtifactBucket": BUCKET,
                      "LambdaBaseImageTag": BASE}
        Stacks(aws_client("cloudformation", moto_url), echo=lambda line: None, poll=0).deploy(
            f"greenlight-{group}", TEMPLATE.read_text(), parameters)
        handler = aws_client("lambda", moto_url).get_function(
            FunctionName=f"{group}-approval")["Configuration"]["Environment"]["Variables"]
        for name, value in {**aws_environment(moto_url), **handler,
                            "GREENLIGHT_LAMBDA_ECR_REPOSITORY": self.world.repository}.items():
            monkeypatch.setenv(name, str(value))
        self.spec = {"mode": "aws", "kind": "lambda", "home": str(self.home), "group": group, "moto_url": moto_url,
                     "registry_url": registry_url, "images": str(self.home / "aws" / "images")}
        self.ws = Workspace.open("aws", home=self.home)
        self.registry = SageMakerModelRegistry(aws_client("sagemaker", moto_url))
        self._writes = 0
        for service in ("lambda", "ecr"):
            self.ws.client(service).meta.events.register(f"before-call.{service}.*", self._count)
        self.key = self.ws.deploy_config(group=group).stage(STAGE).key
        self._before_engine()
        self.target = self.reconciler().targets[0]
        assert (self.target.function, self.target.kind.value) == (self.key, "lambda")

    def _before_engine(self) -> None:
        """What must exist before production's engine can be built (nothing more here: the deploy stack made it)."""

    def _injected(self, reconciler):
        from tests.support.deploy_env_lambda import inject

        inject(reconciler, self.spec)
        for target in reconciler.targets:  # count the registry pushes as the targets' writes
            factory = target.registry

            def counted(factory=factory):
                client = factory()
                self.world.registries.append(client)
                return client

            target.registry = counted
        return reconciler

    def reconciler(self, **overrides: Any):
        return self._injected(_Staged.reconciler(self, **overrides))

    def stages(self, **overrides: Any):
        return self._injected(_Staged.stages(self, **overrides))

    def served_version(self) -> int | None:
        """The model version production's Function URL answers with on `live`."""
        from deploy.function.model import VersionRecord

        response = self.world.served()
        assert response["statusCode"] == 200, response
        executed = self.world.lam.get_function(FunctionName=self.key, Qualifier=self.world.invoker.executed)
        return VersionRecord.parse(executed["Configuration"]["Description"]).model_version
