"""The batch deployment worlds for the shared contract and scenario suites: the schedule, locally and on AWS.

Same interface as tests/support/deploy_env.py. What "served" means for a scheduled target: the
version the schedule's next run would use, None when the schedule is DISABLED or missing. Both
worlds read it without the adapter under test:

- local: the schedule's JSON under GREENLIGHT_HOME is read, its context attributes substituted as the
  scheduler does when it fires, and turned into the job the scheduler would run
  (deploy.batch.scheduler.job_spec_for: the version's model unpacked from the artifact store);
  `target_writes` counts writes of the local schedule file. "broken": a model whose forest does not
  match its recorded sha256 (it cannot load in the smoke transform job); "disagree": recorded smoke
  predictions this model does not give.
- aws: GetSchedule through the test's own client (moto's HTTP server stores schedules but never fires
  them); the Input, with sample context attributes, must be a valid CreateTransformJob request, and its
  ModelName is followed to the SageMaker Model's model package, whose version is the answer;
  `target_writes` counts the scheduler client's write calls. "broken": moto's CreateSchedule and
  UpdateSchedule are made to fail in the test process for that version's Model
  (tests/support/moto_batch.py); "disagree": the smoke transform job (run by the extended moto with
  the model's own serving code) gives other predictions than the recorded ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deploy.batch.aws_requests import substitute_context
from deploy.batch.local_schedule import read_local_schedule
from tests.support.deploy_env import GROUP, LocalDeployEnv
from tests.support.deploy_env_aws import AwsDeployEnv

SCHEDULE = f"{GROUP}-batch"
SAMPLE = {"schedule_arn": f"arn:aws:scheduler:us-east-1:123456789012:schedule/default/{SCHEDULE}",
          "scheduled_time": "2026-12-01T02:00:00Z", "execution_id": "d32c5kddcf5bb8c3"}
BUCKET = "greenlight-test"
SCHEDULER_ROLE = "arn:aws:iam::123456789012:role/greenlight-scheduler"
BATCH_DLQ = "arn:aws:sqs:us-east-1:123456789012:greenlight-batch-dlq"
BROKEN_SCHEDULE = "injected by tests/support/moto_batch.py: UpdateSchedule refused for this version's Model"


def aws_batch_environment() -> dict[str, str]:
    """What the deploy stack gives the handler for the batch target (pointed at the test bucket)."""
    return {"GREENLIGHT_BATCH_ROLE_ARN": SCHEDULER_ROLE, "GREENLIGHT_BATCH_DEAD_LETTER_ARN": BATCH_DLQ,
            "GREENLIGHT_BATCH_INPUT": f"s3://{BUCKET}/{GROUP}/batch/input/",
            "GREENLIGHT_BATCH_OUTPUT": f"s3://{BUCKET}/{GROUP}/batch/output/"}


class LocalBatchDeployEnv(LocalDeployEnv):
    """The local batch target: the local schedule mirror under a tmp GREENLIGHT_HOME (nothing serves)."""

    def __init__(self, home: Path, models: dict[str, Path], monkeypatch):
        from greenlight.workspace import Workspace

        self.kind = "batch"
        self.home, self.models, self.group = Path(home), models, GROUP
        self.ws = Workspace.open("local", home=self.home)
        self.registry = self.ws.local_registry
        self.account, self.region = self.registry.account, self.registry.region
        self._writes = 0
        import deploy.batch.local_schedule as local_schedule

        original = local_schedule._store

        def counting(folder, name, entry):
            self._writes += 1
            original(folder, name, entry)

        monkeypatch.setattr(local_schedule, "_store", counting)
        self.target = self.reconciler().targets[0]
        assert self.target.kind.value == "batch" and len(self.reconciler().targets) == 1, self.reconciler().targets

    def close(self) -> None:
        pass

    def served_version(self) -> int | None:
        """The version the local scheduler's next run of the schedule would use (None: DISABLED or missing)."""
        from deploy.batch.scheduler import job_spec_for

        schedule = read_local_schedule(self.home, SCHEDULE)
        if schedule is None or schedule["State"] != "ENABLED":
            return None
        request = json.loads(substitute_context(schedule["Target"]["Input"], **SAMPLE))
        spec = job_spec_for(request, registry=self.registry, store=self.ws.store, cache_dir=self.home / "model-cache")
        assert spec.model_group == self.group and (spec.model_dir / "code" / "inference.py").is_file(), spec
        return spec.model_version


class AwsBatchDeployEnv(AwsDeployEnv):
    """The batch target's AWS adapter, through the composition root, against moto's HTTP server (extended)."""

    def __init__(self, moto_url: str, home: Path, models: dict[str, Path], monkeypatch, group: str):
        super().__init__(moto_url, home, models, monkeypatch, group, kind="batch")

    def environment(self, moto_url: str) -> dict[str, str]:
        from tests.support.deploy_env_aws import aws_environment

        return {**aws_environment(moto_url), **aws_batch_environment(), "GREENLIGHT_BATCH_ENABLED": "true",
                "GREENLIGHT_ENDPOINT_ENABLED": "false"}

    def _count_target_writes(self) -> None:
        self.ws.client("scheduler").meta.events.register("before-call.scheduler.*", self._count)

    def register(self, kind: str = "good", model: str = "a") -> int:
        from tests.support.moto_batch import FAKE_BATCH

        version = super().register("good" if kind == "broken" else kind, model)
        if kind == "broken":
            FAKE_BATCH.fail(self.arn(version), BROKEN_SCHEDULE)
        return version

    def served_version(self) -> int | None:
        """The version the schedule's next run would start a transform job with (None: DISABLED or missing)."""
        from botocore.exceptions import ClientError
        from botocore.validate import ParamValidator

        from tests.contract.conftest import aws_client

        try:
            schedule = aws_client("scheduler", self.moto_url).get_schedule(Name=SCHEDULE)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise
        if schedule["State"] != "ENABLED":
            return None
        sagemaker = aws_client("sagemaker", self.moto_url)
        request = json.loads(substitute_context(schedule["Target"]["Input"], **SAMPLE))
        shape = sagemaker.meta.service_model.operation_model("CreateTransformJob").input_shape
        report = ParamValidator().validate(request, shape)
        assert not report.has_errors(), report.generate_report()
        model = sagemaker.describe_model(ModelName=request["ModelName"])
        package = next(c["ModelPackageName"] for c in model.get("Containers") or [model["PrimaryContainer"]])
        return next(v.version for v in self.registry.list_versions(self.group) if v.arn == package)

    def worker_spec(self) -> dict[str, Any]:
        return {**super().worker_spec(), "kind": "batch"}
