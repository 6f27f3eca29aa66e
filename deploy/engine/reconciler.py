"""The deployment engine: desired state from the registry, observed state from each target, plan, apply.

    reconciler = Reconciler(config, registry, targets, lock=..., status=..., read=...)
    report = reconciler.reconcile(trigger="event 5f1c...")   # or dry_run=True: the plan, no writes

One reconcile at a time per group (`lock`); inside it the registry is read fresh, so whichever
reconcile runs last acts on the newest state and two never interleave their writes. Targets are
independent: one failing (observe, smoke data, deploy) does not stop the others, and every result is
reported and saved (`status`). Every decision is logged with its reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from deploy.engine.model import Action, Observed, Plan, Release, TargetKind, TargetPlan, make_plan
from deploy.engine.protocol import DeployTarget
from deploy.engine.smoke import SMOKE_KEY, SmokeTest
from greenlight.errors import DataError, DeploymentFailed, GreenlightError, NotFoundError

__all__ = ["Reconciler", "Report", "StatusStore", "TargetResult"]

log = logging.getLogger(__name__)


class StatusStore(Protocol):
    """Where the last report and the last failure of a group are kept (a file locally, DynamoDB on AWS)."""

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

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def changed(self) -> tuple[TargetResult, ...]:
        return tuple(r for r in self.results if r.ok and r.action in (Action.DEPLOY, Action.STOP))

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "trigger": self.trigger, "dry_run": self.dry_run, "started": self.started,
                "finished": self.finished, "ok": self.ok,
                "desired": None if self.plan is None or self.plan.desired is None else self.plan.desired.version,
                "approved": [] if self.plan is None else list(self.plan.approved),
                "results": [r.to_dict() for r in self.results]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Reconciler:
    """Brings every target of one model package group to the newest Approved version."""

    def __init__(self, group: str, registry, targets: Sequence[DeployTarget], *,
                 lock: Callable[[], AbstractContextManager], status: StatusStore,
                 read: Callable[[str], bytes], policy, smoke_required: bool = True):
        self.group = group
        self.registry = registry
        self.targets = list(targets)
        self._lock = lock
        self.status = status
        self._read = read
        self.policy = policy
        self.smoke_required = smoke_required

    # -- read only ---------------------------------------------------------------------------

    def _versions(self):
        try:
            return self.registry.list_versions(self.group)
        except NotFoundError:  # the group does not exist yet: nothing registered, nothing approved
            return []

    def observe(self) -> tuple[list[Observed], dict[str, str]]:
        """Each target's observed state, and the targets that could not be observed (name -> why)."""
        observed, failed = [], {}
        for target in self.targets:
            try:
                observed.append(target.observe())
            except GreenlightError as exc:
                log.error("cannot observe %s: %s", target.name, exc)
                failed[target.name] = f"cannot observe it: {exc}"
        return observed, failed

    def plan(self) -> Plan:
        """The plan as things are now (no write call); unobservable targets are left out."""
        return self.survey()[0]

    def survey(self) -> tuple[Plan, list[Observed], dict[str, str]]:
        """One read of everything (no write call): the plan, each target's observation, the unobservable."""
        observed, failed = self.observe()
        return make_plan(self.group, self._versions(), observed, self.policy, SMOKE_KEY), observed, failed

    # -- reconcile ---------------------------------------------------------------------------

    def reconcile(self, *, dry_run: bool = False, trigger: str = "manual") -> Report:
        """Plan and (unless dry_run) apply, under the group's lock; the report is saved when applied.

        Raises:
            ConflictError: another reconcile of the group held the lock for too long.
        """
        started = _now()
        if dry_run:
            plan, failed = self._plan_with_failures()
            return Report(self.group, trigger, True, started, _now(), plan, self._dry_results(plan, failed))
        with self._lock():
            plan, failed = self._plan_with_failures()
            log.info("reconcile of %s (%s): newest Approved is %s; approved versions %s", self.group, trigger,
                     "none" if plan.desired is None else f"v{plan.desired.version}", list(plan.approved) or "none")
            smoke, smoke_error = self._smoke(plan)
            results = [self._apply(step, plan.desired, smoke, smoke_error) for step in plan.targets]
            results += [TargetResult(name, self._kind(name), Action.NONE, None,
                                     None if plan.desired is None else plan.desired.version, False, why)
                        for name, why in failed.items()]
            self._prune(plan, results)
            report = Report(self.group, trigger, False, started, _now(), plan, tuple(results))
            self._save(report)
        return report

    def _plan_with_failures(self) -> tuple[Plan, dict[str, str]]:
        plan, _, failed = self.survey()
        return plan, failed

    def _kind(self, name: str) -> TargetKind:
        return next(t.kind for t in self.targets if t.name == name)

    @staticmethod
    def _dry_results(plan: Plan, failed: dict[str, str]) -> tuple[TargetResult, ...]:
        results = [TargetResult(s.target, s.kind, s.action, s.running, s.desired, True, f"would {s.action.value}: "
                                f"{s.reason}" if s.action in (Action.DEPLOY, Action.STOP) else s.reason, s.warning)
                   for s in plan.targets]
        return tuple(results) + tuple(TargetResult(n, TargetKind.ENDPOINT, Action.NONE, None, None, False, why)
                                      for n, why in failed.items())

    def _smoke(self, plan: Plan) -> tuple[SmokeTest | None, str | None]:
        """The desired version's smoke test, read once per reconcile (only when some target deploys)."""
        release = plan.desired
        if release is None or not any(s.action is Action.DEPLOY for s in plan.targets):
            return None, None
        if not release.smoke_uri:
            why = (f"v{release.version} has no smoke-test data (CustomerMetadataProperties {SMOKE_KEY!r}); "
                   "retrain it with this Greenlight, or set smoke.required = false")
            return None, why if self.smoke_required else None
        try:
            return SmokeTest.from_json(self._read(release.smoke_uri), release.smoke_uri), None
        except (GreenlightError, OSError) as exc:
            return None, f"cannot read v{release.version}'s smoke-test data at {release.smoke_uri}: {exc}"

    def _apply(self, step: TargetPlan, release: Release | None, smoke: SmokeTest | None,
               smoke_error: str | None) -> TargetResult:
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
        try:
            if step.action is Action.STOP:
                log.warning("%s: stopping: %s", step.target, step.reason)
                message = target.stop()
            else:
                if smoke_error is not None:
                    raise DeploymentFailed(smoke_error)
                log.info("%s: deploying v%s: %s", step.target, step.desired, step.reason)
                message = target.deploy(release, smoke)
        except (DeploymentFailed, DataError, GreenlightError) as exc:
            log.error("%s: %s failed after %.1f s: %s; it keeps %s", step.target, step.action.value,
                      time.monotonic() - started, exc, "nothing" if step.running is None else f"v{step.running}")
            return result(False, f"{step.action.value} failed: {exc}")
        log.info("%s: %s (%.1f s)", step.target, message, time.monotonic() - started)
        return result(True, message)

    def _prune(self, plan: Plan, results: list[TargetResult]) -> None:
        keep = frozenset(v for r in results for v in (r.running, r.desired) if v is not None)
        for target in self.targets:
            try:
                for what in target.prune(keep):
                    log.info("%s: pruned %s", target.name, what)
            except GreenlightError as exc:  # retention is housekeeping: never fail a reconcile for it
                log.warning("%s: pruning failed (kept everything): %s", target.name, exc)

    def _save(self, report: Report) -> None:
        previous = self.status.load() or {}
        data = report.to_dict()
        failures = [r for r in report.results if not r.ok]
        data["last_failure"] = ({"at": report.finished, "trigger": report.trigger,
                                 "targets": {r.target: r.message for r in failures}}
                                if failures else previous.get("last_failure"))
        try:
            self.status.save(data)
        except GreenlightError as exc:
            log.error("cannot save the reconcile report of %s: %s", self.group, exc)
