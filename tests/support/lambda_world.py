"""An AWS account for the Lambda target: moto's HTTP server (Lambda, ECR, S3, IAM) plus a real registry.

What the deploy stack would have made exists: an ECR repository holding the base image (pushed here to
the loopback docker-registry, which stands in for ECR's registry API, and mirrored into moto's ECR; see
tests/support/lambda_aws.py), an execution role, and the container-image function itself, created from
the base image by digest with a variable of the stack's own. Model archives are uploaded to S3.
"""

from __future__ import annotations

import json
import tarfile
import uuid
from pathlib import Path
from typing import Any

from deploy.function.aws import AwsLambdaTarget
from deploy.image import base_tag
from tests.contract.conftest import aws_client
from tests.support.images import REPO, push_base
from tests.support.lambda_aws import FAKE_LAMBDA, ImageInvoker, MirroredRegistry
from tests.support.models import pack

__all__ = ["BUCKET", "READS", "ROLE", "STACK_VARIABLE", "FakeTime", "LambdaAwsWorld", "broken_variant"]

BUCKET = "greenlight-lambda-test"
ROLE_NAME = "greenlight-inference"
ROLE = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"
STACK_VARIABLE = {"GREENLIGHT_MAX_PAYLOAD_BYTES": "6291456"}  # set by the stack; a deploy must keep it
READS = ("Get", "List", "Describe", "ECR Get", "ECR List", "ECR Describe")
BASE = base_tag(Path(__file__).resolve().parents[2], "linux/amd64")  # the tag CodeBuild would give this code


class FakeTime:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def broken_variant(archive: Path, work: Path, marker: str) -> tuple[Path, str]:
    """A copy of a model archive whose metadata.json differs (another layer, another image), and its sha256."""
    import hashlib

    model = work / "model"
    with tarfile.open(archive) as tar:
        tar.extractall(model, filter="data")
    meta = json.loads((model / "metadata.json").read_text())
    meta["greenlight_test_variant"] = marker
    (model / "metadata.json").write_text(json.dumps(meta, sort_keys=True))
    return pack(model, work / "model.tar.gz"), hashlib.sha256((model / "metadata.json").read_bytes()).hexdigest()


class LambdaAwsWorld:
    """moto's clients, the loopback registry, the base image, the function, and the target under test."""

    def __init__(self, moto_url: str, registry_url: str, work: Path, function: str = "scenario-models",
                 memory_mb: int = 1024, create_function: bool = True):
        self.moto_url, self.registry_url, self.work = moto_url, registry_url, Path(work)
        self.function, self.memory_mb = function, memory_mb
        self.lam, self.s3, self.ecr = aws_client("lambda", moto_url), aws_client("s3", moto_url), aws_client("ecr",
                                                                                                            moto_url)
        self.time = FakeTime()
        self.calls: list[str] = []
        self.lam.meta.events.register("before-call.lambda.*", lambda model, **_: self.calls.append(model.name))
        self.ecr.meta.events.register("before-call.ecr.*", lambda model, **_: self.calls.append("ECR " + model.name))
        self.s3.create_bucket(Bucket=BUCKET)
        # a repository of its own in the session's registry: moto's ECR is empty again for every test
        self.repository = f"{REPO}/{uuid.uuid4().hex[:12]}"
        self.ecr.create_repository(repositoryName=self.repository)
        self.registries: list[MirroredRegistry] = []
        (self.work / "base").mkdir(parents=True, exist_ok=True)
        base_digest, _ = push_base(self.registry(), self.work / "base", self.repository, BASE)
        self.base_uri = f"{registry_url.removeprefix('http://')}/{self.repository}@{base_digest}"
        # the test's own clients for the invoker: its reads are not the target's calls
        self.invoker = ImageInvoker(aws_client("lambda", moto_url), self.work / "images")
        if create_function:
            self.create_function()

    def create_function(self) -> None:
        """What the deploy stack creates: the role and the container-image function on the base image."""
        iam = aws_client("iam", self.moto_url)
        iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))
        self.lam.create_function(FunctionName=self.function, Role=ROLE, PackageType="Image",
                                 Code={"ImageUri": self.base_uri}, MemorySize=128, Architectures=["x86_64"],
                                 Environment={"Variables": dict(STACK_VARIABLE)})
        self.calls.clear()

    def registry(self) -> MirroredRegistry:
        """A registry client (what ecr_registry gives on AWS), as the target asks for one per deploy."""
        client = MirroredRegistry(self.registry_url, aws_client("ecr", self.moto_url))
        self.registries.append(client)
        return client

    def target(self, group: str = "scenario-models", **settings: Any) -> AwsLambdaTarget:
        settings.setdefault("memory_mb", self.memory_mb)
        settings.setdefault("update_timeout", 30.0)
        return AwsLambdaTarget(self.lam, self.s3, self.registry, group=group, function=self.function,
                               repository=self.repository, base_tag=BASE, ecr_client=self.ecr, invoker=self.invoker, poll=5.0,
                               sleep=self.time.sleep, clock=self.time.clock, **settings)

    def upload(self, key: str, data: bytes) -> str:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=data)
        return f"s3://{BUCKET}/{key}"

    def upload_broken(self, archive: Path, key: str, marker: str) -> str:
        """A model whose image Lambda refuses: UpdateFunctionCode to it ends Failed (InvalidImage)."""
        variant, sha = broken_variant(archive, self.work / "broken" / marker, marker)
        FAKE_LAMBDA.fail_model(sha)
        return self.upload(key, variant.read_bytes())

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(READS)]

    def registry_writes(self) -> int:
        return sum(c.stats.requests["PUT"] + c.stats.requests["POST"] + c.stats.requests["PATCH"]
                   for c in self.registries)

    def alias(self) -> dict[str, Any]:
        return self.lam.get_alias(FunctionName=self.function, Name="live")

    def served(self) -> dict[str, Any]:
        """What the Function URL on `live` answers a prediction (through the in-process invoker)."""
        from tests.support.endpoints import ROW

        event = {"version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "POST"}},
                 "headers": {"content-type": "text/csv"}, "body": ROW}
        return self.invoker.invoke(self.function, "live", event)

    def tags(self) -> dict[str, str]:
        images = self.ecr.describe_images(repositoryName=self.repository)["imageDetails"]
        return {tag: image["imageDigest"] for image in images for tag in image.get("imageTags", [])}

    def close(self) -> None:
        for client in self.registries:
            client.close()

