"""Execution records of local runs: one JSON file per execution under GREENLIGHT_HOME/executions.

A record is written atomically at every step transition. A record left `Executing` by a process
that no longer exists (killed, machine restarted) is reported as Failed with that reason, so no
execution shows as running forever.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, UTC
from enum import Enum
from pathlib import Path

from greenlight.errors import NotFoundError
from greenlight.processes import pid_alive

__all__ = ["ExecutionRecord", "ExecutionStatus", "ExecutionStore", "StepRecord", "now_iso"]


class ExecutionStatus(str, Enum):
    """An execution's or a step's status, as SageMaker names them."""

    EXECUTING = "Executing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = ExecutionStatus.EXECUTING.value
    start: str = field(default_factory=now_iso)
    end: str | None = None
    failure_reason: str | None = None
    log_path: str | None = None
    outcome: str | None = None  # Condition: "True"/"False"; RegisterModel: the model package ARN
    process_seconds: float | None = None  # wall time of the job's own process (Processing, Training)


@dataclass
class ExecutionRecord:
    execution_id: str
    pipeline_name: str
    parameters: dict
    status: str = ExecutionStatus.EXECUTING.value
    start: str = field(default_factory=now_iso)
    end: str | None = None
    failure_reason: str | None = None
    pid: int = field(default_factory=os.getpid)
    steps: list[StepRecord] = field(default_factory=list)
    registered: dict | None = None  # {"group", "version", "arn", "status"}

    @classmethod
    def from_dict(cls, data: dict) -> "ExecutionRecord":
        steps = [StepRecord(**s) for s in data.pop("steps", [])]
        return cls(**data, steps=steps)


class ExecutionStore:
    """Reads and writes ExecutionRecords under `root`."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @staticmethod
    def new_id() -> str:
        return secrets.token_hex(6)  # SageMaker execution ids are 12 lowercase alphanumerics

    def dir_for(self, execution_id: str) -> Path:
        return self.root / execution_id

    def save(self, record: ExecutionRecord) -> None:
        directory = self.dir_for(record.execution_id)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / ".execution.json.tmp"
        tmp.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, directory / "execution.json")

    def load(self, execution_id: str) -> ExecutionRecord:
        path = self.dir_for(execution_id) / "execution.json"
        if not path.is_file():
            known = [r.execution_id for r in self.list()[:5]]
            raise NotFoundError(f"no local execution {execution_id!r}" +
                                (f"; recent: {', '.join(known)}" if known else "; none yet (greenlight run)"))
        record = ExecutionRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
        if record.status == ExecutionStatus.EXECUTING.value and not pid_alive(record.pid):
            record.status = ExecutionStatus.FAILED.value
            record.failure_reason = f"the process running it (pid {record.pid}) ended without finishing it"
            for step in record.steps:
                if step.status == ExecutionStatus.EXECUTING.value:
                    step.status, step.failure_reason = ExecutionStatus.FAILED.value, record.failure_reason
        return record

    def list(self) -> list[ExecutionRecord]:
        """Every execution, newest first."""
        if not self.root.is_dir():
            return []
        ids = [p.parent.name for p in self.root.glob("*/execution.json")]
        records = [self.load(i) for i in ids]
        return sorted(records, key=lambda r: r.start, reverse=True)
