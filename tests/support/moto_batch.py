"""moto's EventBridge Scheduler and SageMaker transform jobs, extended in the test process for the batch target.

moto 5.2.5 (measured; /work/shared/research/moto.md) stores schedules but never fires them, and its
CreateTransformJob is Completed at once and writes nothing. `install()` wraps moto's own backend
methods (so `ThreadedMotoServer` in this process serves the change over HTTP):

- CreateTransformJob *runs* the job, as a Batch Transform container would, with the model's own
  serving code: the job's ModelName -> moto's Model -> its ModelPackageName -> the package's
  ModelDataUrl in moto's S3; the archive is unpacked (deploy.endpoint.sources.prepare_model_dir)
  and loaded (deploy.endpoint.loader.load_version), and every object under the input S3Prefix goes
  through deploy.batch.transform.transform_unit with the job's BatchStrategy and JoinSource
  (mini-batches are whole objects here: the smoke rows are a few hundred bytes); `<key>.out` is
  written under S3OutputPath. A model that cannot load or a refused row makes the job Failed with
  the reason, as SageMaker reports a failed job. It is Completed at once (no instance start), unless
  `FAKE_BATCH.slow_jobs = K`: then DescribeTransformJob shows each new job InProgress for its first K
  calls, as a job whose instance is still starting.
- CreateSchedule and UpdateSchedule refuse a schedule whose Input names a Model of a package marked
  with `FAKE_BATCH.fail(package_arn, reason)` (a ValidationException, as the service refuses a bad
  update), so a test can show that a failed schedule update leaves the previous version scheduled.
  Schedules are still never fired: what a schedule's next run would start is read from its Input.

`FAKE_BATCH.reset()` clears the injected failures (the moto_endpoint fixture does).
"""

from __future__ import annotations

import functools
import json
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FAKE_BATCH", "install"]


@dataclass
class FakeBatch:
    failing: dict[str, str] = field(default_factory=dict)  # package ARN -> reason its schedule writes fail
    jobs_run: int = 0
    slow_jobs: int = 0  # DescribeTransformJob calls a new job shows InProgress for
    in_progress: dict[str, int] = field(default_factory=dict)  # job name -> describes left InProgress
    cache: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="moto-batch-models-")))

    def reset(self) -> None:
        self.failing.clear()
        self.in_progress.clear()
        self.jobs_run = self.slow_jobs = 0

    def fail(self, package_arn: str, reason: str) -> None:
        """CreateSchedule/UpdateSchedule naming a Model of this package fail with `reason`."""
        self.failing[package_arn] = reason


FAKE_BATCH = FakeBatch()
_installed = threading.Lock()
_done: list[bool] = []


def _package_of_model(sagemaker, model_name: str) -> str | None:
    model = sagemaker._models.get(model_name)
    containers = (model.containers or [model.primary_container]) if model is not None else []
    return next((c.get("ModelPackageName") for c in containers if c and c.get("ModelPackageName")), None)


def install() -> FakeBatch:
    """Wrap moto's methods (idempotent); returns FAKE_BATCH."""
    with _installed:
        if not _done:
            _install_scheduler()
            _install_transform_jobs()
            _done.append(True)
    return FAKE_BATCH


def _install_scheduler() -> None:
    from moto.sagemaker.models import sagemaker_backends
    from moto.scheduler.exceptions import ValidationException
    from moto.scheduler.models import EventBridgeSchedulerBackend

    def check(backend, target) -> None:
        try:
            model = json.loads((target or {}).get("Input") or "{}").get("ModelName")
        except ValueError:
            return
        package = _package_of_model(sagemaker_backends[backend.account_id][backend.region_name], model or "")
        if package in FAKE_BATCH.failing:
            raise ValidationException(message=FAKE_BATCH.failing[package])

    for name in ("create_schedule", "update_schedule"):
        original = getattr(EventBridgeSchedulerBackend, name)

        def wrapped(self, *args, __original=original, **kwargs):
            check(self, kwargs.get("target"))
            return __original(self, *args, **kwargs)

        setattr(EventBridgeSchedulerBackend, name, functools.wraps(original)(wrapped))


def _install_transform_jobs() -> None:
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.create_transform_job

    @functools.wraps(original)
    def create_transform_job(self, *args, **kwargs):
        job = original(self, *args, **kwargs)
        try:
            _run(self, job)
        except Exception as exc:  # noqa: BLE001 - the job fails with the reason, as SageMaker reports it
            job.transform_job_status, job.failure_reason = "Failed", f"{type(exc).__name__}: {exc}"
        FAKE_BATCH.jobs_run += 1
        if FAKE_BATCH.slow_jobs:
            FAKE_BATCH.in_progress[job.transform_job_name] = FAKE_BATCH.slow_jobs
        return job

    original_describe = SageMakerModelBackend.describe_transform_job

    @functools.wraps(original_describe)
    def describe_transform_job(self, transform_job_name):
        described = original_describe(self, transform_job_name)
        left = FAKE_BATCH.in_progress.get(transform_job_name, 0)
        if left > 0:
            FAKE_BATCH.in_progress[transform_job_name] = left - 1
            described = {**described, "TransformJobStatus": "InProgress"}
        return described

    SageMakerModelBackend.create_transform_job = create_transform_job
    SageMakerModelBackend.describe_transform_job = describe_transform_job


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _run(sagemaker, job) -> None:
    """The job, with the model's own serving code (module docstring)."""
    from moto.s3.models import s3_backends

    from deploy.batch.transform import transform_unit
    from deploy.endpoint.loader import load_version
    from deploy.endpoint.sources import prepare_model_dir

    s3 = s3_backends[sagemaker.account_id]["aws"]
    package_arn = _package_of_model(sagemaker, job.model_name)
    if package_arn is None:
        raise ValueError(f"model {job.model_name} names no model package")
    package = sagemaker.describe_model_package(package_arn)
    bucket, key = _split(package.inference_specification["Containers"][0]["ModelDataUrl"])
    archive = FAKE_BATCH.cache / f"{abs(hash((bucket, key)))}.tar.gz"
    archive.write_bytes(s3.get_object(bucket, key).value)
    loaded = load_version(f"moto-batch/{job.model_name}", prepare_model_dir(archive, FAKE_BATCH.cache))
    source = job.transform_input["DataSource"]["S3DataSource"]["S3Uri"]
    in_bucket, prefix = _split(source)
    out_bucket, out_prefix = _split(job.transform_output["S3OutputPath"])
    keys = sorted(k for k in s3.get_bucket(in_bucket).keys.keys() if k.startswith(prefix))
    if not keys:
        raise ValueError(f"no objects under {source}")
    for name in keys:
        data = s3.get_object(in_bucket, name).value
        result = transform_unit(loaded.code, loaded.model, data, single_record=job.batch_strategy == "SingleRecord",
                                join_input=(job.data_processing or {}).get("JoinSource") == "Input", budget=0)
        if result.bad:
            line, reason = result.bad[0]
            raise ValueError(f"{name}, line {line + 1}: {reason}")
        relative = name[len(prefix):].lstrip("/") if prefix.endswith("/") or not prefix else name.rsplit("/", 1)[-1]
        s3.put_object(out_bucket, f"{out_prefix.rstrip('/')}/{relative}.out", result.output)
