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

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from deploy.batch.aws_requests import LOCAL_ROLE_ARN
from deploy.batch.config import BatchConfig
from deploy.batch.jobs import JobStore
from deploy.batch.local_schedule import put_local_schedule, read_local_schedule
from deploy.batch.observed import ScheduleTarget
from deploy.batch.runner import BatchJobFailed, JobSpec, run_job
from deploy.endpoint.aws_names import model_name
from deploy.endpoint.sources import prepare_model_dir
from deploy.engine.model import Release
from deploy.engine.protocol import Artifact, Staged
from deploy.engine.smoke import SmokeMismatch, SmokeTest
from greenlight.errors import DeploymentFailed

__all__ = ["LocalBatchTarget", "local_io"]


def local_io(home: Path, group: str, config: BatchConfig) -> BatchConfig:
    """`config` with input and output defaulted to folders under GREENLIGHT_HOME for `group`."""
    base = Path(home) / "batch" / "groups" / group
    return config.model_copy(update={"input": config.input or str(base / "input"),
                                     "output": config.output or str(base / "output")})


class LocalBatchTarget(ScheduleTarget):
    """DeployTarget for the local batch schedule of one model package group."""

    local = True

    def __init__(self, home: Path, group: str, config: BatchConfig, model_path: Callable[[str], Path], *,
                 name: str = "batch", key: str | None = None):
        """`key`: the stage's deployment key (deploy/names.py `GroupNames.stage`), which names the schedule and
        the default input and output folders; the group (the default) for the implicit stage."""
        self.home, self.group, self.name = Path(home), group, name
        self.config = local_io(home, key or group, config).names_for(key or group)
        self.schedule = self.config.schedule_name_for(key or group)
        self.label = f"local batch schedule {self.schedule}"
        self._model_path = model_path  # s3:// URI of model.tar.gz -> local file (the artifact store)

    def _read(self) -> dict | None:
        return read_local_schedule(self.home, self.schedule)

    def _write(self, request: dict, exists: bool) -> None:
        source, _ = self.config.require_io()  # both set by local_io
        if "://" not in source:  # a local folder (an s3:// input lives in the artifact store)
            Path(source).mkdir(parents=True, exist_ok=True)
        put_local_schedule(self.home, request)

    def fetch(self, release: Release, scratch: Path) -> Artifact:
        model_dir = prepare_model_dir(self._model_path(release.model_data_url or ""), self.home / "model-cache")
        return Artifact(release.version, release.model_data_url, model_dir)

    def stage(self, release: Release, artifact: Artifact) -> Staged:
        return self._staged(release, model_name(self.group, release.version, release.package_arn, LOCAL_ROLE_ARN),
                            model_dir=str(artifact.path))

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

    def prune(self, keep: frozenset[int]) -> list[str]:
        return []  # unpacked models live in the content-addressed model cache, shared with `batch run`
