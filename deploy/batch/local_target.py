"""The batch target, local adapter: the local mirror of the EventBridge Scheduler schedule, kept by reconcile.

    observe  the schedule's Input names the version (model_from_schedule); DISABLED is not active, a
             missing schedule runs nothing, one that differs from the configuration is not active
             (the next reconcile replaces it)
    fetch    the release's model.tar.gz from the artifact store, unpacked (content-addressed model-cache/)
    stage    the schedule request for the version (the same request CreateSchedule/UpdateSchedule take on
             AWS); nothing is written
    probe    the recorded smoke rows go through a real local Batch Transform job of the staged version
             (deploy.batch.runner: a worker process loads the version with its own model_fn and sends
             the rows through its input_fn/predict_fn/output_fn with the configured BatchStrategy and
             MaxPayloadInMB), and the `.out` predictions are compared exactly (SmokeTest.check)
    switch   the schedule is put ENABLED on the version (created or replaced)
    unstage  the schedule as it was before, if the switch replaced it (DISABLED if there was none)
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

from deploy.batch.aws_requests import LOCAL_ROLE_ARN
from deploy.batch.config import BatchConfig
from deploy.batch.jobs import JobStore
from deploy.batch.local_schedule import disable_local_schedule, put_local_schedule, read_local_schedule
from deploy.batch.observed import observed_schedule, schedule_model, staged_schedule, unstaged_schedule
from deploy.batch.runner import BatchJobFailed, JobSpec, run_job
from deploy.endpoint.aws_names import model_name
from deploy.endpoint.sources import prepare_model_dir
from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.protocol import Artifact, Staged
from deploy.engine.smoke import SmokeMismatch, SmokeTest
from greenlight.errors import DeploymentFailed

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

    # -- the deploy primitives -------------------------------------------------------------------

    def fetch(self, release: Release, scratch: Path) -> Artifact:
        model_dir = prepare_model_dir(self._model_path(release.model_data_url or ""), self.home / "model-cache")
        return Artifact(release.version, release.model_data_url, model_dir)

    def stage(self, release: Release, artifact: Artifact) -> Staged:
        model = model_name(self.group, release.version, release.package_arn, LOCAL_ROLE_ARN)
        ref = staged_schedule(self.config, self.group, self._label, release, model,
                              read_local_schedule(self.home, self.schedule), local=True)
        return Staged(self.name, release.version, {**ref, "model_dir": str(artifact.path)})

    def probe(self, staged: Staged, smoke: SmokeTest) -> str:
        """The smoke rows through a local transform job of the version, compared exactly."""
        version = staged.version
        folder = self.home / "batch" / "smoke"
        folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix="smoke-", dir=folder))
        try:
            (work / "input").mkdir()
            (work / "input" / "smoke.csv").write_text(smoke.body if smoke.body.endswith("\n") else smoke.body + "\n")
            spec = JobSpec(input=work / "input", output=work / "output", model_group=self.group,
                           model_version=version, model_dir=Path(staged.ref["model_dir"]),
                           strategy=self.config.strategy, max_payload_mb=self.config.max_payload_mb, workers=1,
                           job_id=f"smoke-v{version}")
            try:
                run_job(spec, JobStore(work / "jobs"))
                answer = (work / "output" / "smoke.csv.out").read_text(encoding="utf-8").splitlines()
                smoke.check([float(line) for line in answer])
            except BatchJobFailed as exc:
                raise DeploymentFailed(f"smoke test: the local transform job of v{version} failed: "
                                       f"{exc.record.failure_reason}") from exc
            except (SmokeMismatch, ValueError) as exc:
                raise DeploymentFailed(f"smoke test: the local transform job of v{version}: {exc}") from exc
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return f"in a local transform job of its {len(smoke.predictions)} smoke rows"

    def switch(self, staged: Staged) -> str:
        if "://" not in self.config.input:  # a local folder (an s3:// input lives in the artifact store)
            Path(self.config.input).mkdir(parents=True, exist_ok=True)
        put_local_schedule(self.home, staged.ref["request"])
        return f"schedule {self.schedule} ENABLED, {self.config.schedule} {self.config.timezone}"

    def confirm(self, staged: Staged, smoke: SmokeTest | None) -> str | None:
        return None  # the schedule names a version its probe ran: nothing more to check

    def unstage(self, staged: Staged) -> None:
        request = unstaged_schedule(staged.ref, read_local_schedule(self.home, self.schedule))
        if request is not None:
            log.warning("%s: putting back the schedule it had before", self._label)
            put_local_schedule(self.home, request)

    def stop(self) -> str:
        before = read_local_schedule(self.home, self.schedule)
        if before is None:
            return f"nothing to stop: no local batch schedule {self.schedule}"
        version = schedule_model(before, self.group, self._label).version
        disable_local_schedule(self.home, self.schedule)
        return f"v{version} -> stopped (schedule {self.schedule} DISABLED; it keeps its Input)"

    def prune(self, keep: frozenset[int]) -> list[str]:
        return []  # unpacked models live in the content-addressed model cache, shared with `batch run`
