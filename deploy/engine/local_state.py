"""Local state of the deployment engine under GREENLIGHT_HOME/deployments/<group>/.

    lock                the reconcile lock: fcntl.flock, released by the kernel when its holder dies
    status.json         the last reconcile report and the last failure (what `greenlight status` shows)
    <target>.intent.json  the intent of a deployment in flight (deploy.engine.transaction), removed at its end
    <target>.json       each local target's deployed state (written by the targets themselves)

Every state file is written atomically and durably (`write_json`: a temp file in the same directory,
fsync, rename over the old one, fsync of the directory), so a reader (or a reboot) never sees half a
file. Reads are defensive: `read_json` raises CorruptState (a DataError) for a file that is not a JSON
object, and the stores here report it in one line and carry on from observation.
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

from deploy.engine.faults import with_path
from greenlight.errors import ConflictError, DataError

__all__ = ["CorruptState", "LocalLock", "LocalStatusStore", "deployment_dir", "read_json", "remove_json",
           "write_json"]

log = logging.getLogger(__name__)


class CorruptState(DataError):
    """A state file that is not what it should be (not JSON, not an object, fields of the wrong type)."""


def deployment_dir(home: Path, group: str) -> Path:
    return Path(home) / "deployments" / group


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace path atomically and durably with data as JSON (owner-only permissions).

    Raises:
        OSError: naming `path` (a full disk, a read-only file system ...).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise with_path(exc, path) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def remove_json(path: Path) -> None:
    """Remove a state file (durably); nothing if there is none."""
    path = Path(path)
    try:
        path.unlink()
    except FileNotFoundError:
        return
    _fsync_dir(path.parent)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object at path, or None when there is no file.

    Raises:
        CorruptState: the file is not a JSON object (half-written by an older Greenlight, hand-edited ...).
        OSError: it cannot be read (permissions ...).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CorruptState(f"{path} is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CorruptState(f"{path} holds a JSON {type(data).__name__}, not an object")
    return data


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
    """status.json of a group (the last reconcile report) and its targets' intent records."""

    def __init__(self, home: Path, group: str):
        self.folder = deployment_dir(home, group)
        self.path = self.folder / "status.json"

    def save(self, report: dict[str, Any]) -> None:
        write_json(self.path, report)

    def load(self) -> dict[str, Any] | None:
        """The saved report; None when there is none, or (said in one line) when it is unreadable."""
        try:
            return read_json(self.path)
        except CorruptState as exc:
            log.warning("%s; the next reconcile rewrites it", exc)
            return None

    def _intent_path(self, target: str) -> Path:
        return self.folder / f"{target}.intent.json"

    def load_intent(self, target: str) -> dict[str, Any] | None:
        try:
            return read_json(self._intent_path(target))
        except CorruptState as exc:
            log.warning("%s; ignored: what the target runs decides", exc)
            return None

    def save_intent(self, target: str, intent: dict[str, Any] | None) -> None:
        if intent is None:
            remove_json(self._intent_path(target))
        else:
            write_json(self._intent_path(target), intent)
