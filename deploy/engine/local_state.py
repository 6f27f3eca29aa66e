"""Local state of the deployment engine under GREENLIGHT_HOME/deployments/<group>/.

    lock          the reconcile lock: fcntl.flock, released by the kernel when its holder dies
    status.json   the last reconcile report and the last failure (what `greenlight status` shows)
    <target>.json each local target's deployed state (written by the targets themselves)

JSON files are replaced atomically (temp file + rename), so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from greenlight.errors import ConflictError, DataError

__all__ = ["LocalLock", "LocalStatusStore", "deployment_dir", "read_json", "write_json"]

log = logging.getLogger(__name__)


def deployment_dir(home: Path, group: str) -> Path:
    return Path(home) / "deployments" / group


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace path atomically with data as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object at path, or None when there is no file. Raises: DataError if it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None


class LocalLock:
    """One reconcile per group on this machine: an exclusive flock on deployments/<group>/lock.

    A waiter polls until `timeout` and then raises ConflictError naming the holder; a holder that
    dies (even by SIGKILL) releases the lock with its file descriptor, so no lock is ever stale.
    """

    def __init__(self, home: Path, group: str, timeout: float = 600.0, poll: float = 0.05):
        self.path = deployment_dir(home, group) / "lock"
        self.group = group
        self.timeout = timeout
        self.poll = poll

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + self.timeout
            waited = False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if not waited:
                        log.info("waiting for another reconcile of %s (%s)", self.group, self._holder())
                        waited = True
                    if time.monotonic() >= deadline:
                        raise ConflictError(f"another reconcile of {self.group} has held {self.path} for over "
                                            f"{self.timeout:g} s ({self._holder()}); retry later") from None
                    time.sleep(self.poll)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
                      .encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "holder unknown"
        except OSError:
            return "holder unknown"


class LocalStatusStore:
    """status.json of a group: the last reconcile report."""

    def __init__(self, home: Path, group: str):
        self.path = deployment_dir(home, group) / "status.json"

    def save(self, report: dict[str, Any]) -> None:
        write_json(self.path, report)

    def load(self) -> dict[str, Any] | None:
        return read_json(self.path)
