"""The local Lambda's state: numbered function versions and the alias, as Lambda keeps them.

    deployments/<group>/lambda.json           written by LocalLambdaTarget, read by the local front
    deployments/<group>/lambda.serving.json   the running `greenlight lambda serve`: its URL and pid

    {"function": "greenlight-models",
     "versions": {"1": {"model_version": 2, "model_dir": "...", "package_arn": "...", "description": "...",
                        "environment": {"GREENLIGHT_PREDICT_THREADS": "1", ...}, "published_at": "..."}},
     "last_version": 1,                        # version numbers are never reused, as in Lambda
     "alias": {"name": "live", "version": 1, "previous": null},
     "throttled": false}                       # `stop`: reserved concurrency 0, nothing answers

Published versions are immutable; only the alias, the throttle and the set of versions (retention)
change. The file is replaced atomically and durably (deploy.engine.local_state.write_json), so the
front never reads half a state; `StateReader` re-reads it only when it changed (inode or mtime), and
keeps the last good state when the file cannot be read. A file that is not a state (hand-edited,
truncated by a full disk before Greenlight wrote durably) raises CorruptState; the target then
observes nothing deployed, and its next deployment writes a new state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deploy.engine.local_state import CorruptState, deployment_dir, read_json, write_json

__all__ = ["FunctionState", "FunctionVersion", "StateReader", "state_path"]

log = logging.getLogger(__name__)

TARGET = "lambda"  # the file name under deployments/<group>/, and the serving record's


def state_path(home: Path, group: str) -> Path:
    return deployment_dir(home, group) / f"{TARGET}.json"


@dataclass(frozen=True)
class FunctionVersion:
    """One published version: the model version it holds, where that model is unpacked, its configuration."""

    number: int
    model_version: int
    model_dir: str
    package_arn: str | None = None
    description: str = ""
    environment: dict[str, str] = field(default_factory=dict, hash=False)
    published_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "model_dir": self.model_dir, "package_arn": self.package_arn,
                "description": self.description, "environment": dict(self.environment),
                "published_at": self.published_at}

    @classmethod
    def from_dict(cls, number: int, data: dict[str, Any]) -> FunctionVersion:
        return cls(number, int(data["model_version"]), str(data["model_dir"]), data.get("package_arn"),
                   str(data.get("description") or ""), dict(data.get("environment") or {}), data.get("published_at"))


@dataclass(frozen=True)
class FunctionState:
    """The whole local function (immutable: every change returns a new state to write)."""

    function: str
    alias: str = "live"
    versions: dict[int, FunctionVersion] = field(default_factory=dict, hash=False)
    last_version: int = 0
    live: int | None = None  # the version the alias points at
    previous: int | None = None  # the version it pointed at before
    throttled: bool = False

    @classmethod
    def read(cls, home: Path, group: str, function: str, alias: str = "live") -> FunctionState:
        """The state of `function` (a fresh one if there is no file, or it is another function's).

        Raises:
            CorruptState: the file is not JSON, or not a function's state.
        """
        path = state_path(home, group)
        data = read_json(path)
        if not data or data.get("function") != function:
            return cls(function, alias)
        try:
            pointer = data.get("alias") or {}
            versions = {int(n): FunctionVersion.from_dict(int(n), v) for n, v in (data.get("versions") or {}).items()}
            same_alias = pointer.get("name") == alias
            live, previous = (pointer.get("version"), pointer.get("previous")) if same_alias else (None, None)
            for number in (live, previous):
                if number is not None and (not isinstance(number, int) or number not in versions):
                    raise ValueError(f"the alias names version {number!r}, which is not published")
            return cls(function, alias, versions, max([int(data.get("last_version") or 0), *versions]), live,
                       previous, bool(data.get("throttled")))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CorruptState(f"{path} is not the state of a function ({exc})") from None

    def write(self, home: Path, group: str) -> None:
        write_json(state_path(home, group), {
            "function": self.function,
            "versions": {str(n): v.to_dict() for n, v in sorted(self.versions.items())},
            "last_version": self.last_version,
            "alias": {"name": self.alias, "version": self.live, "previous": self.previous},
            "throttled": self.throttled})

    @property
    def live_version(self) -> FunctionVersion | None:
        return None if self.live is None else self.versions.get(self.live)

    def find(self, model_version: int, model_dir: str, environment: dict[str, str]) -> FunctionVersion | None:
        """The newest published version holding exactly this model and configuration, if any."""
        for number in sorted(self.versions, reverse=True):
            v = self.versions[number]
            if (v.model_version, v.model_dir, v.environment) == (model_version, model_dir, environment):
                return v
        return None

    def publish(self, model_version: int, model_dir: str, package_arn: str | None, description: str,
                environment: dict[str, str]) -> tuple[FunctionState, FunctionVersion]:
        """A new version (the next number, never a reused one) and the state holding it."""
        number = self.last_version + 1
        version = FunctionVersion(number, model_version, model_dir, package_arn, description, dict(environment),
                                  datetime.now(UTC).isoformat(timespec="seconds"))
        return replace(self, versions={**self.versions, number: version}, last_version=number), version

    def move_alias(self, number: int) -> FunctionState:
        previous = self.live if self.live != number else self.previous
        return replace(self, live=number, previous=previous)

    def with_throttle(self, throttled: bool) -> FunctionState:
        return replace(self, throttled=throttled)

    def without(self, numbers: set[int]) -> FunctionState:
        return replace(self, versions={n: v for n, v in self.versions.items() if n not in numbers})


class StateReader:
    """The function's state for a reader that asks often (the front): re-read only when the file changed."""

    def __init__(self, home: Path, group: str, function: str, alias: str = "live"):
        self.home, self.group, self.function, self.alias = Path(home), group, function, alias
        self._seen: tuple[int, int] | None = None
        self._state = FunctionState(function, alias)

    def __call__(self) -> FunctionState:
        try:
            stat = state_path(self.home, self.group).stat()
            seen = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        if seen is None:
            self._state, self._seen = FunctionState(self.function, self.alias), None
        elif seen != self._seen:
            try:
                self._state = FunctionState.read(self.home, self.group, self.function, self.alias)
            except (CorruptState, OSError) as exc:  # keep serving what was read last
                log.warning("%s; still serving the last state read", exc)
            self._seen = seen
        return self._state
