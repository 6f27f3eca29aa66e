"""The local model registry: SQLite under GREENLIGHT_HOME, with a transactional outbox of events.

Every write runs in one `BEGIN IMMEDIATE` transaction, which takes SQLite's write lock before it
reads, so two processes can neither hand out the same version number nor overwrite each other's
status change; WAL mode lets readers carry on meanwhile, and the busy timeout makes a second
writer wait instead of failing. Each status change (creation included) inserts its EventBridge-shaped
event into `outbox` in the same transaction: the change and its event commit together or not at all.

The disk: SQLite's errors become one-line StorageError / ConflictError (greenlight.os_errors: "no space
left on /mnt while writing the model registry ..."). Reads work on a full disk or a read-only home: a
WAL database normally needs a 32 KiB shared-memory file beside it, and where that cannot be made a read
holds the database exclusively (the index then lives in this process) or, with no log pending, opens it
as an immutable file (`_query`).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from greenlight.errors import NotFoundError, StorageError
from greenlight.os_errors import sqlite_error, storage_errors
from greenlight.registry.events import state_change_event
from greenlight.registry.model import (
    STAGE_KEY_PREFIX,
    ApprovalStatus,
    ModelLifeCycle,
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
# SQLite's error names when it cannot create or grow the -shm file of the write-ahead log.
_NO_SHARED_MEMORY = ("SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_READONLY")
T = TypeVar("T")

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
    lifecycle             TEXT,              -- schema version 1 (_MIGRATIONS)
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

# Schema migrations, by PRAGMA user_version: a store written before a version keeps working after it.
# 1 (issue 21): model_packages.lifecycle, JSON {"current": ModelLifeCycle shape, "stages": {stage: status}}.
_MIGRATIONS = (
    "ALTER TABLE model_packages ADD COLUMN lifecycle TEXT",
)


def _now() -> datetime:
    return datetime.now(UTC)


class LocalModelRegistry:
    """ModelRegistry over `home/registry.sqlite3`; also holds the outbox of state-change events."""

    def __init__(self, home: Path, region: str = "local", account: str = "000000000000"):
        self.path = Path(home) / "registry.sqlite3"
        self.region = region
        self.account = account
        self._ready = False
        self._setup_error: StorageError | None = None
        with storage_errors("creating", self.path.parent):
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._set_up()
        except StorageError as exc:  # reads may still work (_query); the first write sets up again or says why
            self._setup_error = exc
            log.info("the model registry cannot be written now: %s", exc)

    # -- connections -------------------------------------------------------------------------

    def _set_up(self, action: str = "setting up the model registry") -> None:
        """WAL mode and the schema, once per instance. Raises: StorageError, ConflictError (naming `action`)."""
        if self._ready:
            return
        try:
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")
                with self._transaction(conn):  # statement by statement: executescript() would COMMIT first
                    for statement in filter(str.strip, _SCHEMA.split(";")):
                        conn.execute(statement)
                    self._migrate(conn)
        except sqlite3.Error as exc:
            raise sqlite_error(exc, self.path, action) from exc
        self._ready, self._setup_error = True, None

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        """Apply the migrations this store has not had yet (inside the set-up transaction)."""
        (done,) = conn.execute("PRAGMA user_version").fetchone()
        columns = {r["name"] for r in conn.execute("PRAGMA table_info(model_packages)")}
        for number, statement in enumerate(_MIGRATIONS, start=1):
            if number <= done:
                continue
            if not (statement.startswith("ALTER TABLE model_packages ADD COLUMN ")
                    and statement.split()[5] in columns):  # a fresh store made by this code has it already
                conn.execute(statement)
            log.info("model registry schema migrated to version %s", number)
        if done < len(_MIGRATIONS):
            conn.execute(f"PRAGMA user_version = {len(_MIGRATIONS)}")

    @contextmanager
    def _connect(self, uri_query: str = "") -> Iterator[sqlite3.Connection]:
        """A fresh connection per operation: safe across threads and processes. Raises: sqlite3.Error."""
        target = f"file:{quote(str(self.path))}?{uri_query}" if uri_query else str(self.path)
        conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=bool(uri_query))
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        finally:
            conn.close()

    @staticmethod
    @contextmanager
    def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT: SQLite's write lock from the first read to COMMIT; ROLLBACK on any failure."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (a full disk does that)
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error as exc:
                    log.info("rollback after a failed write of %s: %s", conn, exc)
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. Raises: StorageError (full, read-only ...), ConflictError (busy), naming the path."""
        self._set_up("writing the model registry")
        try:
            with self._connect() as conn, self._transaction(conn):
                yield conn
        except sqlite3.Error as exc:
            raise sqlite_error(exc, self.path, "writing the model registry") from exc

    def _query(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """read(conn) on a fresh connection. Where SQLite cannot set up the shared memory of its write-ahead
        log (a full disk, a read-only filesystem or folder), read again without it: first holding the
        database exclusively (the log's index then lives in this process), then, when no log is pending,
        as an immutable file. A read never needs to write (issue 18). Raises: StorageError, ConflictError."""
        try:
            with self._connect() as conn:
                return read(conn)
        except sqlite3.Error as exc:
            first = exc
        if (getattr(first, "sqlite_errorname", "") or "").startswith(_NO_SHARED_MEMORY):
            for how, uri_query in (("exclusively", "mode=rw"), ("as an immutable file", "immutable=1")):
                if uri_query == "immutable=1" and self._log_pending():
                    break  # an immutable read would miss what the log holds
                try:
                    with self._connect(uri_query) as conn:
                        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
                        result = read(conn)
                except sqlite3.Error as exc:
                    log.debug("reading %s %s failed too: %s", self.path, how, exc)
                    continue
                log.info("read the model registry %s (%s)", how, first)
                return result
        if not self._ready and self._setup_error is not None and "no such table" in str(first):
            raise self._setup_error from first
        raise sqlite_error(first, self.path, "reading the model registry") from first

    def _log_pending(self) -> bool:
        try:
            return self.path.with_name(self.path.name + "-wal").stat().st_size > 0
        except FileNotFoundError:
            return False
        except OSError:
            return True

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
            row = self._require(conn, group, version)
            self._emit(conn, row, now)
        log.info("registered version %s of %s as %s", version, group, checked["ModelApprovalStatus"])
        return version_from_description(self._describe(row))

    def list_versions(self, group: str | None = None, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        value = parse_approval_status(status).value if status is not None else None

        def read(conn: sqlite3.Connection) -> list[sqlite3.Row]:
            if group is not None:
                self._require_group(conn, group)
            sql = "SELECT * FROM model_packages WHERE (? IS NULL OR group_name = ?) AND (? IS NULL OR status = ?)"
            return conn.execute(sql + " ORDER BY created DESC, group_name, version DESC",
                                (group, group, value, value)).fetchall()

        return [version_from_description(self._describe(r)) for r in self._query(read)]

    def get(self, group: str, version: int) -> ModelVersion:
        row = self._query(lambda conn: self._require(conn, group, version))
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
            updated = self._require(conn, group, version)
            self._emit(conn, updated, now)
        log.info("version %s of %s: %s -> %s (%s)", version, group, row["status"], status.value,
                 new_description or "no description")
        return version_from_description(self._describe(updated))

    def update_lifecycle(self, group: str, version: int, lifecycle: ModelLifeCycle) -> ModelVersion:
        """Set ModelLifeCycle (and the stage's own record) with its event, in one transaction; the same
        stage and status again changes nothing."""
        with self._write() as conn:
            row = self._require(conn, group, version)
            stored = json.loads(row["lifecycle"] or "{}")
            stages = dict(stored.get("stages") or {})
            if (stored.get("current") == lifecycle.to_request()
                    and stages.get(lifecycle.stage) == lifecycle.stage_status):
                log.info("version %s of %s is already %s in %s: nothing changed", version, group,
                         lifecycle.stage_status, lifecycle.stage)
                return version_from_description(self._describe(row))
            stages[lifecycle.stage] = lifecycle.stage_status
            now = _now()
            conn.execute("UPDATE model_packages SET lifecycle = ?, modified = ? WHERE group_name = ? AND version = ?",
                         (json.dumps({"current": lifecycle.to_request(), "stages": stages}, sort_keys=True),
                          now.isoformat(), group, version))
            updated = self._require(conn, group, version)
            self._emit(conn, updated, now)
        log.info("version %s of %s: stage %s is %s (%s)", version, group, lifecycle.stage, lifecycle.stage_status,
                 lifecycle.stage_description or "no description")
        return version_from_description(self._describe(updated))

    def list_groups(self) -> list[str]:
        return self._query(lambda conn: [r["name"] for r in conn.execute(
            "SELECT name FROM model_package_groups ORDER BY name")])

    # -- outbox ------------------------------------------------------------------------------

    def pending_events(self) -> list[dict[str, Any]]:
        """Events not yet marked delivered, oldest first (the order their changes committed)."""
        rows = self._query(lambda conn: conn.execute(
            "SELECT event FROM outbox WHERE delivered IS NULL ORDER BY seq").fetchall())
        return [json.loads(r["event"]) for r in rows]

    def events(self) -> list[dict[str, Any]]:
        """Every event the outbox holds, delivered or not, oldest first (each with `delivered`: a time or None)."""
        rows = self._query(lambda conn: conn.execute("SELECT event, delivered FROM outbox ORDER BY seq").fetchall())
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
        stored = json.loads(row["lifecycle"] or "{}") if "lifecycle" in row.keys() else {}
        metadata = {**(request.get("CustomerMetadataProperties") or {}),
                    **{STAGE_KEY_PREFIX + k: v for k, v in (stored.get("stages") or {}).items()}}
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
            "CustomerMetadataProperties": metadata,
            "LastModifiedTime": datetime.fromisoformat(row["modified"]),
            "ModelLifeCycle": stored.get("current"),
        }
        return {k: v for k, v in desc.items() if v is not None}
