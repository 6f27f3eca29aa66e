"""The `aws` deployment world of the Lambda target, for the shared contract and scenario suites.

Same interface as tests/support/deploy_env.py's LocalDeployEnv. The composition root builds everything
(`Workspace.open("aws")` with AWS_ENDPOINT_URL pointing at moto's HTTP server): the SageMaker Model
Registry, the Lambda target (Lambda, S3 and ECR clients), the DynamoDB lease and status store. Two
parts are injected into the Lambda target, in this process and in the concurrency scenario's worker
processes alike (`inject`), because moto lacks them (tests/support/lambda_aws.py):

- the registry client: the OCI pushes go to a real docker-registry on loopback standing in for ECR's
  registry API (moto serves ECR's API but not the registry), each tagged manifest mirrored into moto's
  ECR, where the base image (pushed by the world) and the model tags then are;
- the invoker: moto cannot invoke an image function, so the smoke test (and `served_version`, the
  Function URL on `live`) runs the version's image in this process: its layers pulled by digest from
  the loopback registry, its own handler (src/lambda_function.handle) on its own model.

"broken": Lambda ends UpdateFunctionCode `Failed` (InvalidImage) for that version's image (a moto
extension keyed by the image's model); "disagree": the recorded predictions are not the model's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy.engine.model import TargetKind
from deploy.engine.smoke import SMOKE_KEY
from deploy.function.model import VersionRecord
from greenlight.errors import AwsError
from greenlight.registry import SageMakerModelRegistry
from greenlight.registry.model import ApprovalStatus
from greenlight.stage_composition import read_s3
from tests.support.deploy_env_aws import ACCOUNT, REGION, aws_environment, create_state_table
from tests.support.lambda_aws import ImageInvoker, MirroredRegistry
from tests.support.lambda_world import LambdaAwsWorld

__all__ = ["AwsLambdaDeployEnv", "inject"]

_READS = ("Get", "List", "Describe")


def inject(reconciler, spec: dict[str, Any]) -> None:
    """Give the reconciler's Lambda target the loopback registry and the in-process invoker (module docstring)."""
    from tests.contract.conftest import aws_client

    for target in reconciler.targets:
        if target.kind is TargetKind.LAMBDA:
            target.registry = lambda: MirroredRegistry(spec["registry_url"], aws_client("ecr", spec["moto_url"]))
            target.invoker = ImageInvoker(aws_client("lambda", spec["moto_url"]), Path(spec["images"]))


class AwsLambdaDeployEnv:
    """The Lambda target's AWS adapter, through the composition root, against moto and a loopback registry."""

    mode, kind = "aws", "lambda"

    def __init__(self, moto_url: str, registry_url: str, home: Path, models: dict[str, Path], monkeypatch,
                 group: str):
        from greenlight.workspace import Workspace
        from tests.contract.conftest import aws_client

        for name in ("AWS_PROFILE", "GREENLIGHT_CONFIG", "GREENLIGHT_LAMBDA_FUNCTION_NAME",
                     "GREENLIGHT_LAMBDA_BASE_IMAGE_TAG"):
            monkeypatch.delenv(name, raising=False)
        self.moto_url, self.home, self.models, self.group = moto_url, Path(home), models, group
        self.account, self.region = ACCOUNT, REGION
        self.world = LambdaAwsWorld(moto_url, registry_url, self.home / "aws", function=group)
        environment = {**aws_environment(moto_url), "GREENLIGHT_ENDPOINT_ENABLED": "false",
                       "GREENLIGHT_LAMBDA_ENABLED": "true", "GREENLIGHT_LAMBDA_ECR_REPOSITORY": self.world.repository}
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        self.spec = {"mode": self.mode, "kind": self.kind, "home": str(self.home), "group": group,
                     "moto_url": moto_url, "registry_url": registry_url, "images": str(self.home / "aws" / "images")}
        self.ws = Workspace.open("aws", home=self.home)
        create_state_table(aws_client("dynamodb", moto_url))
        self.registry = SageMakerModelRegistry(aws_client("sagemaker", moto_url))  # the test's, not the target's
        self._writes = 0
        for service in ("lambda", "ecr"):
            self.ws.client(service).meta.events.register(f"before-call.{service}.*", self._count)
        self.target = self.reconciler().targets[0]
        assert self.target.kind is TargetKind.LAMBDA and self.target.base_tag.startswith("base-")

    def _count(self, model, **_: Any) -> None:
        if not model.name.startswith(_READS):
            self._writes += 1

    def close(self) -> None:
        self.world.close()

    # -- the registry ---------------------------------------------------------------------------

    def register(self, kind: str = "good", model: str = "a") -> int:
        n = len(self.registry.list_versions(self.group)) + 1 if self.group in self.registry.list_groups() else 1
        prefix = f"{self.group}/v{n}"
        doc = json.loads(self.models[f"{model}_smoke"].read_text())
        if kind == "disagree":  # recorded predictions that this model does not give
            doc["predictions"] = [p + 1.0 for p in doc["predictions"]]
        smoke_uri = self.world.upload(f"{prefix}/smoke.json", json.dumps(doc).encode())
        key = f"{prefix}/model.tar.gz"
        model_uri = (self.world.upload_broken(self.models[f"{model}_tar"], key, f"v{n}") if kind == "broken"
                     else self.world.upload(key, self.models[f"{model}_tar"].read_bytes()))
        version = self.registry.create_model_package({
            "ModelPackageGroupName": self.group,
            "InferenceSpecification": {
                "Containers": [{"Image": f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
                                "ModelDataUrl": model_uri}],
                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]},
            "CustomerMetadataProperties": {SMOKE_KEY: smoke_uri},
        })
        return version.version

    def approve(self, version: int) -> None:
        self.registry.update_status(self.group, version, ApprovalStatus.APPROVED)

    def reject(self, version: int) -> None:
        self.registry.update_status(self.group, version, ApprovalStatus.REJECTED)

    def arn(self, version: int) -> str:
        return self.registry.get(self.group, version).arn

    def event(self, version: int, status: str) -> dict[str, Any]:
        from tests.support.deploy_env import canned_event

        return canned_event(self.group, version, status, self.arn(version), self.account, self.region)

    def read(self, uri: str) -> bytes:
        return read_s3(self.ws, uri)

    # -- the engine -----------------------------------------------------------------------------

    def reconciler(self, **overrides: Any):
        reconciler = self.ws.reconciler(self.ws.deploy_config(group=self.group, **overrides))
        inject(reconciler, self.spec)
        for target in reconciler.targets:  # count the registry pushes as the target's writes
            factory = target.registry

            def counted(factory=factory):
                client = factory()
                self.world.registries.append(client)
                return client

            target.registry = counted
        return reconciler

    def handle(self, event: Any, **overrides: Any) -> dict[str, Any]:
        from deploy.handler import handle

        return handle(event, self.reconciler(**overrides), account=self.account, region=self.region)

    # -- what a client sees ---------------------------------------------------------------------

    def served_version(self) -> int | None:
        """The model version behind the Function URL on `live` (None: no alias yet, or throttled)."""
        try:
            response = self.world.served()
        except AwsError as exc:
            if exc.code in ("TooManyRequestsException", "ResourceNotFoundException"):
                return None
            raise
        assert response["statusCode"] == 200, response
        executed = self.world.lam.get_function(FunctionName=self.group, Qualifier=self.world.invoker.executed)
        return VersionRecord.parse(executed["Configuration"]["Description"]).model_version

    def target_writes(self) -> int:
        """Lambda and ECR write calls plus registry uploads (PUT, POST, PATCH) the target made."""
        return self._writes + self.world.registry_writes()

    def worker_spec(self) -> dict[str, Any]:
        """What a worker process needs (its environment, inherited, points it at moto)."""
        return dict(self.spec)

