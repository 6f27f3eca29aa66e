"""What the deployment engine decides, as plain data and pure functions (no boto3, no disk).

    desired_version(versions)            the newest Approved version, by version number
    Gate(...).choose(versions)           a stage's desired version (issue 21): approval or promotion gate
    plan_target(...) / make_plan(...)    per target: running version, desired version, action, reason

Level-triggered: a plan depends only on the registry's state and what each target runs now, never
on the event that asked for it, so duplicate, late and out-of-order events converge to the same
plan, and a plan whose every action is NONE makes no write call at all.

When no version is Approved (all were rejected, or none ever approved) the rule is the configured
`NothingApproved` policy:

- KEEP (the default): online targets (endpoint, Lambda) keep serving what they run and every plan,
  status and log says so as a warning ("serving v2, which is not Approved; nothing is"); scheduled
  targets (batch) are disabled, because a future job would *start* new work with a model nobody
  approves. Production stays up and nobody is left unaware.
- STOP: every target is taken down (endpoint deleted or answering 503, Lambda alias throttled to zero
  concurrency, schedule disabled).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from greenlight.registry.model import ApprovalStatus, ModelVersion, StageStatus

__all__ = ["APPROVAL", "Action", "Gate", "NothingApproved", "Observed", "Plan", "Release", "TargetKind", "TargetPlan",
           "desired_version", "make_plan", "plan_target"]


class TargetKind(str, Enum):
    """The serverless targets Greenlight keeps on the approved version."""

    ENDPOINT = "endpoint"
    LAMBDA = "lambda"
    BATCH = "batch"

    @property
    def online(self) -> bool:
        """Serves requests as they come (endpoint, Lambda); batch runs on a schedule."""
        return self is not TargetKind.BATCH


class NothingApproved(str, Enum):
    """What reconcile does when no version of the group is Approved (module docstring)."""

    KEEP = "keep"
    STOP = "stop"


class Action(str, Enum):
    NONE = "none"  # the target already runs the desired state: no write call
    DEPLOY = "deploy"  # bring the target to the desired version (forward, or back after a revoke)
    STOP = "stop"  # take the target down / disable it
    KEEP = "keep"  # nothing approved, policy KEEP: leave an online target as it is, warn


@dataclass(frozen=True)
class Release:
    """One registered model version as the deployer needs it."""

    group: str
    version: int
    package_arn: str
    model_data_url: str | None
    image: str
    smoke_uri: str | None = None  # the smoke-test rows and predictions recorded at training time
    # when its approval last changed (LastModifiedTime): a version rolled back is retried only once this moves,
    # i.e. once it is approved again (issue 22; deploy.engine.reconciler)
    approved_at: str | None = field(default=None, compare=False)

    @classmethod
    def from_version(cls, version: ModelVersion, smoke_key: str) -> Release:
        return cls(version.group, version.version, version.arn, version.model_data_url, version.image,
                   version.customer_metadata.get(smoke_key), version.modified.isoformat())


@dataclass(frozen=True)
class Observed:
    """What a target runs now: the version (None: nothing), whether it is active, and its details."""

    target: str
    kind: TargetKind
    version: int | None
    active: bool = True
    detail: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class TargetPlan:
    target: str
    kind: TargetKind
    running: int | None
    desired: int | None
    action: Action
    reason: str
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "kind": self.kind.value, "running": self.running, "desired": self.desired,
                "action": self.action.value, "reason": self.reason, "warning": self.warning}


@dataclass(frozen=True)
class Plan:
    group: str
    desired: Release | None
    approved: tuple[int, ...]
    targets: tuple[TargetPlan, ...]

    @property
    def changes(self) -> tuple[TargetPlan, ...]:
        """The target plans that write (DEPLOY or STOP)."""
        return tuple(t for t in self.targets if t.action in (Action.DEPLOY, Action.STOP))

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "desired": None if self.desired is None else self.desired.version,
                "approved": list(self.approved), "targets": [t.to_dict() for t in self.targets]}


def desired_version(versions: Iterable[ModelVersion]) -> ModelVersion | None:
    """The newest Approved version by version number (never by list order or creation time)."""
    approved = [v for v in versions if v.status is ApprovalStatus.APPROVED]
    return max(approved, key=lambda v: v.version, default=None)


@dataclass(frozen=True)
class Gate:
    """What a stage deploys (issue 21). Approval gate: the newest Approved version (not Rejected in this
    stage, `greenlight models reject N --stage S`); promotion gate: the newest Approved version whose
    status in this stage is Approved (ModelLifeCycle, or the per-stage record: ModelVersion.stage_status).
    The implicit stage is Gate(): today's rule exactly."""

    stage: str | None = None
    promotion: bool = False

    def eligible(self, version: ModelVersion) -> bool:
        if version.status is not ApprovalStatus.APPROVED:
            return False
        if self.stage is None:
            return True
        status = version.stage_status(self.stage)
        return status is StageStatus.APPROVED if self.promotion else status is not StageStatus.REJECTED

    def choose(self, versions: Iterable[ModelVersion]) -> ModelVersion | None:
        """The newest eligible version by version number."""
        return max((v for v in versions if self.eligible(v)), key=lambda v: v.version, default=None)

    @property
    def label(self) -> str:
        """How plans name the desired version: 'the newest Approved version' (and where it was promoted)."""
        return f"the newest Approved version promoted to {self.stage}" if self.promotion else \
            "the newest Approved version"


APPROVAL = Gate()


def _label(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"


def plan_target(observed: Observed, desired: int | None, policy: NothingApproved, gate: Gate = APPROVAL
                ) -> TargetPlan:
    """The action that brings one target to the desired state, with the reason in words."""
    running = observed.version if observed.active else None
    newest = gate.label

    def make(action: Action, reason: str, warning: str | None = None) -> TargetPlan:
        return TargetPlan(observed.target, observed.kind, running, desired, action, reason, warning)

    if desired is not None:
        if running == desired:
            return make(Action.NONE, f"runs v{desired}, {newest}")
        if running is None:
            return make(Action.DEPLOY, f"runs nothing; v{desired} is {newest}")
        if running < desired:
            return make(Action.DEPLOY, f"v{desired} is {newest}, newer than v{running}")
        lost = f"promoted to {gate.stage}" if gate.promotion else \
            "Approved" if gate.stage is None else f"Approved for {gate.stage}"
        return make(Action.DEPLOY, f"rolls back from v{running}, which is not {lost}, to v{desired}, {newest}")
    if running is None:
        return make(Action.NONE, "nothing is Approved and nothing runs" if not gate.promotion else
                    f"no Approved version is promoted to {gate.stage} and nothing runs")
    if policy is NothingApproved.STOP:
        return make(Action.STOP, f"nothing is Approved (when_nothing_approved=stop); {_label(running)} is taken down")
    if not observed.kind.online:
        return make(Action.STOP, f"nothing is Approved; a scheduled target does not start new work with "
                                 f"{_label(running)}, which is not Approved")
    return make(Action.KEEP, f"nothing is Approved (when_nothing_approved=keep); keeps serving {_label(running)}",
                warning=f"{observed.target} serves v{running}, which is not Approved, because no version is; "
                        "approve one, or set when_nothing_approved=stop to take it down")


def make_plan(group: str, versions: Iterable[ModelVersion], observed: Iterable[Observed],
              policy: NothingApproved, smoke_key: str, gate: Gate = APPROVAL) -> Plan:
    """The whole plan for a group (one stage of it) from the registry's versions and each target's observed
    state; `approved` lists the versions the gate lets through."""
    versions = list(versions)
    chosen = gate.choose(versions)
    approved = frozenset(v.version for v in versions if gate.eligible(v))
    desired = None if chosen is None else Release.from_version(chosen, smoke_key)
    targets = tuple(plan_target(o, None if chosen is None else chosen.version, policy, gate) for o in observed)
    return Plan(group, desired, tuple(sorted(approved)), targets)
