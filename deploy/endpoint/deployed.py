"""The local endpoint's deployed state: what `greenlight endpoint serve` serves, and who serves it.

    deployments/<group>/endpoint.json          the deployed version (written by LocalEndpointTarget, only
                                               after the version passed its probe)
    deployments/<group>/endpoint.serving.json  the running `endpoint serve` process: its URL, pid, start
                                               time and token (owner-only; the same for `lambda serve`)

`DeployedSource` is the endpoint's model source: it names the deployed version (re-read when the
file changes), so a deployment reaches a running endpoint through its hot swap, and a stopped
deployment (nothing Approved, when_nothing_approved=stop) empties it (503).

A serving registration belongs to the process that wrote it: the pid and that process's start time
name it (a reused pid is not it), `register_serving` refuses a second live server of the same group
and target (ServingConflict, naming the running one) unless `replace`, and `unregister_serving`
removes only the caller's own record. The token lets the deployer use the server's side channel
(deploy.endpoint.server: staging and probing a version no live request can reach).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy.endpoint.slot import ModelTarget
from deploy.engine.local_state import CorruptState, deployment_dir, read_json, remove_json, write_json
from greenlight.errors import UsageError
from greenlight.processes import process_start_time, same_process

__all__ = ["DeployedSource", "EndpointState", "ServingConflict", "ServingRecord", "read_serving", "register_serving",
           "state_path", "unregister_serving", "version_label"]

log = logging.getLogger(__name__)


def state_path(home: Path, group: str) -> Path:
    return deployment_dir(home, group) / "endpoint.json"


def _serving_path(home: Path, group: str, target: str = "endpoint") -> Path:
    return deployment_dir(home, group) / f"{target}.serving.json"


def version_label(group: str, version: int) -> str:
    """What the endpoint reports in X-Greenlight-Model-Version for a deployed version."""
    return f"{group}/{version}"


@dataclass(frozen=True)
class EndpointState:
    """One deployment record: the version, where its model is unpacked, its artifact's digest, what ran before."""

    version: int | None
    model_dir: str | None = None
    package_arn: str | None = None
    deployed_at: str | None = None
    previous: dict[str, Any] | None = None  # the EndpointState fields of the version before
    digest: str | None = None  # sha256 of the model.tar.gz it was unpacked from

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointState:
        """Raises: CorruptState when a field has the wrong type."""
        version, model_dir = data.get("version"), data.get("model_dir")
        previous, digest = data.get("previous"), data.get("digest")
        if (version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1)) or \
                (model_dir is not None and not isinstance(model_dir, str)) or \
                (previous is not None and not isinstance(previous, dict)) or \
                (digest is not None and not isinstance(digest, str)) or (version is not None and not model_dir):
            raise CorruptState(f"the endpoint record {data!r:.200} has fields of the wrong type")
        return cls(version, model_dir, data.get("package_arn"), data.get("deployed_at"), previous, digest)

    @classmethod
    def read(cls, home: Path, group: str) -> EndpointState:
        """The record (version None when there is none). Raises: CorruptState (not JSON, wrong fields)."""
        return cls.from_dict(read_json(state_path(home, group)) or {})

    def write(self, home: Path, group: str) -> None:
        write_json(state_path(home, group), {**self.summary(), "previous": self.previous})

    def summary(self) -> dict[str, Any]:
        return {"version": self.version, "model_dir": self.model_dir, "package_arn": self.package_arn,
                "deployed_at": self.deployed_at, "digest": self.digest}

    def target(self, group: str) -> ModelTarget | None:
        """What a server should load for this record (None: nothing deployed)."""
        if self.version is None or not self.model_dir:
            return None
        return ModelTarget(version_label(group, self.version), Path(self.model_dir), self.digest)


class DeployedSource:
    """The deployed version of a group (None when nothing is deployed), re-read when the file changes.

    A record that cannot be read raises (the slot keeps serving what it has and logs why) until a
    deployment replaces it.
    """

    def __init__(self, home: Path, group: str):
        self.home, self.group = Path(home), group
        self._seen: tuple[int, int] | None = None
        self._target: ModelTarget | None = None

    def __call__(self) -> ModelTarget | None:
        path = state_path(self.home, self.group)
        try:
            stat = path.stat()
            seen = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            seen = None
        if seen != self._seen or seen is None:
            self._target = EndpointState.read(self.home, self.group).target(self.group)
            self._seen = seen
        return self._target

    def __repr__(self) -> str:
        return f"the version deployed for group {self.group!r}"


class ServingConflict(UsageError):
    """Another live server already serves this group's target."""


@dataclass(frozen=True)
class ServingRecord:
    url: str
    pid: int
    started: int | None = None  # the process's start time (clock ticks since boot)
    token: str | None = None  # opens the server's side channel to the deployer
    since: str | None = None

    def describe(self, what: str) -> str:
        return f"{what} pid {self.pid} (since {self.since or 'an unknown time'}) at {self.url}"


def _record(data: dict[str, Any] | None) -> ServingRecord | None:
    if not data or not isinstance(data.get("pid"), int) or not isinstance(data.get("url"), str):
        return None
    started = data.get("started")
    return ServingRecord(data["url"], data["pid"], started if isinstance(started, int) else None,
                         data.get("token") if isinstance(data.get("token"), str) else None, data.get("since"))


def _live(path: Path) -> ServingRecord | None:
    try:
        record = _record(read_json(path))
    except (CorruptState, OSError) as exc:  # a half-written or hand-edited record is not a running server
        log.warning("ignoring the serving record %s: %s", path, exc)
        return None
    return record if record is not None and same_process(record.pid, record.started) else None


@contextlib.contextmanager
def _registrations(home: Path, group: str) -> Iterator[None]:
    folder = deployment_dir(home, group)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".serving.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def register_serving(home: Path, group: str, url: str, target: str = "endpoint", *, replace: bool = False,
                     token: str | None = None) -> ServingRecord:
    """Record that this process serves the group's `target` (the endpoint, or the local Lambda's front) at url,
    so the deployer stages and smoke-tests there; returns the record (with its token).

    Raises:
        ServingConflict: another live process serves it (named), and `replace` is false.
    """
    path = _serving_path(home, group, target)
    what = "greenlight endpoint serve" if target == "endpoint" else f"greenlight {target} serve"
    with _registrations(home, group):
        running = _live(path)
        if running is not None and running.pid != os.getpid() and not replace:
            raise ServingConflict(f"{running.describe(what)} already serves group {group}; stop it, or pass "
                                  "--replace to take over its registration")
        if running is not None and running.pid != os.getpid():
            log.warning("taking over the registration of %s", running.describe(what))
        record = ServingRecord(url, os.getpid(), process_start_time(os.getpid()), token or secrets.token_urlsafe(32),
                               datetime.now(UTC).isoformat(timespec="seconds"))
        write_json(path, {"url": record.url, "pid": record.pid, "started": record.started, "token": record.token,
                          "since": record.since})
    return record


def unregister_serving(home: Path, group: str, target: str = "endpoint", record: ServingRecord | None = None) -> None:
    """Remove the registration if it is this process's own (`record`'s token, else this pid)."""
    path = _serving_path(home, group, target)
    with _registrations(home, group):
        try:
            current = _record(read_json(path))
        except (CorruptState, OSError):
            return
        if current is None or current.pid != os.getpid() or (record is not None and current.token != record.token):
            return
        remove_json(path)


def read_serving(home: Path, group: str, target: str = "endpoint") -> ServingRecord | None:
    """The running endpoint (or other `target`) of the group, if its process is alive and is the one registered."""
    return _live(_serving_path(home, group, target))
