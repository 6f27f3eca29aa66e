"""The deployment engine: desired state from the registry, observed state from each target, plan, apply.

    reconciler = Reconciler(group, registry, targets, lock=..., status=..., read=..., policy=...)
    report = reconciler.reconcile(trigger="event 5f1c...")   # or dry_run=True: the plan, no writes

One reconcile at a time per group (`lock`); inside it the registry is read fresh, so whichever
reconcile runs last acts on the newest state and two never interleave their writes. First every
target's leftover from a reconcile that died is finished or undone (Transaction.recover); then each
target is observed, planned and brought to the desired version by the deploy transaction
(deploy.engine.transaction). Targets are isolated: any exception inside one (an OSError, a SQLite
error, a bug) is that target's failure, in one line, in the report and `last_failure`; the others
still reconcile. Every result is reported and saved (`status`), and every decision is logged with
its reason. Ctrl-C saves what was done so far, then stops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from deploy.engine.faults import fault_line
from deploy.engine.model import APPROVAL, Action, Gate, Observed, Plan, Release, TargetKind, TargetPlan, make_plan
from deploy.engine.protocol import DeployTarget
from deploy.engine.smoke import SMOKE_KEY, SmokeTest
from deploy.engine.transaction import DeploymentInterrupted, IntentStore, Transaction
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

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "kind": self.kind.value, "action": self.action.value,
                "running": self.running, "desired": self.desired, "ok": self.ok, "message": self.message,
                "warning": self.warning}


@dataclass(frozen=True)
class Report:
    group: str
    trigger: str
    dry_run: bool
    started: str
    finished: str
    plan: Plan | None
    results: tuple[TargetResult, ...] = field(default_factory=tuple)
    stage: str | None = None  # issue 21: the stage this report is of (None: the implicit stage)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def changed(self) -> tuple[TargetResult, ...]:
        return tuple(r for r in self.results if r.ok and r.action in (Action.DEPLOY, Action.STOP))

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, **({"stage": self.stage} if self.stage else {}), "trigger": self.trigger,
                "dry_run": self.dry_run, "started": self.started,
                "finished": self.finished, "ok": self.ok,
                "desired": None if self.plan is None or self.plan.desired is None else self.plan.desired.version,
                "approved": [] if self.plan is None else list(self.plan.approved),
                "results": [r.to_dict() for r in self.results]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def running_after(result: dict[str, Any]) -> int | None:
    """The version a target runs after its result (a saved report's result dict)."""
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
                 transaction: Transaction | None = None, gate: Gate = APPROVAL, stage: str | None = None):
        self.group = group
        self.gate = gate
        self.stage = stage
        self.registry = registry
        self.targets = list(targets)
        self._lock = lock
        self.status = status
        self._read = read
        self.policy = policy
        self.smoke_required = smoke_required
        self.transaction = transaction if transaction is not None else Transaction(status)

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

    def reconcile(self, *, dry_run: bool = False, trigger: str = "manual") -> Report:
        """Plan and (unless dry_run) apply, under the group's lock; the report is saved when applied.

        Raises:
            ConflictError: another reconcile of the group held the lock for too long.
            KeyboardInterrupt: Ctrl-C (the report of what was done is saved first).
        """
        started = _now()
        if dry_run:
            plan, _, failed = self.survey()
            return Report(self.group, trigger, True, started, _now(), plan, self._dry_results(plan, failed),
                          self.stage)
        with self._lock():
            notes, unrecovered = self._recover()
            plan, observed, failed = self.survey(skip=tuple(unrecovered))
            failed.update(unrecovered)
            log.info("reconcile of %s%s (%s): %s is %s; eligible versions %s", self.group,
                     f" stage {self.stage}" if self.stage else "", trigger, self.gate.label,
                     "none" if plan.desired is None else f"v{plan.desired.version}", list(plan.approved) or "none")
            results = [self._failure(name, plan, why, notes.get(name)) for name, why in failed.items()]
            try:
                smoke, smoke_error = self._smoke(plan)
                befores = {o.target: o for o in observed}
                for step in plan.targets:
                    result = self._apply(step, plan.desired, smoke, smoke_error, befores[step.target])
                    results.append(replace(result, warning=_joined(notes.get(step.target), result.warning)))
            except KeyboardInterrupt as exc:
                message = exc.message if isinstance(exc, DeploymentInterrupted) else "interrupted (Ctrl-C)"
                done = {r.target for r in results}
                results += [TargetResult(s.target, s.kind, s.action, s.running, s.desired, False,
                                         message if i == 0 else "not attempted: the reconcile was interrupted")
                            for i, s in enumerate(s for s in plan.targets if s.target not in done)]
                self._save(Report(self.group, trigger, False, started, _now(), plan, tuple(results), self.stage))
                raise
            self._prune(results)
            report = Report(self.group, trigger, False, started, _now(), plan, tuple(results), self.stage)
            self._save(report)
        return report

    def _recover(self) -> tuple[dict[str, str], dict[str, str]]:
        """Finish or undo what a dead reconcile left on each target: (notes, targets that failed it)."""
        notes, failed = {}, {}
        for target in self.targets:
            try:
                note = self.transaction.recover(target)
            except Exception as exc:
                log.error("%s: cannot finish or undo an interrupted deployment: %s", target.name, fault_line(exc))
                failed[target.name] = f"cannot finish or undo an interrupted deployment: {fault_line(exc)}"
                continue
            if note is not None:
                notes[target.name] = note
        return notes, failed

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
               smoke_error: str | None, before: Observed) -> TargetResult:
        target = next(t for t in self.targets if t.name == step.target)

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
        failure = None
        try:
            if step.action is Action.STOP:
                log.warning("%s: stopping: %s", step.target, step.reason)
                message = target.stop()
            elif smoke_error is not None:
                failure = f"{smoke_error}; {self.transaction.serves(target, before)}"
            else:
                log.info("%s: deploying v%s: %s", step.target, step.desired, step.reason)
                message = self.transaction.deploy(target, release, smoke, before)
        except Exception as exc:  # any fault is this target's failure; the others still reconcile
            failure = fault_line(exc)
        if failure is not None:
            log.error("%s: %s failed after %.1f s: %s", step.target, step.action.value, time.monotonic() - started,
                      failure)
            return result(False, f"{step.action.value} failed: {failure}")
        log.info("%s: %s (%.1f s)", step.target, message, time.monotonic() - started)
        return result(True, message)

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
        try:
            self.status.save(data)
        except Exception as exc:
            log.error("cannot save the reconcile report of %s: %s", self.group, fault_line(exc))
