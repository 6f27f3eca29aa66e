"""The local model registry: SQLite under GREENLIGHT_HOME, with a transactional outbox of events.

Every write runs in one `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before it
reads, so two processes can neither hand out the same version number nor overwrite each other's
status change; WAL mode lets readers carry on meanwhile, and the busy timeout makes a second
writer wait instead of failing. Each status change (creation included) inserts its EventBridge-shaped
event into `outbox` in the same transaction: the change and its event commit together or not at all.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from greenlight.errors import ConflictError, NotFoundError
from greenlight.registry.events import state_change_event
from greenlight.registry.model import (
    ApprovalStatus,
    ModelVersion,
    check_create_request,
    missing_group_error,
    missing_version_error,
    package_arn,
    parse_approval_status,
    version_from_description,
)

__all__ = ["LocalModelRegistry"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS model_package_groups (
    name        TEXT PRIMARY KEY,
    arn         TEXT NOT NULL UNIQUE,
    created     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_packages (
    group_name            TEXT    NOT NULL REFERENCES model_package_groups(name),
    version               INTEGER NOT NULL CHECK (version >= 1),
    arn                   TEXT    NOT NULL UNIQUE,
    status                TEXT    NOT NULL
                          CHECK (status IN ('PendingManualApproval', 'Approved', 'Rejected')),
    approval_description  TEXT,
    request               TEXT    NOT NULL,  -- the CreateModelPackage request as given (JSON)
    created               TEXT    NOT NULL,  -- ISO 8601 UTC, microseconds
    modified              TEXT    NOT NULL,
    PRIMARY KEY (group_name, version)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    package_arn  TEXT NOT NULL,
    event        TEXT NOT NULL,             -- the EventBridge event (JSON)
    created      TEXT NOT NULL,
    delivered    TEXT                       -- NULL until mark_delivered
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (seq) WHERE delivered IS NULL;
"""


def _now() -> datetime:
    return datetime.now(UTC)


class LocalModelRegistry:
    """ModelRegistry over `home/registry.sqlite3`; also holds the outbox of state-change events."""

    def __init__(self, home: Path, region: str = "local", account: str = "000000000000"):
        self.path = Path(home) / "registry.sqlite3"
        self.region = region
        self.account = account
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        with self._write() as conn:  # statement by statement: executescript() would COMMIT first
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)

    # -- connections -------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection per operation: safe across threads and processes."""
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise ConflictError(f"cannot open the model registry at {self.path}: {exc}") from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise ConflictError(f"the model registry at {self.path} stayed busy; retry ({exc})") from exc
            raise
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding SQLite's write lock from its first read to COMMIT."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- ModelRegistry -----------------------------------------------------------------------

    def create_model_package(self, request: dict[str, Any]) -> ModelVersion:
        checked = check_create_request(request)
        group = checked["ModelPackageGroupName"]
        with self._write() as conn:
            now = _now()
            if conn.execute("SELECT 1 FROM model_package_groups WHERE name = ?", (group,)).fetchone() is None:
                group_arn = f"arn:aws:sagemaker:{self.region}:{self.account}:model-package-group/{group.lower()}"
                conn.execute("INSERT INTO model_package_groups (name, arn, created) VALUES (?, ?, ?)",
                             (group, group_arn, now.isoformat()))
                log.info("created model package group %s", group)
            (version,) = conn.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM model_packages WHERE group_name = ?", (group,)
            ).fetchone()
            arn = package_arn(self.region, self.account, group, version)
            conn.execute(
                "INSERT INTO model_packages (group_name, version, arn, status, approval_description,"
                " request, created, modified) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
                (group, version, arn, checked["ModelApprovalStatus"], json.dumps(checked, sort_keys=True),
                 now.isoformat(), now.isoformat()),
            )
            row = self._row(conn, group, version)
            self._emit(conn, row, now)
        log.info("registered version %s of %s as %s", version, group, checked["ModelApprovalStatus"])
        return version_from_description(self._describe(row))

    def list_versions(self, group: str | None = None, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        with self._connect() as conn:
            if group is not None:
                self._require_group(conn, group)
            sql = "SELECT * FROM model_packages WHERE (? IS NULL OR group_name = ?) AND (? IS NULL OR status = ?)"
            value = parse_approval_status(status).value if status is not None else None
            rows = conn.execute(sql + " ORDER BY created DESC, group_name, version DESC",
                                (group, group, value, value)).fetchall()
        return [version_from_description(self._describe(r)) for r in rows]

    def get(self, group: str, version: int) -> ModelVersion:
        with self._connect() as conn:
            row = self._require(conn, group, version)
        return version_from_description(self._describe(row))

    def update_status(
        self, group: str, version: int, status: ApprovalStatus, description: str | None = None
    ) -> ModelVersion:
        status = parse_approval_status(status)
        with self._write() as conn:
            row = self._require(conn, group, version)
            if row["status"] == status.value:
                log.info("version %s of %s is already %s: nothing changed, no event written%s", version, group,
                         status.value, " (the new description was not applied)" if description is not None else "")
                return version_from_description(self._describe(row))
            now = _now()
            new_description = description if description is not None else row["approval_description"]
            conn.execute(
                "UPDATE model_packages SET status = ?, approval_description = ?, modified = ?"
                " WHERE group_name = ? AND version = ?",
                (status.value, new_description, now.isoformat(), group, version),
            )
            updated = self._row(conn, group, version)
            self._emit(conn, updated, now)
        log.info("version %s of %s: %s -> %s (%s)", version, group, row["status"], status.value,
                 new_description or "no description")
        return version_from_description(self._describe(updated))

    def list_groups(self) -> list[str]:
        with self._connect() as conn:
            return [r["name"] for r in conn.execute("SELECT name FROM model_package_groups ORDER BY name")]

    # -- outbox ------------------------------------------------------------------------------

    def pending_events(self) -> list[dict[str, Any]]:
        """Events not yet marked delivered, oldest first (the order their changes committed)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT event FROM outbox WHERE delivered IS NULL ORDER BY seq").fetchall()
        return [json.loads(r["event"]) for r in rows]

    def events(self) -> list[dict[str, Any]]:
        """Every event the outbox holds, delivered or not, oldest first (each with `delivered`: a time or None)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT event, delivered FROM outbox ORDER BY seq").fetchall()
        return [{**json.loads(r["event"]), "delivered": r["delivered"]} for r in rows]

    def mark_delivered(self, event_id: str) -> None:
        """Record that an event was handed on; marking it again changes nothing.

        Raises:
            NotFoundError: no event with that id.
        """
        with self._write() as conn:
            cur = conn.execute("UPDATE outbox SET delivered = COALESCE(delivered, ?) WHERE event_id = ?",
                               (_now().isoformat(), event_id))
            if cur.rowcount == 0:
                raise NotFoundError(f"no event {event_id!r} in the outbox of {self.path}")

    # -- helpers -----------------------------------------------------------------------------

    def _emit(self, conn: sqlite3.Connection, row: sqlite3.Row, now: datetime) -> None:
        """Insert the row's state-change event; runs inside the caller's write transaction."""
        event = state_change_event(self._describe(row), account=self.account, region=self.region,
                                   event_id=str(uuid.uuid4()), time=now)
        conn.execute("INSERT INTO outbox (event_id, package_arn, event, created) VALUES (?, ?, ?, ?)",
                     (event["id"], row["arn"], json.dumps(event), now.isoformat()))

    @staticmethod
    def _row(conn: sqlite3.Connection, group: str, version: int) -> sqlite3.Row | None:
        return conn.execute("SELECT * FROM model_packages WHERE group_name = ? AND version = ?",
                            (group, version)).fetchone()

    def _require_group(self, conn: sqlite3.Connection, group: str) -> None:
        if conn.execute("SELECT 1 FROM model_package_groups WHERE name = ?", (group,)).fetchone() is None:
            names = [r["name"] for r in conn.execute("SELECT name FROM model_package_groups")]
            raise missing_group_error(group, names)

    def _require(self, conn: sqlite3.Connection, group: str, version: int) -> sqlite3.Row:
        self._require_group(conn, group)
        row = self._row(conn, group, version)
        if row is None:
            versions = [r[0] for r in conn.execute(
                "SELECT version FROM model_packages WHERE group_name = ?", (group,))]
            raise missing_version_error(group, version, versions)
        return row

    @staticmethod
    def _describe(row: sqlite3.Row) -> dict[str, Any]:
        """The row as DescribeModelPackage would return it."""
        request = json.loads(row["request"])
        desc: dict[str, Any] = {
            "ModelPackageGroupName": row["group_name"],
            "ModelPackageVersion": row["version"],
            "ModelPackageArn": row["arn"],
            "ModelPackageName": row["group_name"],
            "ModelPackageDescription": request.get("ModelPackageDescription"),
            "CreationTime": datetime.fromisoformat(row["created"]),
            "InferenceSpecification": request["InferenceSpecification"],
            "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "CertifyForMarketplace": bool(request.get("CertifyForMarketplace", False)),
            "ModelApprovalStatus": row["status"],
            "ApprovalDescription": row["approval_description"],
            "MetadataProperties": request.get("MetadataProperties"),
            "ModelMetrics": request.get("ModelMetrics") or {},
            "DriftCheckBaselines": request.get("DriftCheckBaselines"),
            "CustomerMetadataProperties": request.get("CustomerMetadataProperties") or {},
            "LastModifiedTime": datetime.fromisoformat(row["modified"]),
        }
        return {k: v for k, v in desc.items() if v is not None}
