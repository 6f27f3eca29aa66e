"""What the AWS Lambda world needs besides moto: a stand-in for ECR's registry API, an invoker, moto fixes.

- ECR's registry API: moto serves the ECR *API* (GetAuthorizationToken, DescribeImages,
  BatchDeleteImage, PutImage) but not the registry HTTP API v2 that `docker push` and our append speak.
  The OCI pushes therefore go to a real docker-registry on loopback (tests/support/registry.py), and
  `MirroredRegistry` also records each tagged manifest in moto's ECR with PutImage (same bytes, same
  digest), because on AWS the two are one store: BatchDeleteImage then acts on the images pushed.
- Invoking an image function: moto cannot (its Invoke of an Image function crashes). `ImageInvoker`
  does what Lambda would: resolves the qualifier to a version (moto's GetFunction), refuses when the
  function is throttled (reserved concurrency 0), pulls that version's image by digest from the loopback
  registry, unpacks its layers, and runs the image's own handler (/var/task/lambda_function.py, i.e.
  src/lambda_function.handle) on the image's model (/opt/ml/model) in this process. Through an alias with
  RoutingConfig weights it runs the additional version with that weight's probability, as Lambda does, and
  publishes to moto's CloudWatch what Lambda would for the invocation (AWS/Lambda Invocations, Errors,
  Duration by FunctionName, Resource `<function>:<alias>` and ExecutedVersion), which moto does not: the
  engine's rollout reads them (progressive delivery, issue 22).
- moto fixes and extensions, installed in the test process before its server starts (`install`):
  PublishVersion shares the function's code dict between $LATEST and every published version (a later
  UpdateFunctionCode rewrote every version's ImageUri): each published version gets its own copy;
  LastUpdateStatus is always Successful: `FAKE_LAMBDA.fail_model(sha, ...)` makes an UpdateFunctionCode to an
  image whose model metadata.json has that sha256 end `Failed` with a reason code, as Lambda reports an
  image it cannot use. Function states (moto reports every version Active at once): `FAKE_LAMBDA.pending(
  function, version, describes=K)` makes a version report State Pending for its next K configurations
  read (None: for ever), `inactive(...)` Inactive until it is invoked, when the invoke fails
  (ResourceNotReadyException, as Lambda's Invoke reference names it) and the version goes Pending for
  `wake` configurations read; `publish_pending = K` makes every newly published version start Pending.
  `ImageInvoker` refuses a version that is not Active, as Lambda does.
"""

from __future__ import annotations

import json
import random
import tarfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy.function.handler import load_function
from deploy.function.model import image_digest
from deploy.image import RegistryClient
from deploy.image.append import MODEL_LABEL
from deploy.image.manifest import ACCEPT
from greenlight.errors import AwsError

__all__ = ["FAKE_LAMBDA", "ImageInvoker", "MirroredRegistry", "install"]


def _split(image_uri: str) -> tuple[str, str, str]:
    """(registry host, repository, digest) of `<host>/<repository>@sha256:...`."""
    name, _, digest = image_uri.partition("@")
    host, _, repository = name.partition("/")
    return host, repository, digest


def _model_label(image_uri: str) -> str | None:
    """The metadata.json sha256 the appended image's config records (read from the loopback registry)."""
    host, repository, digest = _split(image_uri)
    if not host.startswith("127.0.0.1:") or not digest:
        return None
    client = RegistryClient(f"http://{host}", timeout=10, attempts=1)
    try:
        _, body, _ = client.manifest(repository, digest, ACCEPT)
        config = json.loads(client.blob(repository, json.loads(body)["config"]["digest"]))
    finally:
        client.close()
    return ((config.get("config") or {}).get("Labels") or {}).get(MODEL_LABEL)


class FakeLambda:
    """Which model images make moto's UpdateFunctionCode end Failed (by metadata.json sha256)."""

    def __init__(self) -> None:
        self._failing: dict[str, tuple[str, str]] = {}
        self._states: dict[tuple[str, str], list[Any]] = {}
        self.publish_pending: int | None = None
        self._lock = threading.Lock()

    def fail_model(self, metadata_sha256: str, code: str = "InvalidImage",
                   reason: str = "The image's model layer cannot be used by Lambda (made to fail by the test).") -> None:
        with self._lock:
            self._failing[metadata_sha256] = (code, reason)

    def failure_for(self, image_uri: str | None) -> tuple[str, str] | None:
        with self._lock:
            if not self._failing or not image_uri:
                return None
            failing = dict(self._failing)
        label = _model_label(image_uri)
        return failing.get(label) if label else None

    # -- function states (module docstring) --------------------------------------------------------

    def pending(self, function: str, version: str, describes: int | None) -> None:
        with self._lock:
            self._states[(function, str(version))] = ["Pending", describes]

    def inactive(self, function: str, version: str, wake: int = 2) -> None:
        with self._lock:
            self._states[(function, str(version))] = ["Inactive", wake]

    def failed(self, function: str, version: str, code: str, reason: str) -> None:
        with self._lock:
            self._states[(function, str(version))] = ["Failed", (code, reason)]

    def state(self, function: str, version: str, *, read: bool = False) -> tuple[str, Any]:
        """(State, extra) of a version; `read` counts one configuration read towards a Pending's end."""
        with self._lock:
            entry = self._states.get((function, str(version)))
            if entry is None:
                return "Active", None
            state, extra = entry
            if read and state == "Pending" and extra is not None:
                if extra <= 0:
                    del self._states[(function, str(version))]
                    return "Active", None
                entry[1] = extra - 1
            return state, extra

    def invoked(self, function: str, version: str) -> str | None:
        """Lambda's answer to an invoke of a version that is not Active (an error code), else None."""
        state, extra = self.state(function, version)
        if state == "Inactive":
            self.pending(function, version, extra)
            return "ResourceNotReadyException"
        return None if state == "Active" else "ResourceConflictException"

    def reset(self) -> None:
        with self._lock:
            self._failing.clear()
            self._states.clear()
            self.publish_pending = None


FAKE_LAMBDA = FakeLambda()
_installed = False


def install() -> None:
    """Patch moto's Lambda backend in this process (module docstring); idempotent."""
    global _installed
    if _installed:
        return
    from moto.awslambda import models

    original_publish = models.LambdaStorage.publish_version

    def publish_version(self, name_or_arn, description=""):
        published = original_publish(self, name_or_arn, description)
        latest = self._functions.get(getattr(published, "function_name", None), {}).get("latest")
        if published is not None and latest is not None and published.code is latest.code:
            published.code = dict(latest.code)  # moto shares it: a later update would rewrite this version
        if published is not None and FAKE_LAMBDA.publish_pending is not None:
            FAKE_LAMBDA.pending(published.function_name, str(published.version), FAKE_LAMBDA.publish_pending)
        return published

    original_set_code = models.LambdaFunction._set_function_code

    def set_function_code(self, updated_spec):
        original_set_code(self, updated_spec)
        self._greenlight_failure = FAKE_LAMBDA.failure_for(self.code.get("ImageUri"))

    original_configuration = models.LambdaFunction.get_configuration

    def get_configuration(self, on_create=False):
        config = original_configuration(self, on_create)
        failure = getattr(self, "_greenlight_failure", None)
        if failure is not None and not on_create:
            config.update(LastUpdateStatus="Failed", LastUpdateStatusReasonCode=failure[0],
                          LastUpdateStatusReason=failure[1])
        if not on_create and str(self.version) != "$LATEST":
            state, extra = FAKE_LAMBDA.state(self.function_name, str(self.version), read=True)
            config["State"] = state
            if state == "Failed":
                config.update(StateReasonCode=extra[0], StateReason=extra[1])
            elif state != "Active":
                config.update(StateReasonCode="Creating" if state == "Pending" else "Idle",
                              StateReason=f"The function version is {state} (made so by the test).")
        return config

    models.LambdaStorage.publish_version = publish_version
    models.LambdaFunction._set_function_code = set_function_code
    models.LambdaFunction.get_configuration = get_configuration
    _installed = True


class MirroredRegistry(RegistryClient):
    """The loopback registry as ECR's registry API, each tagged manifest also put into moto's ECR (PutImage)."""

    def __init__(self, url: str, ecr_client: Any, **options: Any):
        super().__init__(url, timeout=10, sleep=lambda _s: None, **options)
        self.ecr = ecr_client

    def put_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        digest = super().put_manifest(repository, reference, media_type, body)
        if not reference.startswith("sha256:"):
            try:
                self.ecr.put_image(repositoryName=repository, imageManifest=body.decode("utf-8"), imageTag=reference,
                                   imageManifestMediaType=media_type, imageDigest=digest)
            except self.ecr.exceptions.ImageAlreadyExistsException:
                pass
        return digest


class ImageInvoker:
    """Lambda's Invoke of an image function, done in this process (moto cannot): see the module docstring."""

    def __init__(self, lambda_client: Any, cache: Path):
        self.client, self.cache = lambda_client, Path(cache)
        self.executed: str | None = None  # the version the last invoke ran (Invoke's X-Amz-Executed-Version)
        self._lock = threading.Lock()

    def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        concurrency = self.client.get_function_concurrency(FunctionName=function)
        if concurrency.get("ReservedConcurrentExecutions") == 0:
            raise AwsError("AWS Invoke failed: TooManyRequestsException: Rate Exceeded.",
                           code="TooManyRequestsException", operation="Invoke")
        alias = None if qualifier.isdigit() or qualifier == "$LATEST" else qualifier
        try:
            version = self._routed(function, alias) if alias else qualifier
            found = self.client.get_function(FunctionName=function, Qualifier=version)
        except ClientError as exc:
            raise AwsError(f"AWS Invoke failed: {exc.response['Error']['Code']}: {exc.response['Error']['Message']}",
                           code=exc.response["Error"]["Code"], operation="Invoke") from exc
        refused = FAKE_LAMBDA.invoked(function, found["Configuration"]["Version"])
        if refused is not None:  # Lambda refuses a version that is not Active (a first invoke wakes an Inactive one)
            raise AwsError(f"AWS Invoke failed: {refused}: the function version is not Active", code=refused,
                           operation="Invoke")
        root = self._unpacked(found["Code"]["ImageUri"])
        self.executed = executed = found["Configuration"]["Version"]
        loaded = load_function(executed, root / "opt/ml/model", root / "var/task")
        started, failed = time.perf_counter(), True
        try:
            answer = json.loads(json.dumps(loaded.invoke(event)))  # through JSON, as Lambda's Payload is
            failed = False
            return answer
        finally:
            if alias:
                self._published(function, alias, executed, failed, 1000 * (time.perf_counter() - started))

    def _routed(self, function: str, alias: str) -> str:
        """The version an invocation of `alias` runs: the additional version with its weight's probability."""
        found = self.client.get_alias(FunctionName=function, Name=alias)
        for version, weight in ((found.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items():
            if random.random() < weight:
                return str(version)
        return str(found["FunctionVersion"])

    def _published(self, function: str, alias: str, version: str, failed: bool, ms: float) -> None:
        """What Lambda publishes to CloudWatch for one invocation through an alias (module docstring)."""
        import boto3

        cloudwatch = boto3.client("cloudwatch", endpoint_url=self.client.meta.endpoint_url,
                                  region_name=self.client.meta.region_name)
        dimensions = [{"Name": "FunctionName", "Value": function}, {"Name": "Resource", "Value": f"{function}:{alias}"},
                      {"Name": "ExecutedVersion", "Value": version}]
        stamp = datetime.now(UTC)
        cloudwatch.put_metric_data(Namespace="AWS/Lambda", MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Timestamp": stamp, "Value": value}
            for name, value in (("Invocations", 1.0), ("Errors", float(failed)), ("Duration", ms))])

    def _unpacked(self, image_uri: str) -> Path:
        host, repository, digest = _split(image_uri)
        assert image_digest(image_uri) == digest, f"not deployed by digest: {image_uri}"
        root = self.cache / digest.replace(":", "-")
        with self._lock:
            if (root / "var/task/lambda_function.py").is_file():
                return root
            self.cache.mkdir(parents=True, exist_ok=True)
            client = RegistryClient(f"http://{host}", timeout=10, attempts=1)
            try:
                _, body, _ = client.manifest(repository, digest, ACCEPT)
                for i, layer in enumerate(json.loads(body)["layers"]):
                    blob = self.cache / f"{digest[7:19]}-layer-{i}.tar.gz"
                    client.download_blob(repository, layer["digest"], blob)
                    with tarfile.open(blob) as tar:
                        tar.extractall(root, filter="data")
                    blob.unlink()
            finally:
                client.close()
        return root
