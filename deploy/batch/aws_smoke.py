"""The batch target's smoke test on AWS: the version's recorded smoke rows through a real Batch Transform job.

A batch schedule has nothing to invoke, so before it moves to a version the adapter runs one small
transform job of that version's SageMaker Model on the smoke rows, with the schedule's own semantics
(the same CreateTransformJob request the schedule sends, built by aws_requests.transform_job_input;
JoinSource None, since only the predictions are compared), reads `smoke.csv.out` back and compares it
exactly with the predictions recorded at training (SmokeTest.check). That checks what the schedule's
runs depend on: the Model starts in Batch Transform, its code reads the configured mini-batches, and
it answers what it answered at training.

    <output>/<job>/input/smoke.csv      the smoke body (written by the deployer)
    <output>/<job>/output/smoke.csv.out what the job writes (AssembleWith Line)

The job is named `<job_name_prefix>-smoke-v<N>-<hash8>-<attempt>`: the hash covers the model and
everything the job does, so a reconcile that stopped while waiting (the approval Lambda ends at 900 s;
Batch Transform takes minutes to start an instance) finds the job by its name and reads its result
instead of starting another; a Failed or Stopped attempt is followed by a new one. The wait is bounded
by `smoke_timeout_seconds`. `validate_request` checks a request against botocore's CreateTransformJob
input shape (ParamValidator, plus each string's pattern, length and enum, which ParamValidator leaves
out), which is all that is checked when `smoke_transform = false`.

moto's CreateTransformJob completes at once and writes nothing; the tests extend it in their own
process to run the job with the model's serving code (tests/support/moto_batch.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from deploy.batch.aws_requests import ModelRef, substitute_context, transform_job_input
from deploy.batch.config import BatchConfig
from deploy.engine.deadline import hand_over_before_sleep
from deploy.engine.smoke import SmokeMismatch, SmokeTest
from greenlight.aws_errors import aws_errors as _aws
from greenlight.errors import AwsError, DeploymentFailed, NotFoundError
from greenlight.store import split_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

__all__ = ["SmokeTransform", "smoke_job_base", "validate_request"]

log = logging.getLogger(__name__)

DONE = frozenset({"Completed", "Failed", "Stopped"})
SAMPLE_CONTEXT = {"schedule_arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/default/sample",
                  "scheduled_time": "2026-01-01T00:00:00Z", "execution_id": "d32c5kddcf5bb8c3"}


def _python_pattern(pattern: str) -> str:
    """AWS's Java-style classes in patterns (tags use them), for ASCII values."""
    return pattern.replace(r"\p{L}", "a-zA-Z").replace(r"\p{N}", "0-9").replace(r"\p{Z}", " ")


def _strict(shape, value, path: str) -> list[str]:
    meta, problems = shape.metadata, []
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                problems += _strict(member, value[name], f"{path}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            problems += _strict(shape.member, item, f"{path}[{i}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            problems += _strict(shape.value, item, f"{path}[{key}]")
    elif shape.type_name == "string" and isinstance(value, str):
        if "pattern" in meta and not re.fullmatch(_python_pattern(meta["pattern"]), value):
            problems.append(f"{path}: {value!r} does not match {meta['pattern']}")
        if "max" in meta and len(value) > meta["max"]:
            problems.append(f"{path}: longer than {meta['max']} characters")
        if getattr(shape, "enum", None) and value not in shape.enum:
            problems.append(f"{path}: {value!r} is not one of {', '.join(shape.enum)}")
    return problems


def validate_request(sagemaker: SageMakerClient, request: dict[str, Any]) -> None:
    """Check a CreateTransformJob request (context attributes substituted by sample values) against the
    client's service model. Raises: DeploymentFailed listing what CreateTransformJob would refuse."""
    from botocore.validate import ParamValidator

    text = substitute_context(json.dumps(request), **SAMPLE_CONTEXT)
    concrete = json.loads(text)
    shape = sagemaker.meta.service_model.operation_model("CreateTransformJob").input_shape
    report = ParamValidator().validate(concrete, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += _strict(shape, concrete, "CreateTransformJob")
    if problems:
        raise DeploymentFailed("the batch job request is not a valid CreateTransformJob request: "
                               + "; ".join(problems))


def smoke_job_base(config: BatchConfig, ref: ModelRef, smoke: SmokeTest) -> str:
    """`<prefix>-smoke-v<N>-<hash8>`: the same model, rows and job settings give the same name."""
    request = transform_job_input(config, ref)
    request.pop("TransformJobName")
    request.pop("TransformOutput")
    request.pop("TransformInput")
    digest = hashlib.sha256(json.dumps([request, smoke.body], sort_keys=True).encode()).hexdigest()[:8]
    return f"{config.job_name_prefix}-smoke-v{ref.version}-{digest}"


class SmokeTransform:
    """Runs (or finds) the smoke transform job of a version and compares its output (module docstring)."""

    def __init__(self, sagemaker: SageMakerClient, s3: S3Client, config: BatchConfig, *, timeout: float,
                 poll: float = 15.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self._sm, self._s3, self.config = sagemaker, s3, config
        self.timeout, self.poll, self._sleep, self._clock = timeout, poll, sleep, clock

    def run(self, ref: ModelRef, smoke: SmokeTest) -> str:
        """Where the smoke test passed, in words. Raises: DeploymentFailed (the job failed, timed out, or
        its predictions differ from the recorded ones)."""
        base = smoke_job_base(self.config, ref, smoke)
        name, job = self._latest(base)
        if job is None or job["TransformJobStatus"] in ("Failed", "Stopped"):
            if job is not None:
                log.warning("smoke transform job %s was %s (%s); starting another", name, job["TransformJobStatus"],
                            job.get("FailureReason") or "no reason given")
            attempt = 1 if name is None else int(name.rsplit("-", 1)[1]) + 1
            name = f"{base}-{attempt}"
            self._start(name, ref, smoke)
        else:
            log.info("smoke transform job %s exists (%s); using it", name, job["TransformJobStatus"])
        job = self._wait(name)
        if job["TransformJobStatus"] != "Completed":
            raise DeploymentFailed(f"smoke test: transform job {name} of v{ref.version} ended "
                                   f"{job['TransformJobStatus']}: {job.get('FailureReason') or 'no reason given'}")
        uri = f"{job['TransformOutput']['S3OutputPath'].rstrip('/')}/smoke.csv.out"
        try:
            lines = self._read(uri).decode("utf-8").splitlines()
            smoke.check([float(line) for line in lines if line.strip()])
        except (SmokeMismatch, ValueError, NotFoundError) as exc:
            raise DeploymentFailed(f"smoke test: transform job {name} of v{ref.version}: {exc}") from exc
        return f"in transform job {name} ({len(smoke.predictions)} smoke rows)"

    # -- steps ----------------------------------------------------------------------------------

    def _latest(self, base: str) -> tuple[str | None, dict[str, Any] | None]:
        """The newest attempt named `<base>-<n>` and its description (None, None: none yet)."""
        with _aws("ListTransformJobs"):
            pages = self._sm.get_paginator("list_transform_jobs").paginate(NameContains=base)
            names = [j["TransformJobName"] for page in pages for j in page.get("TransformJobSummaries", [])]
        attempts = sorted((int(n.rsplit("-", 1)[1]), n) for n in names
                          if n.startswith(f"{base}-") and n.rsplit("-", 1)[1].isdigit())
        if not attempts:
            return None, None
        name = attempts[-1][1]
        return name, self._describe(name)

    def _describe(self, name: str) -> dict[str, Any]:
        with _aws("DescribeTransformJob"):
            return self._sm.describe_transform_job(TransformJobName=name)

    def _start(self, name: str, ref: ModelRef, smoke: SmokeTest) -> None:
        base = f"{self.config.output.rstrip('/')}/{name}"
        bucket, key = split_s3_uri(f"{base}/input/smoke.csv")
        body = smoke.body if smoke.body.endswith("\n") else smoke.body + "\n"
        with _aws("PutObject"):
            self._s3.put_object(Bucket=bucket, Key=key, Body=body.encode("utf-8"), ContentType="text/csv")
        request = transform_job_input(self.config, ref)
        request["TransformJobName"] = name
        request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] = f"{base}/input/"
        request["TransformOutput"]["S3OutputPath"] = f"{base}/output/"
        request["DataProcessing"] = {"JoinSource": "None"}
        request["TransformResources"]["InstanceCount"] = 1
        with _aws("CreateTransformJob"):
            self._sm.create_transform_job(**request)
        log.info("started smoke transform job %s of %s on %d rows", name, ref.label, len(smoke.predictions))

    def _wait(self, name: str) -> dict[str, Any]:
        deadline = self._clock() + self.timeout
        while True:
            job = self._describe(name)
            if job["TransformJobStatus"] in DONE:
                return job
            if self._clock() >= deadline:
                raise DeploymentFailed(f"smoke test: transform job {name} is still {job['TransformJobStatus']} after "
                                       f"{self.timeout:g} s (batch.smoke_timeout_seconds); the next reconcile finds "
                                       "it by its name and reads its result")
            hand_over_before_sleep(f"smoke transform job {name} ({job['TransformJobStatus']})", self.poll)
            self._sleep(self.poll)

    def _read(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        try:
            with _aws("GetObject", lambda: NotFoundError(f"the job wrote no {uri}")):
                return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except AwsError as exc:
            raise DeploymentFailed(f"smoke test: cannot read {uri}: {exc}") from exc
