"""The local deployment history: table `deployment_history` in GREENLIGHT_HOME/deployments/history.sqlite3.

One row per target change (deploy.engine.history.HistoryEvent, one column per field), every group in one
file. Append-only in the schema itself: triggers abort any UPDATE or DELETE, so no code path of ours (or
a hand-run statement) rewrites the past. WAL and a busy timeout let reconciles of several groups append
while `greenlight history` reads; each append is one INSERT, committed before the next target changes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

from deploy.engine.history import HistoryEvent, HistoryQuery

__all__ = ["LocalHistory", "history_path"]

BUSY_TIMEOUT_S = 30.0
_COLUMNS = tuple(f.name for f in fields(HistoryEvent))
_TYPES = {"from_version": "INTEGER", "to_version": "INTEGER", "ok": "INTEGER NOT NULL",
          "duration_seconds": "REAL", "at": "TEXT NOT NULL", "group": "TEXT NOT NULL", "stage": "TEXT NOT NULL",
          "target": "TEXT NOT NULL", "trigger": "TEXT NOT NULL"}
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS deployment_history (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    + ", ".join(f'"{c}" {_TYPES.get(c, "TEXT")}' for c in _COLUMNS) + ")",
    'CREATE INDEX IF NOT EXISTS deployment_history_by_time ON deployment_history ("group", at)',
    "CREATE TRIGGER IF NOT EXISTS deployment_history_no_update BEFORE UPDATE ON deployment_history "
    "BEGIN SELECT RAISE(ABORT, 'deployment_history is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS deployment_history_no_delete BEFORE DELETE ON deployment_history "
    "BEGIN SELECT RAISE(ABORT, 'deployment_history is append-only'); END",
]


def history_path(home: Path) -> Path:
    return Path(home) / "deployments" / "history.sqlite3"


class LocalHistory:
    """One group's view of the local history file (deploy.engine.history.HistoryStore)."""

    def __init__(self, home: Path, group: str):
        self.path = history_path(home)
        self.group = group

    @contextlib.contextmanager
    def _connect(self, write: bool) -> Iterator[sqlite3.Connection]:
        """Raises: sqlite3.Error, OSError (the stores' callers name them in one line)."""
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            yield None
            return
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            if write:
                conn.execute("PRAGMA journal_mode=WAL")
                for statement in _SCHEMA:
                    conn.execute(statement)
            yield conn
        finally:
            conn.close()

    def append(self, event: HistoryEvent) -> None:
        row = event.to_dict()
        with self._connect(write=True) as conn:
            conn.execute(f"INSERT INTO deployment_history ({', '.join(f'{chr(34)}{c}{chr(34)}' for c in _COLUMNS)}) "
                         f"VALUES ({', '.join('?' for _ in _COLUMNS)})",
                         [int(row[c]) if c == "ok" else row[c] for c in _COLUMNS])

    def read(self, query: HistoryQuery = HistoryQuery()) -> list[HistoryEvent]:
        """The group's records newest first (None of the file yet: none)."""
        where, args = ['"group" = ?'], [self.group]
        for column, op, value in (("stage", "=", query.stage), ("target", "=", query.target),
                                  ("at", ">=", query.since), ("at", "<=", query.until)):
            if value is not None:
                where.append(f'"{column}" {op} ?')
                args.append(value)
        with self._connect(write=False) as conn:
            if conn is None:
                return []
            rows = conn.execute(f"SELECT * FROM deployment_history WHERE {' AND '.join(where)} "
                                "ORDER BY at DESC, seq DESC", args).fetchall()
        return [HistoryEvent.from_dict({**dict(row), "ok": bool(row["ok"])}) for row in rows]
