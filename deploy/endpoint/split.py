"""A local traffic split (issue 22): the rollout record a deployer writes, the share a server routes by it,
and the per-version counts the engine judges.

    deployments/<key>/<target>.rollout.json       {"version", "label", "model_dir", "digest", "percent"}: the
                                                  new (probed) version and its share; written by the target's
                                                  `shift` (percent < 100) and kept at 100 while it bakes;
                                                  removed when the rollout completes or is rolled back
    deployments/<key>/traffic/<target>-v<N>.log   one line per answer of version N while a rollout record
                                                  exists: "<epoch seconds> <status> <latency ms>"

A server (the local endpoint, the local Lambda front) holds a `Split`: the watcher's `tick()` re-reads the
record (by mtime) and loads the new version into a second slot before routing any request to it; each
request asks `route(main)` which slot answers it (the new version with probability percent/100; at 100%,
until the main slot serves the new version itself) and, while a rollout record exists, `count`s the answer.
Each count is one append of one short line (O_APPEND, one write): a killed server loses at most the line
being written, and `read_traffic` skips a torn line.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.endpoint.slot import ModelSlot, ModelTarget
from deploy.engine.local_state import CorruptState, deployment_dir, read_json, remove_json, write_json
from deploy.engine.traffic import VersionTraffic

__all__ = ["RolloutWatch", "Split", "count", "read_rollout", "read_traffic", "remove_rollout", "rollout_path",
           "write_rollout"]

log = logging.getLogger(__name__)


def rollout_path(home: Path, key: str, target: str) -> Path:
    return deployment_dir(home, key) / f"{target}.rollout.json"


def _log_path(home: Path, key: str, target: str, version: int) -> Path:
    return deployment_dir(home, key) / "traffic" / f"{target}-v{version}.log"


def write_rollout(home: Path, key: str, target: str, record: dict[str, Any]) -> bool:
    """Write the rollout record unless it says so already; True if written."""
    try:
        if read_json(rollout_path(home, key, target)) == record:
            return False
    except CorruptState:
        pass
    write_json(rollout_path(home, key, target), record)
    return True


def read_rollout(home: Path, key: str, target: str) -> dict[str, Any] | None:
    try:
        record = read_json(rollout_path(home, key, target))
    except CorruptState as exc:
        log.warning("ignoring the rollout record: %s", exc)
        return None
    return record if isinstance(record, dict) else None


def remove_rollout(home: Path, key: str, target: str) -> None:
    remove_json(rollout_path(home, key, target))


def _version_of(label: str) -> int | None:
    tail = label.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def count(home: Path, key: str, target: str, label: str, status: int, latency_ms: float) -> None:
    """Append one answer of the version labelled `label` (a disk error is logged, never the request's)."""
    version = _version_of(label)
    if version is None:
        return
    path = _log_path(home, key, target, version)
    line = f"{time.time():.3f} {status} {latency_ms:.3f}\n".encode()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("cannot count an answer of %s in %s: %s", label, path, exc)


def read_traffic(home: Path, key: str, target: str, version: int, since: float) -> VersionTraffic:
    """What `version` answered since `since` (epoch seconds): requests, 5xx, p99 (nearest rank, ms)."""
    path = _log_path(home, key, target, version)
    try:
        text = path.read_bytes().decode("ascii", "replace")
    except FileNotFoundError:
        return VersionTraffic()
    latencies, errors = [], 0
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue  # torn by a kill
        try:
            at, status, latency = float(parts[0]), int(parts[1]), float(parts[2])
        except ValueError:
            continue
        if at < since:
            continue
        latencies.append(latency)
        errors += status >= 500
    if not latencies:
        return VersionTraffic()
    latencies.sort()
    p99 = latencies[max(0, math.ceil(0.99 * len(latencies)) - 1)]
    return VersionTraffic(len(latencies), errors, p99)


class RolloutWatch:
    """The rollout record, re-read only when its file changed (one stat per call): the Lambda front asks per request."""

    def __init__(self, home: Path, key: str, target: str):
        self.home, self.key, self.target = Path(home), key, target
        self._last: tuple[tuple[int, int] | None, dict[str, Any] | None] = (None, None)  # one tuple: thread-safe

    def __call__(self) -> dict[str, Any] | None:
        try:
            stat = rollout_path(self.home, self.key, self.target).stat()
            seen: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            seen = None
        last_seen, record = self._last
        if seen != last_seen:
            record = None if seen is None else read_rollout(self.home, self.key, self.target)
            self._last = (seen, record)
        return record


class Split:
    """One server's view of its rollout record (module docstring)."""

    def __init__(self, home: Path, key: str, target: str, slot_factory: Callable[[Callable], ModelSlot],
                 chance: Callable[[], float] = random.random):
        self.home, self.key, self.target = Path(home), key, target
        self._record: dict[str, Any] | None = None
        self._seen: tuple[int, int] | None = None
        self._new: ModelTarget | None = None
        self.percent = 0.0
        self.slot = slot_factory(self._source)
        self._chance = chance

    def _source(self) -> ModelTarget | None:
        return self._new

    @property
    def counting(self) -> bool:
        return self._record is not None

    def tick(self) -> None:
        """Re-read the record when it changed; load the new version before routing to it."""
        path = rollout_path(self.home, self.key, self.target)
        try:
            stat = path.stat()
            seen: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_ino)
        except FileNotFoundError:
            seen = None
        if seen != self._seen:
            self._seen = seen
            record = read_rollout(self.home, self.key, self.target) if seen is not None else None
            new, percent = None, 0.0
            try:
                if record is not None:
                    new = ModelTarget(str(record["label"]), Path(record["model_dir"]), record.get("digest"))
                    percent = float(record["percent"])
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("ignoring the rollout record %s: %s", path, exc)
                record = new = None
            if new is not None and (self.slot.current is None or self.slot.current.version != new.version):
                self._new = new
                try:
                    self.slot.acquire()  # loaded here, off the request path, before any request is routed to it
                    self.slot.release()
                except Exception as exc:  # it passed its probe: a failure here is logged; the old version serves
                    log.error("cannot load %s for its share of traffic: %s", new.version, exc)
                    new = record = None
            self._record, self._new = record, new
            self.percent = percent if new is not None else 0.0
            if new is None:
                self.slot.refresh()  # empties the second slot
            log.info("traffic split: %s", "none" if new is None else f"{new.version} {self.percent:g}%")

    def route(self, main: ModelSlot) -> ModelSlot:
        """The slot that answers this request."""
        new = self._new
        if new is None or self.slot.current is None:
            return main
        if self.percent >= 100.0:
            current = main.current
            return main if current is not None and current.version == new.version else self.slot
        return self.slot if self._chance() * 100.0 < self.percent else main

    def count(self, label: str, status: int, latency_ms: float) -> None:
        if self._record is not None:
            count(self.home, self.key, self.target, label, status, latency_ms)
