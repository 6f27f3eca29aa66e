"""The deployment engine: desired state from the registry, observed state from each target, plan, apply.

    reconciler = Reconciler(group, registry, targets, lock=..., status=..., read=..., policy=...)
    report = reconciler.reconcile(trigger="event 5f1c...", cause=Cause(Trigger.APPROVAL, "5f1c..."))
    report = reconciler.reconcile(dry_run=True)   # the plan, no writes

One reconcile at a time per group (`lock`); inside it the registry is read fresh, so whichever
reconcile runs last acts on the newest state and two never interleave their writes. First every
target's leftover from a reconcile that died is finished or undone (Transaction.recover); then each
target is observed, planned and brought to the desired version by the deploy transaction
(deploy.engine.transaction). Targets are isolated: any exception inside one (an OSError, a SQLite
error, a bug) is that target's failure, in one line, in the report and `last_failure`; the others
still reconcile. Every result is reported and saved (`status`), and every decision is logged with
its reason. Ctrl-C saves what was done so far, then stops. Every target change (deploy or stop, done or
failed) is appended to the deployment history (deploy.engine.history) as it ends; a history that cannot
be written never fails the deployment: it is logged and reported (`history_error` in the status).

With a deadline (deploy.engine.deadline; the approval handler passes its invocation's), each target
that acts gets an equal share of the time left, and a wait that would outlast it hands over: the
target's result is "in progress" (ok, `in_progress`), its intent is kept, and the next reconcile
continues it when the same version is still desired, or finishes or undoes it first when not. A target
reached with no time left is not started ("in progress" too). The lease ends with the invocation.

Progressive delivery (issue 22): `traffic` gives a target's TrafficPolicy; a rollout in progress is a
deployment handed over between steps (its result "in progress" with `rollout`: phase, weights, per-version
counts), taken up by every reconcile. A rollout that breached (or was aborted, `abort`) fails the target
with the reason, and the saved status remembers it (`rolled_back`: per target, the version, reason, time and
its approval's LastModifiedTime): that version is not deployed again on that target until its approval
changes (rejected and approved again, or a new version approved); the result says so.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from deploy.engine.deadline import Deadline, within
from deploy.engine.faults import fault_line
from deploy.engine.history import DEFAULT_STAGE, Cause, HistoryEvent, HistoryStore, iso_ms
from deploy.engine.model import APPROVAL, Action, Gate, Observed, Plan, Release, TargetKind, TargetPlan, make_plan
from deploy.engine.protocol import DeployTarget
from deploy.engine.smoke import SMOKE_KEY, SmokeTest
from deploy.engine.traffic import TrafficPolicy
from deploy.engine.transaction import (DeploymentInProgress, DeploymentInterrupted, Intent, IntentStore, RolledBack,
                                       Transaction)
from greenlight.errors import NotFoundError

__all__ = ["Reconciler", "Report", "StatusStore", "TargetResult"]

log = logging.getLogger(__name__)


class StatusStore(IntentStore, Protocol):
    """Where the last report, the last failure and the intents in flight of a group are kept (files
    locally, DynamoDB on AWS). `load` never raises for an unreadable report: it says so and gives None."""

    def save(self, report: dict[str, Any]) -> None: ...

    def load(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class TargetResult:
    target: str
    kind: TargetKind
    action: Action
    running: int | None
    desired: int | None
    ok: bool
    message: str
    warning: str | None = None
    in_progress: bool = False  # handed over at a long wait: a later reconcile continues it
    rollout: dict[str, Any] | None = None  # a rollout in progress or rolled back: phase, weights, counts, ...
    rolled_back: str | None = None  # why this reconcile rolled the desired version back (issue 22)

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "kind": self.kind.value, "action": self.action.value,
                "running": self.running, "desired": self.desired, "ok": self.ok, "message": self.message,
                "warning": self.warning, "in_progress": self.in_progress, "rollout": self.rollout,
                "rolled_back": self.rolled_back}


@dataclass(frozen=True)
class Report:
    group: str
    trigger: str
    dry_run: bool
    started: str
    finished: str
    plan: Plan | None
    results: tuple[TargetResult, ...] = field(default_factory=tuple)
    history_error: str | None = None
    stage: str = DEFAULT_STAGE  # issue 21: the stage this report is of (shown only when not the implicit one)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def changed(self) -> tuple[TargetResult, ...]:
        return tuple(r for r in self.results if r.ok and r.action in (Action.DEPLOY, Action.STOP))

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, **({"stage": self.stage} if self.stage != DEFAULT_STAGE else {}),
                "trigger": self.trigger,
                "dry_run": self.dry_run, "started": self.started,
                "finished": self.finished, "ok": self.ok,
                "desired": None if self.plan is None or self.plan.desired is None else self.plan.desired.version,
                "approved": [] if self.plan is None else list(self.plan.approved),
                "results": [r.to_dict() for r in self.results], "history_error": self.history_error}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def running_after(result: dict[str, Any]) -> int | None:
    """The version a target runs after its result (a saved report's result dict)."""
    if result.get("in_progress"):
        return result.get("running")
    if result.get("ok") and result.get("action") == Action.DEPLOY.value:
        return result.get("desired")
    if result.get("ok") and result.get("action") == Action.STOP.value:
        return None
    return result.get("running")


def _since(results: list[dict[str, Any]], previous: dict[str, Any], now: str) -> dict[str, Any]:
    """Per target: the version it runs and since when (kept from the previous report while unchanged);
    what `greenlight promote` reads for soak_minutes."""
    before = previous.get("since") or {}
    since = {}
    for result in results:
        version = running_after(result)
        if version is None:
            continue
        kept = before.get(result["target"]) or {}
        since[result["target"]] = {"version": version,
                                   "since": kept["since"] if kept.get("version") == version and kept.get("since")
                                   else now}
    return since


def _joined(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


class Reconciler:
    """Brings every target of one model package group to the newest Approved version."""

    def __init__(self, group: str, registry, targets: Sequence[DeployTarget], *,
                 lock: Callable[[], AbstractContextManager], status: StatusStore,
                 read: Callable[[str], bytes], policy, smoke_required: bool = True,
                 transaction: Transaction | None = None, history: HistoryStore | None = None,
                 stage: str = DEFAULT_STAGE, gate: Gate = APPROVAL,
                 traffic: Mapping[str, TrafficPolicy] | None = None):
        self.group = group
        self.gate = gate
        self.registry = registry
        self.targets = list(targets)
        self._lock = lock
        self.status = status
        self._read = read
        self.policy = policy
        self.smoke_required = smoke_required
        self.transaction = transaction if transaction is not None else Transaction(status)
        self.history = history
        self.stage = stage
        self._history_errors: list[str] = []
        self.traffic = dict(traffic or {})  # target name -> TrafficPolicy (absent: all at once)
        self._rolled_back: dict[str, Any] = {}  # the saved status's, read at the start of each reconcile

    # -- read only ---------------------------------------------------------------------------

    def _versions(self):
        try:
            return self.registry.list_versions(self.group)
        except NotFoundError:  # the group does not exist yet: nothing registered, nothing approved
            return []

    def observe(self, skip: Sequence[str] = ()) -> tuple[list[Observed], dict[str, str]]:
        """Each target's observed state, and the targets that could not be observed (name -> why, one line)."""
        observed, failed = [], {}
        for target in self.targets:
            if target.name in skip:
                continue
            try:
                observed.append(target.observe())
            except Exception as exc:  # any fault is this target's: the others are still observed
                log.error("cannot observe %s: %s", target.name, fault_line(exc))
                failed[target.name] = f"cannot observe it: {fault_line(exc)}"
        return observed, failed

    def survey(self, skip: Sequence[str] = ()) -> tuple[Plan, list[Observed], dict[str, str]]:
        """One read of everything (no write call): the plan, each target's observation, the unobservable."""
        observed, failed = self.observe(skip)
        return (make_plan(self.group, self._versions(), observed, self.policy, SMOKE_KEY, self.gate), observed,
                failed)

    # -- reconcile ---------------------------------------------------------------------------

    def reconcile(self, *, dry_run: bool = False, trigger: str = "manual", cause: Cause | None = None,
                  deadline: Deadline | None = None) -> Report:
        """Plan and (unless dry_run) apply, under the group's lock; the report is saved when applied.
        `deadline`: hand long waits over to a later reconcile rather than outlast it (module docstring).

        Raises:
            ConflictError: another reconcile of the group held the lock for too long.
            KeyboardInterrupt: Ctrl-C (the report of what was done is saved first).
        """
        started = _now()
        if dry_run:
            plan, _, failed = self.survey()
            return Report(self.group, trigger, True, started, _now(), plan, self._dry_results(plan, failed),
                          stage=self.stage)
        cause = cause if cause is not None else Cause()
        self._history_errors = []
        with within(deadline), self._lock():
            self._rolled_back = self._saved().get("rolled_back") or {}
            notes, unrecovered, handed = self._recover()
            plan, observed, failed = self.survey(skip=tuple(unrecovered))
            failed.update(unrecovered)
            log.info("reconcile of %s%s (%s): %s is %s; eligible versions %s", self.group,
                     f" stage {self.stage}" if self.stage != DEFAULT_STAGE else "", trigger, self.gate.label,
                     "none" if plan.desired is None else f"v{plan.desired.version}", list(plan.approved) or "none")
            results = [self._failure(name, plan, why, notes.get(name)) for name, why in failed.items()]
            try:
                smoke, smoke_error = self._smoke(plan)
                befores = {o.target: o for o in observed}
                acting = [s.target for s in plan.targets if s.action in (Action.DEPLOY, Action.STOP)]
                for step in plan.targets:
                    share = None if deadline is None else deadline.share(len(acting))
                    if step.target in acting:
                        acting.remove(step.target)
                    with within(share):
                        result = self._continue(step, plan.desired, smoke, smoke_error, befores[step.target],
                                                handed.get(step.target), share, cause)
                    results.append(replace(result, warning=_joined(notes.get(step.target), result.warning)))
            except KeyboardInterrupt as exc:
                message = exc.message if isinstance(exc, DeploymentInterrupted) else "interrupted (Ctrl-C)"
                done = {r.target for r in results}
                results += [TargetResult(s.target, s.kind, s.action, s.running, s.desired, False,
                                         message if i == 0 else "not attempted: the reconcile was interrupted")
                            for i, s in enumerate(s for s in plan.targets if s.target not in done)]
                self._save(Report(self.group, trigger, False, started, _now(), plan, tuple(results),
                                  self._history_error(), self.stage))
                raise
            if deadline is None or deadline.remaining() > 0:  # housekeeping only with time to spare
                self._prune(results)
            report = Report(self.group, trigger, False, started, _now(), plan, tuple(results), self._history_error(),
                            self.stage)
            self._save(report)
        return report

    def _recover(self) -> tuple[dict[str, str], dict[str, str], dict[str, Intent]]:
        """Finish or undo what a dead reconcile left on each target: (notes, targets that failed it, the
        deployments handed over at a long wait, which _continue takes up)."""
        notes, failed, handed = {}, {}, {}
        for target in self.targets:
            try:
                intent = self.transaction.handed_over(target)
                if intent is not None:
                    handed[target.name] = intent
                    continue
                note = self.transaction.recover(target)
            except Exception as exc:
                log.error("%s: cannot finish or undo an interrupted deployment: %s", target.name, fault_line(exc))
                failed[target.name] = f"cannot finish or undo an interrupted deployment: {fault_line(exc)}"
                continue
            if note is not None:
                notes[target.name] = note
        return notes, failed, handed

    def _continue(self, step: TargetPlan, release: Release | None, smoke: SmokeTest | None, smoke_error: str | None,
                  before: Observed | None, handed: Intent | None, share: Deadline | None,
                  cause: Cause) -> TargetResult:
        """_apply, taking up a handed-over deployment (or finishing or undoing it first when the plan moved
        on), or leaving the target for the next reconcile when its share of the time is gone."""
        target = next(t for t in self.targets if t.name == step.target)
        resumes = handed is not None and step.desired == handed.version and (
            step.action is Action.DEPLOY or handed.step == "rollout")
        if resumes and step.action is not Action.DEPLOY:  # baking: it runs the new version, the rollout goes on
            step = replace(step, action=Action.DEPLOY, reason=f"the rollout of v{step.desired} goes on")
        if share is not None and share.remaining() <= 0 and (step.action is Action.DEPLOY or handed is not None):
            log.warning("%s: not started: this invocation's time is up; the next reconcile does it", step.target)
            return TargetResult(step.target, step.kind, step.action, step.running, step.desired, True,
                                "in progress: not started, this invocation's time is up; the next reconcile does it",
                                step.warning, in_progress=True)
        note = None
        if handed is not None and not resumes:
            try:
                note = self.transaction.recover(target)
            except Exception as exc:
                return TargetResult(step.target, step.kind, step.action, step.running, step.desired, False,
                                    f"cannot finish or undo a deployment handed over earlier: {fault_line(exc)}")
            before = None
        result = self._apply(step, release, smoke, smoke_error, before, cause, handed if resumes else None)
        return replace(result, warning=_joined(note, result.warning))

    def _kind(self, name: str) -> TargetKind:
        return next(t.kind for t in self.targets if t.name == name)

    def _failure(self, name: str, plan: Plan, why: str, note: str | None) -> TargetResult:
        """The result of a target that could not be observed (it is reported, never dropped)."""
        desired = None if plan.desired is None else plan.desired.version
        return TargetResult(name, self._kind(name), Action.NONE, None, desired, False, why, note)

    def _dry_results(self, plan: Plan, failed: dict[str, str]) -> tuple[TargetResult, ...]:
        results = [TargetResult(s.target, s.kind, s.action, s.running, s.desired, True, f"would {s.action.value}: "
                                f"{s.reason}" if s.action in (Action.DEPLOY, Action.STOP) else s.reason, s.warning)
                   for s in plan.targets]
        return tuple(results) + tuple(self._failure(n, plan, why, None) for n, why in failed.items())

    def _smoke(self, plan: Plan) -> tuple[SmokeTest | None, str | None]:
        """The desired version's smoke test, read once per reconcile (only when some target deploys).

        (None, None) only when the version has no smoke-test data and smoke.required = false; data that
        is named but cannot be read is an error whatever the setting.
        """
        release = plan.desired
        if release is None or not any(s.action is Action.DEPLOY for s in plan.targets):
            return None, None
        if not release.smoke_uri:
            why = (f"v{release.version} has no smoke-test data (CustomerMetadataProperties {SMOKE_KEY!r}); "
                   "retrain it with this Greenlight, or set smoke.required = false")
            return None, why if self.smoke_required else None
        try:
            return SmokeTest.from_json(self._read(release.smoke_uri), release.smoke_uri), None
        except Exception as exc:
            return None, f"cannot read v{release.version}'s smoke-test data at {release.smoke_uri}: {fault_line(exc)}"

    def _apply(self, step: TargetPlan, release: Release | None, smoke: SmokeTest | None,
               smoke_error: str | None, before: Observed | None, cause: Cause,
               resume: Intent | None = None) -> TargetResult:
        target = next(t for t in self.targets if t.name == step.target)

        def recorded(result: TargetResult, smoked: str | None) -> TargetResult:
            self._record(step, result, cause, smoked, time.monotonic() - started)
            return result

        def result(ok: bool, message: str) -> TargetResult:
            return TargetResult(step.target, step.kind, step.action, step.running, step.desired, ok, message,
                                step.warning)

        if step.action is Action.NONE:
            log.info("%s: nothing to do: %s", step.target, step.reason)
            return result(True, step.reason)
        if step.action is Action.KEEP:
            log.warning("%s: %s; %s", step.target, step.reason, step.warning)
            return result(True, step.reason)
        started = time.monotonic()
        failure: str | None = None
        reached: str | None = None
        message = ""
        try:
            if step.action is Action.STOP:
                log.warning("%s: stopping: %s", step.target, step.reason)
                message = target.stop()
            elif smoke_error is not None:
                failure = f"{smoke_error}; {self.transaction.serves(target, before)}"
            elif release is None:  # plan() deploys only a version it found in the registry
                failure = f"no release of v{step.desired} to deploy; {self.transaction.serves(target, before)}"
            elif resume is None and (held := self._held(step.target, release)) is not None:
                log.warning("%s: %s", step.target, held)
                return replace(result(True, held), action=Action.KEEP)
            else:
                log.info("%s: deploying v%s: %s", step.target, step.desired, step.reason)
                message = self.transaction.deploy(target, release, smoke, before, resume=resume,
                                                  policy=self.traffic.get(step.target))
        except DeploymentInProgress as exc:  # handed over at a long wait, or a rollout between steps: not a failure
            log.info("%s: %s", step.target, exc)
            return replace(result(True, str(exc)), in_progress=True, rollout=exc.rollout)
        except RolledBack as exc:
            log.error("%s: %s", step.target, exc)
            self._remember(step.target, release, exc.reason)
            return recorded(replace(result(False, f"deploy failed: {exc}"), rollout=exc.rollout,
                                    rolled_back=exc.reason), "passed")
        except Exception as exc:  # any fault is this target's failure; the others still reconcile
            failure, reached = fault_line(exc), getattr(exc, "step", None)
        if failure is not None:
            log.error("%s: %s failed after %.1f s: %s", step.target, step.action.value, time.monotonic() - started,
                      failure)
            return recorded(result(False, f"{step.action.value} failed: {failure}"),
                            _smoke_outcome(step.action, smoke, smoke_error, reached, ok=False))
        log.info("%s: %s (%.1f s)", step.target, message, time.monotonic() - started)
        return recorded(result(True, message), _smoke_outcome(step.action, smoke, smoke_error, None, ok=True))

    # -- rollbacks (issue 22) ------------------------------------------------------------------

    def _saved(self) -> dict[str, Any]:
        try:
            return self.status.load() or {}
        except Exception as exc:  # an unreadable store: nothing remembered (it is rewritten by this reconcile)
            log.warning("cannot read the saved status of %s: %s", self.group, fault_line(exc))
            return {}

    def _remember(self, target: str, release: Release | None, reason: str) -> None:
        if release is None:
            return
        self._rolled_back[target] = {"version": release.version, "reason": reason, "at": _now(),
                                     "approved_at": release.approved_at}

    def _held(self, target: str, release: Release) -> str | None:
        """Why `release` is not deployed on `target` again: rolled back there, and not approved again since."""
        record = self._rolled_back.get(target) or {}
        if record.get("version") != release.version or record.get("approved_at") != release.approved_at:
            return None
        return (f"not retried: v{release.version} was rolled back at {record.get('at')} ({record.get('reason')}); "
                f"approve it again (reject, then approve) or approve a newer version to deploy")

    def abort(self, trigger: str = "greenlight deploy --abort") -> Report:
        """Roll back every rollout in progress of this group (stage) under its lock; the report says what serves.
        The aborted version is not retried until approved again."""
        started = _now()
        results = []
        with self._lock():
            self._rolled_back = self._saved().get("rolled_back") or {}
            plan, _, _ = self.survey()
            for target in self.targets:
                step = next((s for s in plan.targets if s.target == target.name), None)
                try:
                    serves = self.transaction.abort(target, f"aborted ({trigger})")
                except Exception as exc:
                    results.append(TargetResult(target.name, target.kind, Action.NONE, None, None, False,
                                                f"cannot abort its rollout: {fault_line(exc)}"))
                    continue
                if serves is None or step is None:
                    continue
                reason = f"aborted by {trigger}"
                self._remember(target.name, plan.desired, reason)
                result = TargetResult(target.name, target.kind, Action.DEPLOY, step.running, step.desired, False,
                                      f"rolled back: {reason}; {serves}", rolled_back=reason)
                self._record(step, result, Cause(), "passed", 0.0)
                results.append(result)
            report = Report(self.group, trigger, False, started, _now(), plan, tuple(results),
                            self._history_error(), self.stage)
            if results:
                self._save(report)
        return report

    # -- history -----------------------------------------------------------------------------

    def _record(self, step: TargetPlan, result: TargetResult, cause: Cause, smoked: str | None,
                seconds: float) -> None:
        """Append this change to the history; a failure to is logged and reported, never raised."""
        if self.history is None:
            return
        event = HistoryEvent(
            at=iso_ms(datetime.now(UTC)), group=self.group, stage=self.stage, target=step.target,
            kind=step.kind.value, action=step.action.value, from_version=step.running,
            to_version=None if step.action is Action.STOP else step.desired, ok=result.ok,
            trigger=cause.trigger.value, event_id=cause.event_id, approver=cause.approver, smoke=smoked,
            duration_seconds=round(seconds, 3), failure=None if result.ok else result.message)
        try:
            self.history.append(event)
        except Exception as exc:  # the history never blocks a deployment
            line = f"{step.target}: cannot append to the deployment history: {fault_line(exc)}"
            log.error("%s", line)
            self._history_errors.append(line)

    def _history_error(self) -> str | None:
        return "; ".join(self._history_errors) or None

    def _prune(self, results: list[TargetResult]) -> None:
        """Retention on every target, never a version that runs (on any target) or is desired."""
        keep = frozenset(v for r in results for v in (r.running, r.desired) if v is not None)
        for target in self.targets:
            try:
                for what in target.prune(keep):
                    log.info("%s: pruned %s", target.name, what)
            except Exception as exc:  # retention is housekeeping: never fail a reconcile for it
                log.warning("%s: pruning failed (kept everything): %s", target.name, fault_line(exc))

    def _save(self, report: Report) -> None:
        try:
            previous = self.status.load() or {}
        except Exception as exc:  # an unreadable store must not block this report: it is rebuilt from it
            log.warning("cannot read the saved status of %s (%s); it is rewritten from this reconcile", self.group,
                        fault_line(exc))
            previous = {}
        data = report.to_dict()
        failures = [r for r in report.results if not r.ok]
        data["since"] = _since(data["results"], previous, report.finished)
        data["last_failure"] = ({"at": report.finished, "trigger": report.trigger,
                                 "targets": {r.target: r.message for r in failures}}
                                if failures else previous.get("last_failure"))
        data["rolled_back"] = {**(previous.get("rolled_back") or {}), **self._rolled_back}
        try:
            self.status.save(data)
        except Exception as exc:
            log.error("cannot save the reconcile report of %s: %s", self.group, fault_line(exc))


def _smoke_outcome(action: Action, smoke: SmokeTest | None, smoke_error: str | None, reached: str | None,
                   ok: bool) -> str | None:
    """What the history says of the smoke test: passed, failed, not run (why), or not reached."""
    if action is not Action.DEPLOY:
        return None
    if smoke_error is not None:
        return f"not run: {smoke_error}"
    if smoke is None:
        return "not run: no smoke-test data and smoke.required = false"
    if ok or reached in ("switch", "confirm"):
        return "passed"
    return "failed" if reached == "probe" else "not reached"
