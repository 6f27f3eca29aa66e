"""The local Batch Transform job: `run_job(spec, store)` runs one job with SageMaker's semantics here.

Streaming: the parent reads each input file once, cutting it into units of whole lines
(`splitting.read_units`), and keeps at most two units per worker in flight; results come back in
order and are appended to the file's staged output, so memory depends on MaxPayloadInMB and the
worker count, not on the input's size. Workers are processes (`pool.WorkerPool`), each with the model
loaded once, running the model's own input_fn/predict_fn/output_fn (`transform.transform_unit`).

Atomic: outputs are staged and moved to `<output>/<relative path>.out` only when the whole job has
succeeded (`staging`); a failed or interrupted job (Ctrl-C, SIGTERM: KeyboardInterrupt here) removes
its staging folder, and one killed outright leaves a locked folder that the next job cleans.

Bad rows stop the job with the file, line and the model's reason, unless there are at most
`max_bad_rows` of them (a Greenlight extra: SageMaker fails the job); tolerated rows are skipped, each
leaving an empty prediction in its place (output line k answers input line k), and the job record
lists them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from deploy.batch.config import MB, BatchStrategy
from deploy.batch.jobs import BadRow, JobRecord, JobStatus, JobStore, new_job_id, now_iso
from deploy.batch.pool import WorkerPool, available_cpus
from deploy.batch.splitting import SINGLE_RECORD_UNIT_BYTES, InputFile, LineTooLong, list_input_files, read_units
from deploy.batch.staging import Staging, clean_stale
from greenlight.errors import DataError, ExecutionFailed, GreenlightError

__all__ = ["BatchJobFailed", "JobObserver", "JobSpec", "run_job"]

logger = logging.getLogger(__name__)


class BatchJobFailed(ExecutionFailed):
    """A local batch job ended Failed; `record` holds its job record."""

    def __init__(self, message: str, record: JobRecord):
        super().__init__(message)
        self.record = record


@dataclass(frozen=True)
class JobSpec:
    """One job: where from and to, which model version (and its unpacked directory), the semantics."""

    input: Path
    output: Path
    model_group: str
    model_version: int
    model_dir: Path
    strategy: BatchStrategy = BatchStrategy.MULTI_RECORD
    max_payload_mb: int = 6
    join_input: bool = False
    max_bad_rows: int = 0
    workers: int | None = None
    job_id: str | None = None
    input_prefix: str | None = None  # S3 prefix semantics inside `input`
    input_label: str | None = None  # how the record names the input (an s3:// URI); default the path
    output_label: str | None = None
    schedule: dict | None = None


class JobObserver:
    """What a job reports as it goes (the CLI draws progress from it); every method is optional."""

    def started(self, record: JobRecord, files: list[InputFile]) -> None: ...

    def progress(self, done_bytes: int, rows: int, bad_rows: int) -> None: ...

    def bad_row(self, bad: BadRow) -> None: ...

    def file_done(self, relative: str, rows: int, bad_rows: int) -> None: ...

    def finished(self, record: JobRecord) -> None: ...


def run_job(spec: JobSpec, store: JobStore, observer: JobObserver | None = None) -> JobRecord:
    """Run the job to the end; its record (Completed), saved under `store`.

    Raises:
        BatchJobFailed: the job failed (bad rows over the limit, a line over MaxPayloadInMB, no
            input, the model failed to load or its code raised); the message names the cause.
        KeyboardInterrupt: interrupted; the record says Stopped and no output was written.
    """
    observer = observer or JobObserver()
    record = JobRecord(
        job_id=spec.job_id or new_job_id(), model_group=spec.model_group, model_version=spec.model_version,
        input=spec.input_label or str(spec.input), output=spec.output_label or str(spec.output),
        strategy=spec.strategy.value, max_payload_mb=spec.max_payload_mb,
        join_source="Input" if spec.join_input else "None", max_bad_rows=spec.max_bad_rows, schedule=spec.schedule)
    store.save(record)
    started = time.monotonic()
    staging: Staging | None = None
    pool: WorkerPool | None = None
    done = False
    try:
        _clean_stale(store, spec.output, record.job_id)
        files = list_input_files(spec.input, spec.input_prefix)
        record.files, record.bytes = len(files), sum(f.size for f in files)
        staging = Staging(spec.output, record.job_id)
        record.staging_dir = str(staging.path)
        multi = spec.strategy is BatchStrategy.MULTI_RECORD
        unit_bytes = spec.max_payload_mb * MB if multi else SINGLE_RECORD_UNIT_BYTES
        record.workers = min(spec.workers or available_cpus(), max(1, -(-record.bytes // unit_bytes)))
        store.save(record)
        observer.started(record, files)
        logger.info("batch job %s: %s v%d on %d files (%d bytes), %d workers", record.job_id, spec.model_group,
                    spec.model_version, len(files), record.bytes, record.workers)
        pool = WorkerPool(record.workers, _worker_settings(spec), _worker_env(spec, record.workers))
        pool.wait_ready()
        _transform(spec, files, unit_bytes, pool, staging, record, observer)
        pool.close()
        pool = None
        staging.commit()
        staging = None
        record.status = JobStatus.COMPLETED.value
        done = True
        return record
    except KeyboardInterrupt:
        record.status, record.failure_reason = JobStatus.STOPPED.value, "interrupted (Ctrl-C or SIGTERM)"
        raise
    except GreenlightError as exc:
        record.status, record.failure_reason = JobStatus.FAILED.value, str(exc)
        raise BatchJobFailed(f"batch job {record.job_id} failed: {exc}", record) from exc
    except Exception as exc:
        record.status = JobStatus.FAILED.value
        record.failure_reason = f"internal error: {type(exc).__name__}: {exc}"
        raise
    finally:
        if pool is not None:
            pool.close(abort=not done)
        if staging is not None:
            staging.discard()
        record.ended = now_iso()
        record.duration_seconds = round(time.monotonic() - started, 3)
        store.save(record)
        observer.finished(record)


def _worker_settings(spec: JobSpec) -> dict:
    return {"model_dir": str(spec.model_dir), "label": f"{spec.model_group}/{spec.model_version}",
            "single_record": spec.strategy is BatchStrategy.SINGLE_RECORD, "join_input": spec.join_input,
            "budget": spec.max_bad_rows}


def _worker_env(spec: JobSpec, workers: int) -> dict[str, str]:
    """What the AWS job's Environment sets (the payload limit), plus one predictor thread per spare CPU."""
    env = {}
    if spec.max_payload_mb:
        env["GREENLIGHT_MAX_PAYLOAD_BYTES"] = str(spec.max_payload_mb * MB)
    if not os.environ.get("GREENLIGHT_PREDICT_THREADS"):
        env["GREENLIGHT_PREDICT_THREADS"] = str(max(1, available_cpus() // workers))
    # as SageMaker sets it in a transform job: capture records (src/capture.py) name the batch target and version
    env.update(SAGEMAKER_BATCH="true", GREENLIGHT_MODEL_VERSION=f"{spec.model_group}/{spec.model_version}")
    return env


def _transform(spec: JobSpec, files: list[InputFile], unit_bytes: int, pool: WorkerPool, staging: Staging,
               record: JobRecord, observer: JobObserver) -> None:
    """Submit every unit of every file, write results in order (see the module docstring)."""
    line_limit = spec.max_payload_mb * MB or None
    writer = _OrderedWriter(spec, staging, record, observer)
    in_flight = 2 * record.workers
    for file in files:
        writer.pending.append(("open", file))
        with open(file.path, "rb") as fh:
            try:
                for first_line, data in read_units(fh, unit_bytes, line_limit):
                    while writer.units >= in_flight:
                        writer.drain_one()
                    writer.pending.append(("unit", file, first_line, len(data), pool.submit(data)))
                    writer.units += 1
            except LineTooLong as exc:
                writer.drain_all()  # an earlier bad row, if any, is reported first
                raise DataError(f"{file.relative}, {exc}") from None
        writer.pending.append(("close", file))
    writer.drain_all()


class _OrderedWriter:
    """Takes results in submission order: appends outputs to the staged files, counts, checks bad rows."""

    def __init__(self, spec: JobSpec, staging: Staging, record: JobRecord, observer: JobObserver):
        self.spec, self.staging, self.record, self.observer = spec, staging, record, observer
        self.pending: deque = deque()
        self.units = 0
        self.done_bytes = 0
        self._out = None
        self._file_rows = self._file_bad = 0

    def drain_all(self) -> None:
        while self.pending:
            self.drain_one()

    def drain_one(self) -> None:
        entry = self.pending.popleft()
        kind, file = entry[0], entry[1]
        if kind == "open":
            self._out = open(self.staging.file_for(file.relative), "wb")
            self._file_rows = self._file_bad = 0
            return
        if kind == "close":
            self._out.close()
            self.observer.file_done(file.relative, self._file_rows, self._file_bad)
            return
        _, _, first_line, size, future = entry
        self.units -= 1
        result = _result(future)
        self._out.write(result.output)
        rows = result.records - len(result.bad)
        self.record.rows += rows
        self._file_rows += rows
        for offset, reason in sorted(result.bad):
            bad = BadRow(file.relative, first_line + offset, reason)
            self.record.add_bad_row(bad)
            self._file_bad += 1
            if self.record.bad_rows > self.spec.max_bad_rows:
                over = (f" ({self.record.bad_rows} bad rows, more than --max-bad-rows {self.spec.max_bad_rows})"
                        if self.spec.max_bad_rows else "")
                raise BadRows(f"{bad.file}, line {bad.line}: {bad.reason}{over}")
            self.observer.bad_row(bad)
        self.done_bytes += size
        self.observer.progress(self.done_bytes, self.record.rows, self.record.bad_rows)


class BadRows(GreenlightError):
    """A record the model refused, beyond the tolerated number."""


def _result(future: concurrent.futures.Future):
    """future.result(), waking up twice a second so Ctrl-C and SIGTERM are handled promptly."""
    while True:
        try:
            return future.result(timeout=0.5)
        except concurrent.futures.TimeoutError:
            continue


def _clean_stale(store: JobStore, output: Path, current: str) -> None:
    """Clean dead jobs' staging folders (under this output, and wherever a dead job's record says)."""
    records = {r.job_id: r for r in store.list() if r.job_id != current}
    folders = {Path(output)}
    for r in records.values():
        if r.staging_dir and r.status == JobStatus.FAILED.value and Path(r.staging_dir).exists():
            folders.add(Path(r.staging_dir).parent)
    for stale in clean_stale(sorted(folders)):
        record = records.get(stale.job_id)
        if record is None:
            continue
        if stale.rolled_forward:
            record.status, record.failure_reason = JobStatus.COMPLETED.value, None
            record.ended = record.ended or now_iso()
        else:
            record.status = JobStatus.FAILED.value
            record.failure_reason = (f"its process ended without finishing; job {current} removed its partial "
                                     "outputs")
        store.save(record)
