"""`greenlight batch scheduler`: run the local schedules' due jobs in the foreground.

Each due schedule fires as EventBridge Scheduler fires its target: the context attributes in the
target's Input are substituted (`<aws.scheduler.execution-id>` is a fresh 16-character id, as in AWS's
example), and the resulting CreateTransformJob request is run by the local runner: its
TransformJobName is the job id, its S3OutputPath (`<output>/<job name>/`) the run's own output
folder, its Tags the model version. The schedule is marked fired before the job starts, so a job
that fails or is interrupted is not started again for the same time (AWS does not re-run a target
whose job failed either). Jobs run one at a time; a failing job is logged and the loop goes on.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy.batch.aws_requests import ScheduleInputError, model_from_transform_request, substitute_context
from deploy.batch.config import BatchStrategy
from deploy.batch.jobs import JobRecord, JobStatus, JobStore, now_iso
from deploy.batch.local_schedule import FireDecision, list_local_schedules, mark_fired, plan_fire, read_local_state
from deploy.batch.resolve import local_location, model_dir_for
from deploy.batch.runner import BatchJobFailed, JobObserver, JobSpec, run_job
from greenlight.errors import GreenlightError

__all__ = ["job_spec_for", "run_due", "serve"]

logger = logging.getLogger(__name__)
_ID_CHARS = string.ascii_lowercase + string.digits


def _execution_id() -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(16))


def job_spec_for(request: dict[str, Any], *, registry, store, cache_dir: Path, workers: int | None = None,
                 schedule: dict | None = None) -> JobSpec:
    """The local job a CreateTransformJob request (context attributes substituted) describes.

    Raises:
        ScheduleInputError: the request lacks what Greenlight writes; NotFoundError: no such version.
    """
    model = model_from_transform_request(request)
    try:
        source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        destination = request["TransformOutput"]["S3OutputPath"]
        job_name = request["TransformJobName"]
    except (KeyError, TypeError) as exc:
        raise ScheduleInputError(f"the CreateTransformJob request lacks {exc}") from None
    folder, prefix = local_location(source, store)
    output, _ = local_location(destination, store)
    return JobSpec(
        input=folder, input_prefix=prefix, input_label=source, output=output, output_label=destination,
        model_group=model.group, model_version=model.version,
        model_dir=model_dir_for(registry, store, model.group, model.version, cache_dir),
        strategy=BatchStrategy(request.get("BatchStrategy", "MultiRecord")),
        max_payload_mb=int(request.get("MaxPayloadInMB", 6)),
        join_input=(request.get("DataProcessing") or {}).get("JoinSource") == "Input",
        workers=workers, job_id=job_name, schedule=schedule)


def run_due(home: Path, *, registry, store, cache_dir: Path, now: datetime | None = None,
            workers: int | None = None, observer_for: Callable[[], JobObserver] | None = None,
            decisions: list[FireDecision] | None = None) -> list[JobRecord]:
    """Run every local schedule that is due now (one job each); the records of the jobs started.

    Raises:
        KeyboardInterrupt: a running job was interrupted (its record says Stopped).
    """
    now = now or datetime.now(UTC)
    jobs = JobStore(Path(home) / "batch" / "jobs")
    records = []
    for schedule in list_local_schedules(home):
        state = read_local_state(home, schedule["Name"])
        if state is None:
            continue
        schedule, start, last = state
        decision = plan_fire(schedule, start, last, now)
        if decisions is not None:
            decisions.append(decision)
        if decision.run_at is None:
            logger.info("schedule %s: not running: %s", decision.name, decision.reason)
            if decision.consumed_until is not None:
                mark_fired(home, decision.name, decision.consumed_until)
            continue
        mark_fired(home, decision.name, decision.run_at)
        record = _fire(schedule, decision, decision.run_at, jobs, registry=registry, store=store, cache_dir=cache_dir,
                       workers=workers, observer=observer_for() if observer_for else None)
        if record is not None:
            records.append(record)
    return records


def _fire(schedule: dict, decision: FireDecision, run_at: datetime, jobs: JobStore, *, observer,
          **resolve) -> JobRecord | None:
    scheduled = run_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    execution_id = _execution_id()
    text = substitute_context(schedule["Target"].get("Input") or "", schedule_arn=schedule["Arn"],
                              scheduled_time=scheduled, execution_id=execution_id)
    meta = {"name": schedule["Name"], "scheduled_time": scheduled, "execution_id": execution_id}
    try:
        request = json.loads(text)
        spec = job_spec_for(request, schedule=meta, **resolve)
    except (ValueError, GreenlightError) as exc:
        logger.error("schedule %s: cannot start its job for %s: %s", decision.name, scheduled, exc)
        _record_start_failure(jobs, text, meta, exc)
        return None
    logger.info("schedule %s: starting job %s because %s: model %s/%d, input %s, output %s", decision.name,
                spec.job_id, decision.reason, spec.model_group, spec.model_version, spec.input_label,
                spec.output_label)
    try:
        record = run_job(spec, jobs, observer)
    except BatchJobFailed as exc:
        logger.error("schedule %s: %s", decision.name, exc)
        return exc.record
    logger.info("schedule %s: job %s %s: %d rows in %.1f s", decision.name, record.job_id, record.status,
                record.rows, record.duration_seconds or 0.0)
    return record


def _record_start_failure(jobs: JobStore, text: str, meta: dict, exc: Exception) -> None:
    """A Failed record for a run that could not start, when its Input names a job and a version."""
    try:
        request = json.loads(text)
        model = model_from_transform_request(request)
        job_id = request["TransformJobName"]
    except (ValueError, KeyError, TypeError, ScheduleInputError):
        return
    record = JobRecord(job_id=job_id, model_group=model.group, model_version=model.version,
                       input=str(request.get("TransformInput", {}).get("DataSource", {})
                                 .get("S3DataSource", {}).get("S3Uri", "?")),
                       output=str(request.get("TransformOutput", {}).get("S3OutputPath", "?")),
                       strategy=str(request.get("BatchStrategy", "MultiRecord")),
                       max_payload_mb=int(request.get("MaxPayloadInMB", 6)),
                       join_source=str((request.get("DataProcessing") or {}).get("JoinSource", "None")),
                       status=JobStatus.FAILED.value, failure_reason=f"could not start: {exc}", schedule=meta)
    record.ended, record.duration_seconds = now_iso(), 0.0
    jobs.save(record)


def serve(home: Path, *, poll_seconds: float = 10.0, once: bool = False,
          clock: Callable[[], datetime] = lambda: datetime.now(UTC), **run_options) -> int:
    """Check the schedules every `poll_seconds` and run what is due (only once with `once`); the
    number of jobs started. Stops on KeyboardInterrupt (Ctrl-C, or SIGTERM mapped to it by the CLI)."""
    started = 0
    while True:
        started += len(run_due(home, now=clock(), **run_options))
        if once:
            return started
        time.sleep(poll_seconds)
