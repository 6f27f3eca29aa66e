"""The local endpoint's deployed state: what `greenlight endpoint serve` serves, and who serves it.

    deployments/<group>/endpoint.json          the deployed version (written by LocalEndpointTarget)
    deployments/<group>/endpoint.serving.json  the running `endpoint serve` process: its URL and pid

`DeployedSource` is the endpoint's model source: it names the deployed version (re-read when the
file changes), so a deployment reaches a running endpoint through its hot swap, and a stopped
deployment (nothing Approved, when_nothing_approved=stop) empties it (503).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.endpoint.slot import ModelTarget
from deploy.engine.local_state import deployment_dir, read_json, write_json
from greenlight.processes import pid_alive

__all__ = ["DeployedSource", "EndpointState", "ServingRecord", "read_serving", "register_serving", "state_path",
           "unregister_serving", "version_label"]

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
    """One deployment record: the version, where its model is unpacked, and what ran before."""

    version: int | None
    model_dir: str | None = None
    package_arn: str | None = None
    deployed_at: str | None = None
    previous: dict[str, Any] | None = None  # the EndpointState fields of the version before

    @classmethod
    def read(cls, home: Path, group: str) -> EndpointState:
        data = read_json(state_path(home, group)) or {}
        return cls(data.get("version"), data.get("model_dir"), data.get("package_arn"), data.get("deployed_at"),
                   data.get("previous"))

    def write(self, home: Path, group: str) -> None:
        write_json(state_path(home, group), {"version": self.version, "model_dir": self.model_dir,
                                             "package_arn": self.package_arn, "deployed_at": self.deployed_at,
                                             "previous": self.previous})

    def summary(self) -> dict[str, Any]:
        return {"version": self.version, "model_dir": self.model_dir, "package_arn": self.package_arn,
                "deployed_at": self.deployed_at}


class DeployedSource:
    """The deployed version of a group (None when nothing is deployed), re-read when the file changes."""

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
            state = EndpointState.read(self.home, self.group)
            self._target = (None if state.version is None or not state.model_dir
                            else ModelTarget(version_label(self.group, state.version), Path(state.model_dir)))
            self._seen = seen
        return self._target

    def __repr__(self) -> str:
        return f"the version deployed for group {self.group!r}"


@dataclass(frozen=True)
class ServingRecord:
    url: str
    pid: int


def register_serving(home: Path, group: str, url: str, target: str = "endpoint") -> None:
    """Record that this process serves the group's `target` (the endpoint, or the local Lambda's front) at url,
    so the deployer smoke-tests it there."""
    write_json(_serving_path(home, group, target), {"url": url, "pid": os.getpid()})


def unregister_serving(home: Path, group: str, target: str = "endpoint") -> None:
    path = _serving_path(home, group, target)
    data = read_json(path) if path.exists() else None
    if data and data.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


def read_serving(home: Path, group: str, target: str = "endpoint") -> ServingRecord | None:
    """The running endpoint (or other `target`) of the group, if its process is alive."""
    try:
        data = read_json(_serving_path(home, group, target))
    except Exception as exc:  # a half-written record is not a running endpoint
        log.debug("ignoring the serving record of %s: %s", group, exc)
        return None
    if not data or not isinstance(data.get("pid"), int):
        return None
    if not pid_alive(data["pid"]):
        return None
    return ServingRecord(str(data["url"]), data["pid"])
