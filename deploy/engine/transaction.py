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

Progressive delivery (issue 22; deploy.engine.rollout). With a progressive TrafficPolicy
(`deploy(..., policy=)`), a probed version is not switched: the intent moves to step "rollout" with a
Rollout (phase, step, weights, step start, previous), recorded *before* each change of weights, and
the target shifts the first share to it (TrafficTarget.shift); the deployment raises
DeploymentInProgress, and every later reconcile takes it up (resume) and moves it at most one step:
it re-applies the recorded weights (so a kill between the record and the shift leaves nothing the record
does not say), reads the new version's traffic since the step began, and `decide`s: hold, the next
share, 100% and bake (switch), complete (confirm, intent cleared), or roll back (unstage: the previous
version takes 100% again) with the breach as the reason (RolledBack, a DeploymentFailed). A TrafficBreach from
the target (AWS: SageMaker rolled back, a named alarm fired) is rolled back the same way. Nothing sleeps
through a step. `abort` rolls a rollout back on request (`greenlight deploy --abort`); `recover` of a
rollout the plan no longer wants rolls it back too.

`hook(step, target)` is called at every step boundary (intent, fetched, staged, probed, switched,
confirmed, done; and shifted, baking, rolled-back in a rollout): the fault-injection tests raise there.
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
from typing import Any, NoReturn, Protocol

from deploy.engine.deadline import HandedOver
from deploy.engine.faults import fault_line
from deploy.engine.model import Observed, Release
from deploy.engine.protocol import DeployTarget, Staged, TrafficBreach, TrafficTarget
from deploy.engine.rollout import Move, Phase, Rollout, decide
from deploy.engine.smoke import SmokeTest
from deploy.engine.traffic import TrafficPolicy, VersionTraffic
from greenlight.errors import ConfigurationError, DeploymentFailed

__all__ = ["NOT_SMOKE_TESTED", "STEPS", "DeploymentInProgress", "DeploymentInterrupted", "Intent", "IntentStore",
           "MemoryIntents", "RolledBack", "Transaction", "what_serves"]

log = logging.getLogger(__name__)

STEPS = ("intent", "fetched", "staged", "probed", "switched", "confirmed", "done")
_ORDER = ("stage", "probe", "switch", "confirm", "rollout")  # Intent.step: the step about to run
HANDOVER_LIMIT_SECONDS = 3600.0  # a deployment still handed over this long after it started fails (and is undone)
NOT_SMOKE_TESTED = "smoke test not run: no smoke-test data and smoke.required = false"
_VERBS = {"stage": "staging", "probe": "probing", "switch": "switching to", "confirm": "confirming",
          "rollout": "rolling out"}


class DeploymentInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during a deployment; `message` says what was undone and what serves."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class DeploymentInProgress(Exception):  # noqa: N818 (not a failure: a later reconcile continues it)
    """A deployment handed over to a later reconcile at a long wait (or a rollout between two steps); the message
    says what waits and what serves; `rollout`: the rollout's record with per-version `counts`, if one."""

    def __init__(self, message: str, rollout: dict[str, Any] | None = None):
        super().__init__(message)
        self.rollout = rollout


class RolledBack(DeploymentFailed):
    """A rollout breached a rule (or was aborted): the previous version serves again; `reason` says why."""

    def __init__(self, message: str, reason: str, rollout: dict[str, Any] | None = None):
        super().__init__(message)
        self.reason, self.rollout, self.step = reason, rollout, "rollout"


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
    rollout: dict[str, Any] | None = None  # step "rollout": the Rollout's record (deploy.engine.rollout)

    def describe(self) -> str:
        where = ""
        if self.rollout is not None:
            try:
                where = f" ({Rollout.from_dict(self.rollout).describe()})"
            except (KeyError, TypeError, ValueError):
                where = " (unreadable rollout record)"
        return (f"{_VERBS.get(self.step, self.step)} v{self.version} on {self.target}{where}; "
                f"previous {_label(self.previous)}")

    def at(self, step: str, staged: Staged | None = None, waiting: str | None = None) -> Intent:
        return replace(self, step=step, staged=staged or self.staged, updated=_now(), waiting=waiting)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "version": self.version, "previous": self.previous, "step": self.step,
                "staged": None if self.staged is None else self.staged.to_dict(), "holder": self.holder,
                "started": self.started, "updated": self.updated, "summary": self.describe(), "waiting": self.waiting,
                "rollout": self.rollout}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Intent:
        """Raises: KeyError, TypeError, ValueError on a record that is not an Intent."""
        staged = data.get("staged")
        previous = data.get("previous")
        return cls(str(data["target"]), int(data["version"]), None if previous is None else int(previous),
                   str(data["step"]), None if staged is None else Staged.from_dict(staged), str(data.get("holder")),
                   str(data.get("started")), str(data.get("updated")),
                   None if data.get("waiting") is None else str(data["waiting"]),
                   dict(data["rollout"]) if isinstance(data.get("rollout"), Mapping) else None)


def what_serves(before: Observed | None, after: Observed | None, error: str | None = None) -> str:
    """What serves now, in words, from an observation made after the failure (`error`: it could not be made)."""
    if after is None:
        return f"what serves now cannot be observed ({error})"
    served = before is not None and before.version is not None and before.active
    if after.version is None:
        return "nothing serves now" if served else "nothing was deployed before, so nothing is"
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
               before: Observed | None = None, *, resume: Intent | None = None,
               policy: TrafficPolicy | None = None) -> str:
        """Bring `target` to `release` (module docstring); what changed, in words. `resume`: the intent of a
        deployment of this release a earlier reconcile handed over; it continues at its step. `policy`: how
        traffic moves to it (None or all-at-once: the switch; canary, linear: a rollout, module docstring).

        Raises:
            DeploymentFailed: naming the step and what serves now (the previous version, returned to).
            DeploymentInProgress: a wait handed over to a later reconcile; nothing undone (module docstring).
            DeploymentInterrupted: Ctrl-C or SIGTERM; undone, and `message` says what serves.
            RolledBack: the rollout breached a rule; the previous version serves again.
            ConfigurationError: a progressive policy on a target that cannot shift traffic.
        """
        progressive = policy is not None and policy.progressive
        if progressive and not isinstance(target, TrafficTarget):
            raise ConfigurationError(
                f"{target.name}: traffic = {policy.traffic.value!r} needs traffic shifting, which "  # type: ignore[union-attr]
                f"{type(target).__name__} does not implement yet (issue 22); set traffic = \"all-at-once\" for it")
        before = target.observe() if before is None else before
        rolling = resume is not None and resume.version == release.version and resume.step == "rollout"
        if progressive and not rolling and (before.version is None or not before.active):
            progressive = False  # nothing serves to share the traffic with: the first version takes it all at once
        # (a rollout under way goes on although the target is observed mid-change: SageMaker's update shows the
        # new config, unverified, before the engine's last step)
        started = _now(self._wall())
        if rolling and resume is not None:
            intent, staged = replace(resume, holder=self.holder), resume.staged  # still handed over if killed now
        elif resume is not None and resume.version == release.version and resume.step in _ORDER:
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
                if intent.step == "rollout" and progressive and isinstance(target, TrafficTarget) and policy:
                    return self._advance(target, intent, staged, policy, smoke, before)
                if intent.step == "rollout":  # the policy became all-at-once during a rollout: the rest at once
                    switched = target.switch(staged)
                if progressive and _ORDER.index(intent.step) <= _ORDER.index("switch") \
                        and isinstance(target, TrafficTarget) and policy is not None:
                    self._begin(target, intent, staged, policy, probed)
                if _ORDER.index(intent.step) <= _ORDER.index("switch"):
                    switched = target.switch(staged)
                    intent = intent.at("confirm")
                    self._record(intent)
                    self._step("switched", target)
                confirmed = target.confirm(staged, smoke)
                self._step("confirmed", target)
                self.intents.save_intent(target.name, None)
                self._step("done", target)
        except DeploymentInProgress:
            raise
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
            if isinstance(exc, RolledBack):
                raise RolledBack(f"rolled back: {exc.reason}; {serves}", exc.reason, exc.rollout) from None
            if isinstance(exc, Exception):
                failed = DeploymentFailed(f"{fault_line(exc)}; {serves}")
                failed.step = intent.step  # where it stopped: "probe" means the smoke test failed (the history says so)
                raise failed from exc
            raise
        parts = [p for p in (staged.detail, probed, switched, confirmed) if p]
        if first > 0:
            parts.insert(1, "continued from an earlier reconcile")
        return f"{_label(previous)} -> v{release.version} ({'; '.join(parts)})"

    # -- progressive delivery -------------------------------------------------------------------

    def _begin(self, target: TrafficTarget, intent: Intent, staged: Staged, policy: TrafficPolicy,
               probed: str | None) -> None:
        """The probed version's first share; raises DeploymentInProgress (the next reconcile moves it on)."""
        rollout = Rollout.begin(intent.version, intent.previous, policy, self._wall())
        intent = replace(intent.at("rollout", staged, waiting=rollout.describe()), rollout=rollout.to_dict())
        self._record(intent)  # before the weights change: the record never says less than what serves
        changed = target.shift(staged, intent.previous, rollout.percent)
        self._step("shifted", target)
        log.info("%s: %s: %s", target.name, probed or "not smoke-tested", rollout.describe())
        raise DeploymentInProgress(f"in progress: {rollout.describe()}{f' ({changed})' if changed else ''}; "
                                   f"{probed or NOT_SMOKE_TESTED}; the next reconcile moves it on",
                                   self._counted(target, rollout))

    def _counted(self, target: TrafficTarget, rollout: Rollout) -> dict[str, Any]:
        """The rollout's record with each version's answers in the current step (`counts`), for the status."""
        counts: dict[str, dict[str, Any]] = {}
        for version in (rollout.version, rollout.previous):
            if version is None:
                continue
            try:
                seen = target.traffic(version, rollout.step_started)
            except Exception as exc:  # the status says it; the rules read the new version's own, below
                counts[f"v{version}"] = {"error": fault_line(exc)}
                continue
            counts[f"v{version}"] = {"requests": seen.requests, "errors_5xx": seen.errors_5xx, "p99_ms": seen.p99_ms}
        return {**rollout.to_dict(), "counts": counts, "target": target.name}

    def _advance(self, target: TrafficTarget, intent: Intent, staged: Staged | None, policy: TrafficPolicy,
                 smoke: SmokeTest | None, before: Observed) -> str:
        """One reconcile's move of a rollout (module docstring); raises DeploymentInProgress until it ends."""
        if staged is None or intent.rollout is None:
            raise DeploymentFailed("the rollout's record has no staged version or rollout state")
        rollout = Rollout.from_dict(intent.rollout)
        try:
            self._apply(target, staged, rollout, before)
            seen: VersionTraffic = target.traffic(rollout.version, rollout.step_started)
        except TrafficBreach as exc:  # the platform's own verdict: the same rollback as a breach of the rules
            self._roll_back(target, rollout, f"{rollout.label} v{rollout.version}: {exc.reason}")
        decision = decide(rollout, policy, seen, self._wall())
        after = decision.rollout
        log.info("%s: %s", target.name, decision.reason)
        if decision.move is Move.ROLL_BACK:
            self._roll_back(target, rollout, decision.reason)
        if decision.move is Move.COMPLETE:
            confirmed = target.confirm(staged, smoke)
            self.intents.save_intent(target.name, None)
            self._step("done", target)
            parts = [f"{after.traffic.value} rollout complete: {decision.reason}", confirmed]
            return f"{_label(intent.previous)} -> v{intent.version} ({'; '.join(p for p in parts if p)})"
        if decision.move is not Move.HOLD:
            self._record(replace(intent.at("rollout", staged, waiting=after.describe()), rollout=after.to_dict()))
            try:
                self._apply(target, staged, after, before)
            except TrafficBreach as exc:
                self._roll_back(target, after, f"{after.label} v{after.version}: {exc.reason}")
            self._step("baking" if decision.move is Move.BAKE else "shifted", target)
        elif intent.waiting != after.describe():
            self._record(replace(intent.at("rollout", staged, waiting=after.describe()), rollout=after.to_dict()))
        raise DeploymentInProgress(f"in progress: {after.describe()}; {decision.reason}",
                                   self._counted(target, after))

    def _roll_back(self, target: TrafficTarget, rollout: Rollout, reason: str) -> NoReturn:
        """End `rollout` as rolled back for `reason` (a breach, or the platform's TrafficBreach); the caller's
        undo puts the previous version back. Raises: RolledBack, always."""
        after = replace(rollout, phase=Phase.ROLLED_BACK, reason=reason)
        self._step("rolled-back", target)
        raise RolledBack(reason, reason, self._counted(target, after))

    @staticmethod
    def _apply(target: TrafficTarget, staged: Staged, rollout: Rollout, before: Observed) -> None:
        """Make the target serve what `rollout` records (idempotent: nothing changes when it does already)."""
        if rollout.phase is Phase.SHIFTING:
            target.shift(staged, rollout.previous, rollout.percent)
        elif rollout.phase in (Phase.BAKING, Phase.COMPLETE) and not (before.version == rollout.version
                                                                      and before.active):
            target.switch(staged)

    def abort(self, target: DeployTarget, why: str) -> str | None:
        """Roll back the rollout in progress on `target` (None when there is none): the previous version takes
        100% again; returns what serves now, in words."""
        try:
            record = self.intents.load_intent(target.name)
            intent = None if record is None else Intent.from_dict(record)
        except (KeyError, TypeError, ValueError):
            return None
        if intent is None or intent.step != "rollout" or intent.staged is None:
            return None
        before = target.observe()
        target.unstage(intent.staged)
        self.intents.save_intent(target.name, None)
        serves = self.serves(target, before)
        log.warning("%s: %s: rolled back (%s); %s", target.name, intent.describe(), why, serves)
        return serves

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
        if staged is not None:
            try:
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
        if observed.version == intent.version and observed.active and intent.step != "rollout":
            self.intents.save_intent(target.name, None)
            log.warning("%s: %s; it had finished: v%s serves", target.name, what, intent.version)
            return f"{what}; it had finished: v{intent.version} serves"
        if intent.staged is not None:
            target.unstage(intent.staged)
        self.intents.save_intent(target.name, None)
        serves = self.serves(target, observed)
        log.warning("%s: %s; undone: %s", target.name, what, serves)
        return f"{what}; undone: {serves}"
