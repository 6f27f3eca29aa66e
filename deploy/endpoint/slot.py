"""The model slot: which model version the endpoint serves, with serverless load, drop and swap.

- Cold start: the slot is empty until a request needs a model; that request loads the version the
  source names now (concurrent cold requests wait for the same load).
- Idle drop: `tick()` empties the slot when no request has run for `idle_seconds`.
- Hot swap: `tick()` asks the source which version is current; if it differs from the loaded one,
  the new version is loaded fully, off the request path, and only then put in the slot. Requests
  hold their own reference to the version they started on, so in-flight requests finish on the old
  one; nothing is refused while a swap happens. A version that fails to load is logged and not
  retried for `retry_seconds` (the old version keeps serving; cold requests get 503 meanwhile).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from deploy.endpoint.loader import LoadedModel, load_version
from greenlight.errors import ServingUnavailable

__all__ = ["ModelLoadFailed", "ModelSlot", "ModelTarget", "NoModelAvailable", "Source"]

logger = logging.getLogger(__name__)


class ModelTarget(NamedTuple):
    """The version a source says should be served, and its unpacked model directory."""

    version: str
    model_dir: Path


# A source answers "which model should be served now?"; None when there is none yet.
Source = Callable[[], ModelTarget | None]


class NoModelAvailable(ServingUnavailable):
    """The source names no model version (the endpoint answers 503)."""


class ModelLoadFailed(ServingUnavailable):
    """The named model version could not be loaded (the endpoint answers 503)."""


class ModelSlot:
    """Holds at most one loaded model version; thread-safe; see the module docstring."""

    def __init__(self, source: Source, *, idle_seconds: float = 300.0,
                 loader: Callable[[str, Path], LoadedModel] = load_version,
                 clock: Callable[[], float] = time.monotonic, retry_seconds: float = 30.0):
        self._source = source
        self._loader = loader
        self._clock = clock
        self.idle_seconds = idle_seconds
        self._current: LoadedModel | None = None
        self._load_lock = threading.Lock()  # one load or swap at a time; never taken by warm requests
        self._use_lock = threading.Lock()  # guards the in-flight count and last-use time
        self._in_flight = 0
        self._last_used = clock()
        self._last_target: str | None = None
        self.retry_seconds = retry_seconds
        self._failed: dict[str, tuple[str, float]] = {}  # version -> (reason, when it failed)
        self.loads = 0
        self.swaps = 0
        self.drops = 0

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    @property
    def in_flight(self) -> int:
        """Requests holding a model right now."""
        return self._in_flight

    def version_hint(self) -> str:
        """The loaded version, else the last version the source named, else 'none'."""
        current = self._current
        return current.version if current is not None else (self._last_target or "none")

    def acquire(self) -> LoadedModel:
        """The model to serve one request with, loading it if the slot is empty; pair with release().

        Raises:
            NoModelAvailable: the source names no version.
            ModelLoadFailed: loading the named version failed.
        """
        with self._use_lock:
            self._in_flight += 1
        current = self._current
        if current is not None:
            return current
        try:
            return self._cold_load()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        with self._use_lock:
            self._in_flight -= 1
            self._last_used = self._clock()

    def resolve(self) -> ModelTarget | None:
        """Ask the source which version should be served now (does not load it)."""
        target = self._source()
        self._last_target = target.version if target is not None else None
        return target

    def _cold_load(self) -> LoadedModel:
        with self._load_lock:
            if self._current is not None:  # another request loaded it while we waited
                return self._current
            try:
                target = self.resolve()
            except Exception as exc:
                logger.error("cold start failed: cannot ask the model source which version is current: %s", exc)
                raise NoModelAvailable(f"cannot tell which model version to serve: {exc}") from exc
            if target is None:
                raise NoModelAvailable("no model version is available to serve yet")
            reason = self._recent_failure(target.version)
            if reason is not None:  # do not pay a failing load on every request
                raise ModelLoadFailed(f"cannot load model version {target.version}: {reason}")
            try:
                loaded = self._loader(target.version, target.model_dir)
            except Exception as exc:
                self._failed[target.version] = (str(exc), self._clock())
                logger.error("cold start failed: cannot load model version %s from %s: %s",
                             target.version, target.model_dir, exc)
                raise ModelLoadFailed(f"cannot load model version {target.version}: {exc}") from exc
            self._current = loaded
            self.loads += 1
            logger.info("cold start: loaded model version %s because a request arrived and the slot was empty",
                        loaded.version)
            return loaded

    def _recent_failure(self, version: str) -> str | None:
        """Why `version` failed to load, if it did less than retry_seconds ago."""
        failed = self._failed.get(version)
        if failed is None or self._clock() - failed[1] >= self.retry_seconds:
            return None
        return failed[0]

    def refresh(self) -> bool:
        """Swap to the source's current version if a different one is loaded; True if swapped."""
        try:
            target = self.resolve()
        except Exception as exc:  # a half-written registry must not stop serving
            logger.warning("cannot ask the model source which version is current: %s", exc)
            return False
        if target is None:
            return self._unload_withdrawn()
        with self._load_lock:
            old = self._current
            if old is None or old.version == target.version or self._recent_failure(target.version) is not None:
                return False  # empty slot: the next request cold-loads the newest version
            try:
                new = self._loader(target.version, target.model_dir)
            except Exception as exc:
                self._failed[target.version] = (str(exc), self._clock())
                logger.error("not swapping to model version %s, it failed to load (%s); still serving %s",
                             target.version, exc, old.version)
                return False
            self._current = new
            self.loads += 1
            self.swaps += 1
        logger.info("hot swap: now serving model version %s instead of %s because the source names it; "
                    "requests already running finish on %s", new.version, old.version, old.version)
        return True

    def _unload_withdrawn(self) -> bool:
        """The source names no version any more (nothing deployed): empty the slot so requests get 503."""
        with self._load_lock:
            old = self._current
            if old is None:
                return False
            self._current = None
        logger.warning("the source names no model version any more: unloaded %s; requests get 503 until one "
                       "is deployed (requests already running finish on it)", old.version)
        return True

    @property
    def wanted(self) -> str | None:
        """The version the source named last (None if none, or not asked yet)."""
        return self._last_target

    def load_error(self, version: str) -> str | None:
        """Why `version` last failed to load, if it did."""
        failed = self._failed.get(version)
        return None if failed is None else failed[0]

    def drop_if_idle(self) -> bool:
        """Empty the slot if no request has run for idle_seconds; True if dropped."""
        with self._load_lock:
            current = self._current
            if current is None:
                return False
            with self._use_lock:
                idle_for = self._clock() - self._last_used
                if self._in_flight or idle_for < self.idle_seconds:
                    return False
                self._current = None
            self.drops += 1
        logger.info("dropped model version %s after %.1f s without a request (idle limit %.1f s)",
                    current.version, idle_for, self.idle_seconds)
        return True

    def tick(self) -> None:
        """One watcher step: hot swap if the source changed, then drop if idle."""
        self.refresh()
        self.drop_if_idle()
