"""Records of local batch jobs: one JSON file per job under GREENLIGHT_HOME/batch/jobs.

A record is replaced atomically at every transition. Statuses are SageMaker's TransformJobStatus
values. A record left InProgress by a process that no longer exists reads as Failed with that
reason, so no job shows as running forever.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path

from greenlight.errors import NotFoundError
from greenlight.processes import pid_alive

__all__ = ["MAX_LISTED_BAD_ROWS", "BadRow", "JobRecord", "JobStatus", "JobStore", "new_job_id", "now_iso"]

MAX_LISTED_BAD_ROWS = 1000  # a record lists this many bad rows; `bad_rows` counts them all


class JobStatus(str, Enum):
    """SageMaker's TransformJobStatus (Stopping is never recorded locally)."""

    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"

    def __str__(self) -> str:
        return self.value


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_job_id(prefix: str = "batch") -> str:
    """'<prefix>-YYYYMMDDtHHMMSSz-<6 hex>': unique, sortable, and a valid TransformJobName."""
    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%dt%H%M%Sz')}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class BadRow:
    """A record the model refused: input file (relative to the input), 1-based line, the model's reason."""

    file: str
    line: int
    reason: str


@dataclass
class JobRecord:
    job_id: str
    model_group: str
    model_version: int
    input: str
    output: str
    strategy: str
    max_payload_mb: int
    join_source: str
    max_bad_rows: int = 0
    status: str = JobStatus.IN_PROGRESS.value
    started: str = field(default_factory=now_iso)
    ended: str | None = None
    duration_seconds: float | None = None
    files: int = 0
    bytes: int = 0
    rows: int = 0
    bad_rows: int = 0
    bad_row_lines: list[dict] = field(default_factory=list)
    failure_reason: str | None = None
    workers: int = 0
    pid: int = field(default_factory=os.getpid)
    staging_dir: str | None = None
    schedule: dict | None = None  # {"name", "scheduled_time", "execution_id"} for a scheduled run

    @property
    def model_label(self) -> str:
        return f"{self.model_group}/{self.model_version}"

    def add_bad_row(self, bad: BadRow) -> None:
        self.bad_rows += 1
        if len(self.bad_row_lines) < MAX_LISTED_BAD_ROWS:
            self.bad_row_lines.append(asdict(bad))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> JobRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class JobStore:
    """Job records under `root` (GREENLIGHT_HOME/batch/jobs)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path_for(self, job_id: str) -> Path:
        return self.root / f"{job_id}.json"

    def save(self, record: JobRecord) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".job-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record.to_dict(), fh, indent=2)
        os.replace(tmp, self.path_for(record.job_id))

    def load(self, job_id: str) -> JobRecord:
        """Raises: NotFoundError."""
        path = self.path_for(job_id)
        try:
            record = JobRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise NotFoundError(f"no batch job {job_id!r} (greenlight batch jobs lists them)") from None
        if record.status == JobStatus.IN_PROGRESS.value and not pid_alive(record.pid):
            record.status = JobStatus.FAILED.value
            record.failure_reason = f"the process running it (pid {record.pid}) ended without finishing it"
        return record

    def list(self) -> list[JobRecord]:
        """Every job, newest first."""
        if not self.root.is_dir():
            return []
        records = []
        for path in self.root.glob("*.json"):
            try:
                records.append(self.load(path.stem))
            except (ValueError, TypeError, OSError):
                continue  # a file that is not a record
        return sorted(records, key=lambda r: (r.started, r.job_id), reverse=True)
