"""The `aws` deployment world for the shared endpoint suites: the AWS adapters against moto's HTTP server.

Same interface as tests/support/deploy_env.py's LocalDeployEnv. The composition root builds
everything (`Workspace.open("aws")` with AWS_ENDPOINT_URL pointing at moto): the SageMaker Model
Registry, the SageMaker Serverless endpoint target, the DynamoDB lease and status store, and S3 for
the smoke-test data. moto is extended in this process (tests/support/moto_sagemaker.py): it lacks
UpdateEndpoint, and its InvokeEndpoint answers canned results, so each registered version's answer
is computed here by the real model (the same loader and serving code the local endpoint runs) on
its smoke rows and given to the fake endpoint; a "broken" version's endpoint update fails in moto
with a FailureReason, as SageMaker reports a model that cannot start; a "disagree" version records
other predictions than its model gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy.endpoint.loader import load_version
from deploy.endpoint.sources import prepare_model_dir
from deploy.engine.smoke import SMOKE_KEY
from greenlight.registry import SageMakerModelRegistry
from greenlight.registry.model import ApprovalStatus
from greenlight.stage_composition import read_s3
from tests.support.moto_sagemaker import FAKE

REGION, ACCOUNT = "us-east-1", "123456789012"
TABLE, BUCKET = "greenlight-deployments", "greenlight-test"
ROLE = "arn:aws:iam::123456789012:role/greenlight-endpoint"
BROKEN_REASON = "The primary container for production variant AllTraffic did not pass the ping health check."
_READS = ("Describe", "List", "Get", "Search", "Batch")


def aws_environment(moto_url: str) -> dict[str, str]:
    """What the approval Lambda's stack would set, pointed at moto (tests set these with monkeypatch)."""
    return {"AWS_ENDPOINT_URL": moto_url, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_MAX_ATTEMPTS": "1",
            "AWS_EC2_METADATA_DISABLED": "true", "GREENLIGHT_STATE_TABLE": TABLE,
            "GREENLIGHT_ENDPOINT_ROLE_ARN": ROLE, "GREENLIGHT_LAMBDA_ENABLED": "false",
            "GREENLIGHT_BATCH_ENABLED": "false"}


def create_state_table(dynamodb, table: str = TABLE) -> None:
    """The table the deploy stack creates: partition key pk (String), on-demand, the history's index."""
    dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "history", "at")],
                          GlobalSecondaryIndexes=[{"IndexName": "history-by-time", "Projection": {"ProjectionType": "ALL"},
                                                   "KeySchema": [{"AttributeName": "history", "KeyType": "HASH"},
                                                                 {"AttributeName": "at", "KeyType": "RANGE"}]}],
                          BillingMode="PAY_PER_REQUEST")


class AwsDeployEnv:
    """The AWS adapters, through the composition root, against moto's HTTP server (extended)."""

    mode = "aws"

    def __init__(self, moto_url: str, home: Path, models: dict[str, Path], monkeypatch, group: str,
                 kind: str = "endpoint"):
        from greenlight.workspace import Workspace
        from tests.contract.conftest import aws_client

        if kind not in ("endpoint", "batch"):
            raise ValueError(f"no aws {kind} world here")
        self.kind = kind

        for name, value in self.environment(moto_url).items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "GREENLIGHT_CONFIG", "GREENLIGHT_ENDPOINT_NAME"):
            monkeypatch.delenv(name, raising=False)
        self.moto_url, self.home, self.models, self.group = moto_url, Path(home), models, group
        self.account, self.region = ACCOUNT, REGION
        self.ws = Workspace.open("aws", home=self.home)
        self.s3 = aws_client("s3", moto_url)
        self.s3.create_bucket(Bucket=BUCKET)
        create_state_table(aws_client("dynamodb", moto_url))
        # the test's own registry client: registering and approving are not the target's writes
        self.registry = SageMakerModelRegistry(aws_client("sagemaker", moto_url))
        self._writes = 0
        self._count_target_writes()
        self.target = self.reconciler().targets[0]
        assert self.target.kind.value == kind and len(self.reconciler().targets) == 1, self.reconciler().targets

    def environment(self, moto_url: str) -> dict[str, str]:
        """The variables this world sets (the deploy stack's, pointed at moto)."""
        return aws_environment(moto_url)

    def _count_target_writes(self) -> None:
        self.ws.client("sagemaker").meta.events.register("before-call.sagemaker.*", self._count)

    def _count(self, model, **_: Any) -> None:
        if not model.name.startswith(_READS):
            self._writes += 1

    def close(self) -> None:
        FAKE.reset()

    # -- the registry -------------------------------------------------------------------------------

    def register(self, kind: str = "good", model: str = "a") -> int:
        n = len(self.registry.list_versions(self.group)) + 1 if self.group in self.registry.list_groups() else 1
        prefix = f"{self.group}/v{n}"
        doc = json.loads(self.models[f"{model}_smoke"].read_text())
        answer = self._answer(model, doc)
        if kind == "disagree":  # recorded predictions that this model does not give
            doc["predictions"] = [p + 1.0 for p in doc["predictions"]]
        self.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/smoke.json", Body=json.dumps(doc).encode())
        self.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/model.tar.gz", Body=self.models[f"{model}_tar"].read_bytes())
        version = self.registry.create_model_package({
            "ModelPackageGroupName": self.group,
            "InferenceSpecification": {
                "Containers": [{"Image": f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
                                "ModelDataUrl": f"s3://{BUCKET}/{prefix}/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]},
            "CustomerMetadataProperties": {SMOKE_KEY: f"s3://{BUCKET}/{prefix}/smoke.json"},
        })
        FAKE.answer(version.arn, answer)
        if kind == "broken":  # SageMaker cannot start it: the update fails, the old config keeps serving
            FAKE.fail(version.arn, BROKEN_REASON)
        return version.version

    def _answer(self, model: str, smoke: dict[str, Any]) -> str:
        """What the model answers to its smoke rows, by the real serving code (the fake endpoint's answer)."""
        model_dir = prepare_model_dir(self.models[f"{model}_tar"], self.home / "endpoint-cache")
        loaded = load_version(f"{self.group}/{model}", model_dir)
        body, _ = loaded.finish(loaded.parse(smoke["body"].encode(), smoke.get("content_type", "text/csv")),
                                "application/json")
        return body.decode() if isinstance(body, bytes) else body

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

    # -- the engine ---------------------------------------------------------------------------------

    def reconciler(self, **overrides: Any):
        return self.ws.reconciler(self.ws.deploy_config(group=self.group, **overrides))

    def handle(self, event: Any, **overrides: Any) -> dict[str, Any]:
        from deploy.handler import handle

        return handle(event, self.reconciler(**overrides), account=self.account, region=self.region)

    # -- what a client sees -------------------------------------------------------------------------

    def served_version(self) -> int | None:
        """The version whose model answers InvokeEndpoint now (None: no endpoint serves)."""
        from botocore.exceptions import ClientError

        from tests.contract.conftest import aws_client
        from tests.support.endpoints import ROW

        try:
            answer = aws_client("sagemaker-runtime", self.moto_url).invoke_endpoint(
                EndpointName=self.target.endpoint, Body=ROW.encode(), ContentType="text/csv",
                Accept="application/json")
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ValidationError":
                return None
            raise
        package = answer["CustomAttributes"].removeprefix("greenlight-model-package=")
        return next(v.version for v in self.registry.list_versions(self.group) if v.arn == package)

    def target_writes(self) -> int:
        return self._writes

    def worker_spec(self) -> dict[str, Any]:
        """What a worker process needs (its environment, inherited, points it at moto)."""
        return {"mode": self.mode, "home": str(self.home), "group": self.group}
