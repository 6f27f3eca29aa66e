"""The batch target, local adapter: the local mirror of the EventBridge Scheduler schedule, kept by reconcile.

    observe  the schedule's Input names the version (model_from_schedule); DISABLED is not active, a
             missing schedule runs nothing, one that differs from the configuration is not active
             (the next reconcile replaces it)
    deploy   smoke test first: the recorded smoke rows go through a real local Batch Transform job of
             the new version (deploy.batch.runner: a worker process loads the version with its own
             model_fn and sends the rows through its input_fn/predict_fn/output_fn with the
             configured BatchStrategy and MaxPayloadInMB), and the `.out` predictions are compared
             exactly (SmokeTest.check); only then is the schedule put ENABLED on the new version
             (created or replaced: the same request CreateSchedule/UpdateSchedule take on AWS). A
             failure writes nothing: the schedule stays where it was.
    stop     the schedule is DISABLED (it keeps its Input)
    prune    nothing: unpacked models live in the content-addressed model cache

Without `input`/`output` configured, jobs read GREENLIGHT_HOME/batch/groups/<group>/input and write
under .../output (the input folder is created on deploy, so the demo has somewhere to drop files).
`greenlight batch scheduler` fires the schedule; `greenlight batch run` without --model-version uses
the version it names (deploy.batch.resolve.deployed_version).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from deploy.batch.aws_requests import (
    LOCAL_ROLE_ARN,
    ModelRef,
    schedule_request,
)
from deploy.batch.config import BatchConfig
from deploy.batch.observed import observed_schedule, schedule_model
from deploy.batch.jobs import JobStore
from deploy.batch.local_schedule import disable_local_schedule, put_local_schedule, read_local_schedule
from deploy.batch.runner import BatchJobFailed, JobSpec, run_job
from deploy.endpoint.aws_names import model_name
from deploy.endpoint.sources import prepare_model_dir
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.smoke import SmokeMismatch, SmokeTest
from greenlight.errors import DeploymentFailed, GreenlightError

__all__ = ["LocalBatchTarget", "local_io"]

log = logging.getLogger(__name__)


def local_io(home: Path, group: str, config: BatchConfig) -> BatchConfig:
    """`config` with input and output defaulted to folders under GREENLIGHT_HOME for `group`."""
    base = Path(home) / "batch" / "groups" / group
    return config.model_copy(update={"input": config.input or str(base / "input"),
                                     "output": config.output or str(base / "output")})


class LocalBatchTarget:
    """DeployTarget for the local batch schedule of one model package group."""

    kind = TargetKind.BATCH

    def __init__(self, home: Path, group: str, config: BatchConfig, model_path: Callable[[str], Path], *,
                 name: str = "batch"):
        self.home, self.group, self.name = Path(home), group, name
        self.config = local_io(home, group, config).names_for(group)
        self.schedule = self.config.schedule_name
        self._model_path = model_path  # s3:// URI of model.tar.gz -> local file (the artifact store)

    @property
    def _label(self) -> str:
        return f"local batch schedule {self.schedule}"

    def observe(self) -> Observed:
        schedule = read_local_schedule(self.home, self.schedule)
        return observed_schedule(self.name, self.schedule, self._label, schedule, self.config, self.group,
                                 local=True)

    def deploy(self, release: Release, smoke: SmokeTest | None) -> str:
        before = read_local_schedule(self.home, self.schedule)
        prior = self._ours(before) if before is not None else None
        running = prior if prior is not None and before.get("State") == "ENABLED" else None
        kept = ("nothing was scheduled before, so nothing is" if running is None else
                f"v{running.version} still serves (schedule {self.schedule} unchanged)")
        try:
            model_dir = prepare_model_dir(self._model_path(release.model_data_url or ""), self.home / "model-cache")
        except GreenlightError as exc:
            raise DeploymentFailed(f"cannot fetch v{release.version}'s model {release.model_data_url}: {exc}; "
                                   f"{kept}") from exc
        try:
            where = self._smoke(release, model_dir, smoke)
        except DeploymentFailed as exc:
            raise DeploymentFailed(f"{exc}; {kept}") from exc
        ref = ModelRef(self.group, release.version,
                       model_name(self.group, release.version, release.package_arn, LOCAL_ROLE_ARN))
        if "://" not in self.config.input:  # a local folder (an s3:// input lives in the artifact store)
            Path(self.config.input).mkdir(parents=True, exist_ok=True)
        try:
            put_local_schedule(self.home, schedule_request(self.config, ref, local=True, previous=prior))
        except GreenlightError as exc:
            raise DeploymentFailed(f"cannot put local batch schedule {self.schedule}: {exc}; {kept}") from exc
        moved = "nothing" if running is None else f"v{running.version}"
        return (f"{moved} -> v{release.version} (smoke test passed {where}; schedule {self.schedule} ENABLED, "
                f"{self.config.schedule} {self.config.timezone})")

    def stop(self) -> str:
        before = read_local_schedule(self.home, self.schedule)
        if before is None:
            return f"nothing to stop: no local batch schedule {self.schedule}"
        version = self._ours(before).version
        disable_local_schedule(self.home, self.schedule)
        return f"v{version} -> stopped (schedule {self.schedule} DISABLED; it keeps its Input)"

    def prune(self, keep: frozenset[int]) -> list[str]:
        return []  # unpacked models live in the content-addressed model cache, shared with `batch run`

    # -- helpers ----------------------------------------------------------------------------------

    def _ours(self, schedule: dict) -> ModelRef:
        """The version a schedule runs. Raises: ScheduleInputError if it is not this group's."""
        return schedule_model(schedule, self.group, self._label)

    def _smoke(self, release: Release, model_dir: Path, smoke: SmokeTest | None) -> str:
        """The smoke rows through a local transform job of the version, compared exactly. Raises: DeploymentFailed."""
        if smoke is None:
            return "not run: no smoke-test data and smoke.required = false"
        work = Path(tempfile.mkdtemp(prefix="smoke-", dir=self._smoke_dir()))
        try:
            (work / "input").mkdir()
            (work / "input" / "smoke.csv").write_text(smoke.body if smoke.body.endswith("\n") else smoke.body + "\n")
            spec = JobSpec(input=work / "input", output=work / "output", model_group=self.group,
                           model_version=release.version, model_dir=model_dir, strategy=self.config.strategy,
                           max_payload_mb=self.config.max_payload_mb, workers=1, job_id=f"smoke-v{release.version}")
            try:
                run_job(spec, JobStore(work / "jobs"))
                answer = (work / "output" / "smoke.csv.out").read_text(encoding="utf-8").splitlines()
                smoke.check([float(line) for line in answer])
            except BatchJobFailed as exc:
                raise DeploymentFailed(f"smoke test: the local transform job of v{release.version} failed: "
                                       f"{exc.record.failure_reason}") from exc
            except (SmokeMismatch, ValueError) as exc:
                raise DeploymentFailed(f"smoke test: the local transform job of v{release.version}: {exc}") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return f"in a local transform job of its {len(smoke.predictions)} smoke rows"

    def _smoke_dir(self) -> Path:
        folder = self.home / "batch" / "smoke"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
