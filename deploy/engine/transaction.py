"""The deploy transaction, written once: policy here, primitives in the adapters (deploy.engine.protocol).

    transaction = Transaction(intents, hook=...)
    message = transaction.deploy(target, release, smoke, before)     # raises DeploymentFailed
    note = transaction.recover(target)                               # at the start of every reconcile

A deployment of version N on a target:

1. record the intent in the status store ("staging v7 on endpoint; previous v6"), before acting;
2. fetch and check the artifact (one wording for every target: "cannot fetch v7's model <uri>: ...");
3. stage it beside the serving version (the intent now names what was staged, so a later process can
   drop it);
4. probe the staged version with the smoke rows through a path no live request can reach; with no
   smoke-test data and smoke.required = false the probe is skipped, and the report says so;
5. switch (the intent now says the probe passed: the only claim it makes is one that was verified);
6. confirm on the live path, where the target has such a check;
7. clear the intent.

Any failure or interruption (an exception, Ctrl-C, SIGTERM, which is mapped to Ctrl-C while a
deployment runs in the main thread) unstages: the target goes back to what served before, and the
error says what serves now, from a fresh observation. A kill -9 leaves the intent record; the next
reconcile's `recover` observes the target: if it runs the intended version and that version is active
(which an adapter reports only for a verified version), the deployment had finished; otherwise the
staged version is dropped and the target returned. Observation is the truth; the record is a hint for
the clean-up. The record keeps the step and the staged reference (JSON), so a later reconcile could
also continue a step instead of undoing it (a long wait on AWS, say).

A wait that would run past the invocation's deadline (deploy.engine.deadline: HandedOver) is neither a
failure nor undone: the intent is kept with what it waits for (`waiting`), the deployment raises
DeploymentInProgress, and the next reconcile passes that intent back (`deploy(..., resume=intent)`),
which continues at the recorded step with the recorded Staged (each primitive is written to be run
again: it finds what an earlier run started). Nothing switches before its probe passed, in whichever
invocation that happens. A deployment still handing over `handover_limit` seconds (an hour) after it
started fails like any other and is undone: something stuck (a version that stays Pending) ends.

`hook(step, target)` is called at every step boundary (intent, fetched, staged, probed, switched,
confirmed, done): the fault-injection tests raise there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from deploy.engine.deadline import HandedOver
from deploy.engine.faults import fault_line
from deploy.engine.model import Observed, Release
from deploy.engine.protocol import DeployTarget, Staged
from deploy.engine.smoke import SmokeTest
from greenlight.errors import DeploymentFailed

__all__ = ["NOT_SMOKE_TESTED", "STEPS", "DeploymentInProgress", "DeploymentInterrupted", "Intent", "IntentStore",
           "MemoryIntents", "Transaction", "what_serves"]

log = logging.getLogger(__name__)

STEPS = ("intent", "fetched", "staged", "probed", "switched", "confirmed", "done")
_ORDER = ("stage", "probe", "switch", "confirm")  # Intent.step: the step about to run
HANDOVER_LIMIT_SECONDS = 3600.0  # a deployment still handed over this long after it started fails (and is undone)
NOT_SMOKE_TESTED = "smoke test not run: no smoke-test data and smoke.required = false"
_VERBS = {"stage": "staging", "probe": "probing", "switch": "switching to", "confirm": "confirming"}


class DeploymentInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a deployment; `message` says what was undone and what serves."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class DeploymentInProgress(Exception):  # noqa: N818 (not a failure: a later reconcile continues it)
    """A deployment handed over to a later reconcile at a long wait; the message says what waits and what serves."""


class IntentStore(Protocol):
    """Where the intent of an in-flight deployment is kept, per target (the status store)."""

    def load_intent(self, target: str) -> dict[str, Any] | None: ...

    def save_intent(self, target: str, intent: dict[str, Any] | None) -> None: ...


class MemoryIntents:
    """IntentStore in memory (a deployment driven directly, and tests)."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def load_intent(self, target: str) -> dict[str, Any] | None:
        return self.records.get(target)

    def save_intent(self, target: str, intent: dict[str, Any] | None) -> None:
        if intent is None:
            self.records.pop(target, None)
        else:
            self.records[target] = intent


def _now(epoch: float | None = None) -> str:
    moment = datetime.now(UTC) if epoch is None else datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _epoch(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _label(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"


@dataclass(frozen=True)
class Intent:
    """What a deployment is doing now: which step of which version, and what it staged (module docstring)."""

    target: str
    version: int
    previous: int | None
    step: str  # stage, probe, switch, confirm: the step about to run
    staged: Staged | None
    holder: str
    started: str
    updated: str
    waiting: str | None = None  # handed over to a later reconcile while waiting for this (None: running, or died)

    def describe(self) -> str:
        return f"{_VERBS.get(self.step, self.step)} v{self.version} on {self.target}; previous {_label(self.previous)}"

    def at(self, step: str, staged: Staged | None = None, waiting: str | None = None) -> Intent:
        return replace(self, step=step, staged=staged or self.staged, updated=_now(), waiting=waiting)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "version": self.version, "previous": self.previous, "step": self.step,
                "staged": None if self.staged is None else self.staged.to_dict(), "holder": self.holder,
                "started": self.started, "updated": self.updated, "summary": self.describe(), "waiting": self.waiting}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Intent:
        """Raises: KeyError, TypeError, ValueError on a record that is not an Intent."""
        staged = data.get("staged")
        previous = data.get("previous")
        return cls(str(data["target"]), int(data["version"]), None if previous is None else int(previous),
                   str(data["step"]), None if staged is None else Staged.from_dict(staged), str(data.get("holder")),
                   str(data.get("started")), str(data.get("updated")),
                   None if data.get("waiting") is None else str(data["waiting"]))


def what_serves(before: Observed | None, after: Observed | None, error: str | None = None) -> str:
    """What serves now, in words, from an observation made after the failure (`error`: it could not be made)."""
    if after is None:
        return f"what serves now cannot be observed ({error})"
    had = before is not None and before.version is not None
    if after.version is None:
        return "nothing serves now" if had and before.active else "nothing was deployed before, so nothing is"
    if not after.active:
        return f"it stays on v{after.version}, not serving"
    same = before is not None and before.version == after.version and before.active
    return f"v{after.version} still serves" if same else f"v{after.version} serves"


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt while the block runs (main thread, default handler only)."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Transaction:
    """The deploy transaction and the recovery of a half-done one (module docstring)."""

    def __init__(self, intents: IntentStore | None = None, *, hook: Callable[[str, str], None] | None = None,
                 scratch_dir: Path | None = None, handover_limit: float = HANDOVER_LIMIT_SECONDS,
                 wall: Callable[[], float] = time.time):
        self.intents = intents if intents is not None else MemoryIntents()
        self.hook = hook
        self.scratch_dir = scratch_dir
        self.handover_limit, self._wall = handover_limit, wall
        self.holder = f"pid {os.getpid()} on {socket.gethostname()}"

    def _step(self, step: str, target: DeployTarget) -> None:
        if self.hook is not None:
            self.hook(step, target.name)

    def _record(self, intent: Intent) -> None:
        self.intents.save_intent(intent.target, intent.to_dict())

    # -- deploy ------------------------------------------------------------------------------------

    def deploy(self, target: DeployTarget, release: Release, smoke: SmokeTest | None,
               before: Observed | None = None, *, resume: Intent | None = None) -> str:
        """Bring `target` to `release` (module docstring); what changed, in words. `resume`: the intent of a
        deployment of this release a earlier reconcile handed over; it continues at its step.

        Raises:
            DeploymentFailed: naming the step and what serves now (the previous version, returned to).
            DeploymentInProgress: a wait handed over to a later reconcile; nothing undone (module docstring).
            DeploymentInterrupted: Ctrl-C or SIGTERM; undone, and `message` says what serves.
        """
        before = target.observe() if before is None else before
        started = _now(self._wall())
        if resume is not None and resume.version == release.version and resume.step in _ORDER:
            intent, staged = replace(resume.at(resume.step), holder=self.holder), resume.staged
            log.info("%s: continuing %s (it waited for %s)", target.name, intent.describe(), resume.waiting)
        else:
            intent = Intent(target.name, release.version, before.version, "stage", None, self.holder, started, started)
            staged = None
        previous, first = intent.previous, _ORDER.index(intent.step)
        probed = switched = confirmed = None
        try:
            with _sigterm_as_interrupt():
                self._record(intent)
                log.info("%s: %s", target.name, intent.describe())
                self._step("intent", target)
                if first <= _ORDER.index("stage") or staged is None:
                    staged = self._stage(target, release)
                    intent = intent.at("probe", staged)
                    self._record(intent)
                    self._step("staged", target)
                if _ORDER.index(intent.step) <= _ORDER.index("probe"):
                    probed = self._probe(target, release, staged, smoke)
                    intent = intent.at("switch")
                    self._record(intent)
                    self._step("probed", target)
                if _ORDER.index(intent.step) <= _ORDER.index("switch"):
                    switched = target.switch(staged)
                    intent = intent.at("confirm")
                    self._record(intent)
                    self._step("switched", target)
                confirmed = target.confirm(staged, smoke)
                self._step("confirmed", target)
                self.intents.save_intent(target.name, None)
                self._step("done", target)
        except HandedOver as exc:
            begun = _epoch(intent.started)
            age = None if begun is None else self._wall() - begun
            if age is not None and age >= self.handover_limit:  # handed over for too long: a failure after all
                serves = self._undo(target, staged, before)
                raise DeploymentFailed(f"{intent.describe()}: still waiting for {exc.waiting} {age:.0f} s after it "
                                       f"started, over several reconciles (limit {self.handover_limit:g} s); "
                                       f"{serves}") from None
            self._record(intent.at(intent.step, staged, waiting=exc.waiting))
            log.warning("%s: %s: waiting for %s; handed over to the next reconcile", target.name,
                        intent.describe(), exc.waiting)
            raise DeploymentInProgress(f"in progress: {intent.describe()}, waiting for {exc.waiting}; "
                                       f"{self.serves(target, before)}; the next reconcile continues it") from None
        except BaseException as exc:
            serves = self._undo(target, staged, before)
            if isinstance(exc, KeyboardInterrupt):
                raise DeploymentInterrupted(f"interrupted while {intent.describe()}; {serves}") from exc
            if isinstance(exc, Exception):
                failed = DeploymentFailed(f"{fault_line(exc)}; {serves}")
                failed.step = intent.step  # where it stopped: "probe" means the smoke test failed (the history says so)
                raise failed from exc
            raise
        parts = [p for p in (staged.detail, probed, switched, confirmed) if p]
        if first > 0:
            parts.insert(1, "continued from an earlier reconcile")
        return f"{_label(previous)} -> v{release.version} ({'; '.join(parts)})"

    def _stage(self, target: DeployTarget, release: Release) -> Staged:
        with tempfile.TemporaryDirectory(prefix="greenlight-deploy-", dir=self.scratch_dir) as scratch:
            try:
                artifact = target.fetch(release, Path(scratch))
            except HandedOver:
                raise
            except Exception as exc:
                raise DeploymentFailed(f"cannot fetch v{release.version}'s model {release.model_data_url}: "
                                       f"{fault_line(exc)}") from exc
            self._step("fetched", target)
            return target.stage(release, artifact)

    @staticmethod
    def _probe(target: DeployTarget, release: Release, staged: Staged, smoke: SmokeTest | None) -> str:
        if smoke is None:
            log.warning("%s: v%s not smoke-tested: no smoke-test data and smoke.required = false", target.name,
                        release.version)
            return NOT_SMOKE_TESTED
        where = target.probe(staged, smoke)
        return f"smoke test {where}" if where.startswith("not run") else f"smoke test passed {where}".rstrip()

    def _undo(self, target: DeployTarget, staged: Staged | None, before: Observed) -> str:
        """Unstage (when something was staged), clear the intent, and say what serves now."""
        try:
            if staged is not None:
                target.unstage(staged)
        except Exception as exc:
            log.error("%s: cannot undo the deployment of v%s: %s", target.name, staged.version, fault_line(exc))
            return (f"undoing it failed ({fault_line(exc)}); the next reconcile finishes or undoes it; "
                    f"{self.serves(target, before)}")
        try:
            self.intents.save_intent(target.name, None)
        except Exception as exc:  # the record is only a hint: the next reconcile observes and cleans up
            log.warning("%s: cannot clear the intent record: %s", target.name, fault_line(exc))
        return self.serves(target, before)

    @staticmethod
    def serves(target: DeployTarget, before: Observed | None) -> str:
        """what_serves from a fresh observation of `target`."""
        try:
            return what_serves(before, target.observe())
        except Exception as exc:
            return what_serves(before, None, fault_line(exc))

    # -- recovery ----------------------------------------------------------------------------------

    def handed_over(self, target: DeployTarget) -> Intent | None:
        """The intent of a deployment of `target` an earlier reconcile handed over at a long wait (else None)."""
        try:
            record = self.intents.load_intent(target.name)
            intent = None if record is None else Intent.from_dict(record)
        except (KeyError, TypeError, ValueError):
            return None  # recover drops it, saying so
        return intent if intent is not None and intent.waiting else None

    def recover(self, target: DeployTarget) -> str | None:
        """Finish or undo a deployment a dead reconcile left (its intent record); None when there is none.

        Returns the note for the report. Raises: GreenlightError (or OSError) if the target cannot be
        observed or returned; the record is kept for the next reconcile.
        """
        try:
            record = self.intents.load_intent(target.name)
            intent = None if record is None else Intent.from_dict(record)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("%s: the intent record is unreadable (%s); dropped, observation decides", target.name, exc)
            self.intents.save_intent(target.name, None)
            return None
        if intent is None:
            return None
        what = f"a reconcile ({intent.holder}, {intent.updated}) stopped while {intent.describe()}" \
            if not intent.waiting else (f"a reconcile ({intent.holder}, {intent.updated}) handed over while "
                                        f"{intent.describe()} (waiting for {intent.waiting})")
        observed = target.observe()
        if observed.version == intent.version and observed.active:
            self.intents.save_intent(target.name, None)
            log.warning("%s: %s; it had finished: v%s serves", target.name, what, intent.version)
            return f"{what}; it had finished: v{intent.version} serves"
        if intent.staged is not None:
            target.unstage(intent.staged)
        self.intents.save_intent(target.name, None)
        serves = self.serves(target, observed)
        log.warning("%s: %s; undone: %s", target.name, what, serves)
        return f"{what}; undone: {serves}"
