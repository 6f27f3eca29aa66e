"""The model slot: which model version the endpoint serves, with serverless load, drop and swap.

- Cold start: the slot is empty until a request needs a model; that request loads the version the
  source names now (concurrent cold requests wait for the same load).
- Idle drop: `tick()` empties the slot when no request has run for `idle_seconds`.
- Hot swap: `tick()` asks the source which version is current; if it differs from the loaded one,
  the new version is loaded fully, off the request path, and only then put in the slot. Requests
  hold their own reference to the version they started on, so in-flight requests finish on the old
  one; nothing is refused while a swap happens. A version that fails to load is logged and not
  retried for `retry_seconds` (the old version keeps serving; cold requests get 503 meanwhile). The
  failure is remembered by the artifact (its digest, else its directory), not by the version's name,
  so a repaired artifact of the same version is tried at once.
- Staging: `stage(target)` loads a version beside the serving one, where no request reaches it but
  `staged_model()` (the endpoint's token-guarded side channel: the deployer probes it there). When the
  source later names exactly that target (version, directory and digest), the swap promotes the staged
  model instead of loading it again. A staged model nobody promotes is dropped after `idle_seconds`.
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
    """The version a source says should be served, its unpacked model directory, and the artifact's digest."""

    version: str
    model_dir: Path
    digest: str | None = None

    @property
    def key(self) -> str:
        """What a load failure is remembered by: the artifact, not the version's name."""
        return self.digest or f"{self.version}@{self.model_dir}"


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
        self._failed: dict[str, tuple[str, float]] = {}  # ModelTarget.key -> (reason, when it failed)
        self._staged: tuple[ModelTarget, LoadedModel, float] | None = None  # (target, model, when staged)
        self._stage_lock = threading.Lock()  # one staging load at a time; never taken by requests
        self._last: ModelTarget | None = None
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
        self._last = target
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
            reason = self._recent_failure(target)
            if reason is not None:  # do not pay a failing load on every request
                raise ModelLoadFailed(f"cannot load model version {target.version}: {reason}")
            try:
                loaded = self._take_staged(target) or self._loader(target.version, target.model_dir)
            except Exception as exc:
                self._failed[target.key] = (str(exc), self._clock())
                logger.error("cold start failed: cannot load model version %s from %s: %s",
                             target.version, target.model_dir, exc)
                raise ModelLoadFailed(f"cannot load model version {target.version}: {exc}") from exc
            self._current = loaded
            self.loads += 1
            logger.info("cold start: loaded model version %s because a request arrived and the slot was empty",
                        loaded.version)
            return loaded

    def _recent_failure(self, target: ModelTarget) -> str | None:
        """Why `target` failed to load, if it did less than retry_seconds ago."""
        failed = self._failed.get(target.key)
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
            if old is None or (old.version, old.model_dir) == (target.version, target.model_dir) \
                    or self._recent_failure(target) is not None:
                return False  # empty slot: the next request cold-loads the newest version
            promoted = self._take_staged(target)
            try:
                new = promoted or self._loader(target.version, target.model_dir)
            except Exception as exc:
                self._failed[target.key] = (str(exc), self._clock())
                logger.error("not swapping to model version %s, it failed to load (%s); still serving %s",
                             target.version, exc, old.version)
                return False
            self._current = new
            self.loads += 1
            self.swaps += 1
        logger.info("hot swap: now serving model version %s instead of %s because the source names it (%s); "
                    "requests already running finish on %s", new.version, old.version,
                    "the staged model, probed before, no second load" if promoted else "loaded now", old.version)
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

    def load_error(self, target: ModelTarget | None = None) -> str | None:
        """Why `target` (default: what the source named last) last failed to load, if it did."""
        target = self._last if target is None else target
        failed = None if target is None else self._failed.get(target.key)
        return None if failed is None else failed[0]

    # -- staging ---------------------------------------------------------------------------------

    def stage(self, target: ModelTarget) -> LoadedModel:
        """Load `target` beside the serving version (no request reaches it); the same target staged already
        is kept. Raises: whatever the loader raises (the version's own code failed)."""
        with self._stage_lock:
            staged = self._staged
            if staged is not None and staged[0] == target:
                return staged[1]
            self._staged = None
            loaded = self._loader(target.version, target.model_dir)
            self._staged = (target, loaded, self._clock())
            self.loads += 1
        logger.info("staged model version %s beside %s (loaded in %.3f s; not served until deployed)",
                    target.version, self.version_hint(), loaded.load_seconds)
        return loaded

    def staged_model(self) -> LoadedModel | None:
        staged = self._staged
        return None if staged is None else staged[1]

    def unstage(self) -> bool:
        """Drop the staged model (never the serving one); True if there was one."""
        with self._stage_lock:
            staged, self._staged = self._staged, None
        if staged is not None:
            logger.info("dropped staged model version %s", staged[0].version)
        return staged is not None

    def _take_staged(self, target: ModelTarget) -> LoadedModel | None:
        """The staged model if it is exactly `target` (then it leaves the staging slot)."""
        with self._stage_lock:
            staged = self._staged
            if staged is None or staged[0] != target:
                return None
            self._staged = None
        return staged[1]

    def drop_if_idle(self) -> bool:
        """Empty the slot if no request has run for idle_seconds (and drop a staged model nobody promoted
        within idle_seconds); True if the serving model was dropped."""
        staged = self._staged
        if staged is not None and self._clock() - staged[2] >= self.idle_seconds:
            self.unstage()
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
