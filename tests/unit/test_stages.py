"""Staged promotion's rules (issue 21) against in-memory fakes: the gates, a stage's independence, the
promotion check and the soak clock. The fakes are tests/unit/test_reconciler.py's."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from deploy.config import Stage
from deploy.engine.model import Gate, Observed, TargetKind
from deploy.engine.reconciler import Reconciler
from deploy.engine.stages import Stages, why_not_promotable
from greenlight.errors import ConflictError
from greenlight.registry.model import STAGE_KEY_PREFIX, ApprovalStatus, ModelLifeCycle
from tests.unit.test_reconciler import SMOKE, FakeRegistry, FakeTarget, MemoryStatus, version

A, R, P = ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, ApprovalStatus.PENDING
STAGING = Stage("staging", "approval", 0, "g-staging", True, True, True)
PRODUCTION = Stage("production", "promotion", 1, "g-production", True, True, True, soak_minutes=30)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def promoted(n: int, stage: str = "production", status: str = "Approved", approval=A):
    return replace(version(n, approval), lifecycle=ModelLifeCycle(stage, status))


def test_the_approval_gate_is_todays_rule_and_skips_what_its_stage_rejected():
    versions = [version(1), version(2), version(3, P)]
    assert Gate().choose(versions).version == 2
    rejected_here = replace(version(2), customer_metadata={STAGE_KEY_PREFIX + "staging": "Rejected"})
    assert Gate("staging").choose([version(1), rejected_here]).version == 1
    assert Gate("qa").choose([version(1), rejected_here]).version == 2  # another stage's rejection is not ours


def test_the_promotion_gate_takes_the_newest_approved_version_promoted_to_its_stage():
    gate = Gate("production", promotion=True)
    assert gate.choose([version(1), version(2)]) is None  # approved, never promoted
    assert gate.choose([promoted(1), version(2)]).version == 1
    assert gate.choose([promoted(1), promoted(2)]).version == 2
    assert gate.choose([promoted(1), promoted(2, status="Rejected")]).version == 1
    assert gate.choose([promoted(1), promoted(2, approval=R)]).version == 1  # a rejected approval leaves every stage
    assert gate.choose([promoted(1, stage="staging")]) is None
    # ModelLifeCycle moved on to a later stage: the per-stage record still says it was promoted here
    later = replace(promoted(1, stage="global"), customer_metadata={STAGE_KEY_PREFIX + "production": "Approved"})
    assert gate.choose([later]).version == 1


def stage_reconciler(stage: Stage, registry, *targets, status=None) -> Reconciler:
    gate = Gate(stage.name, stage.gate == "promotion")
    return Reconciler("g", registry, list(targets), lock=contextlib.nullcontext, status=status or MemoryStatus(),
                      read=lambda uri: SMOKE, policy="keep", gate=gate, stage=stage.name)


def test_each_stage_reaches_its_own_desired_version():
    registry = FakeRegistry(promoted(1), version(2))
    staging, production = FakeTarget(serving=None), FakeTarget(serving=None)
    report = Stages("g", [(STAGING, stage_reconciler(STAGING, registry, staging)),
                          (PRODUCTION, stage_reconciler(PRODUCTION, registry, production))]).reconcile()
    assert (staging.serving, production.serving, report.ok) == (2, 1, True)
    data = report.to_dict()
    assert [(r["stage"], r["target"], r["desired"]) for r in data["results"]] == [
        ("staging", "endpoint", 2), ("production", "endpoint", 1)]


class Locked:
    def __call__(self):
        raise ConflictError("another reconcile of g-staging holds the lock")


def test_a_stage_that_fails_never_stops_or_moves_another_and_the_failure_is_raised_after():
    registry = FakeRegistry(promoted(1), version(2))
    staging, production = FakeTarget(serving=1), FakeTarget(serving=None)
    broken = stage_reconciler(STAGING, registry, staging)
    broken._lock = Locked()
    stages = Stages("g", [(STAGING, broken), (PRODUCTION, stage_reconciler(PRODUCTION, registry, production))])
    with pytest.raises(ConflictError):
        stages.reconcile()
    assert (staging.serving, production.serving) == (1, 1)  # production still reconciled; staging untouched


def test_a_target_failing_in_one_stage_leaves_the_other_stage_deployed():
    registry = FakeRegistry(promoted(1), version(2))
    staging, production = FakeTarget(serving=1), FakeTarget(serving=None)
    staging.fail["probe"] = RuntimeError("smoke mismatch")
    report = Stages("g", [(STAGING, stage_reconciler(STAGING, registry, staging)),
                          (PRODUCTION, stage_reconciler(PRODUCTION, registry, production))]).reconcile()
    assert (staging.serving, production.serving, report.ok) == (1, 1, False)


def observed(*versions):
    return [Observed(f"t{i}", TargetKind.ENDPOINT, v) for i, v in enumerate(versions)]


def since(minutes_ago: float, n: int, count: int = 2) -> dict:
    at = (T0 - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {f"t{i}": {"version": n, "since": at} for i in range(count)}


@pytest.mark.parametrize("candidate, seen, clock, words", [
    (version(3, P), observed(3, 3), since(60, 3), "PendingManualApproval, not Approved"),
    (version(3), observed(3, 2), since(60, 3), "has not passed stage staging (t1 runs v2)"),
    (version(3), observed(None, 3), since(60, 3), "t0 runs nothing"),
    (version(3), [], {}, "stage staging has no target"),
    (version(3), observed(3, 3), since(10, 3), "for 10 of the 30 minutes"),
    (version(3), observed(3, 3), since(60, 2), "since when is not recorded"),
])
def test_promotion_is_refused_in_one_line_saying_why(candidate, seen, clock, words):
    why = why_not_promotable(candidate, PRODUCTION, STAGING, seen, {}, clock, T0)
    assert why is not None and words in why and "\n" not in why


def test_promotion_passes_after_the_soak_and_is_refused_to_an_approval_stage_or_an_unknown_state():
    assert why_not_promotable(version(3), PRODUCTION, STAGING, observed(3, 3), {}, since(31, 3), T0) is None
    assert why_not_promotable(version(3), replace(PRODUCTION, soak_minutes=0), STAGING, observed(3), {}, {},
                              T0) is None
    assert "gate = \"approval\"" in why_not_promotable(version(3), replace(PRODUCTION, gate="approval"), STAGING,
                                                       observed(3), {}, {}, T0)
    assert "cannot tell" in why_not_promotable(version(3), PRODUCTION, STAGING, observed(3), {"t1": "no access"},
                                               since(60, 3, 1), T0)


def test_the_saved_report_keeps_since_when_each_target_runs_its_version():
    registry = FakeRegistry(version(1))
    status, target = MemoryStatus(), FakeTarget(serving=None)
    stage_reconciler(STAGING, registry, target, status=status).reconcile()
    assert status.saved[-1]["since"]["endpoint"]["version"] == 1
    status.saved[-1]["since"]["endpoint"]["since"] = "2020-01-01T00:00:00Z"  # as if deployed long ago
    stage_reconciler(STAGING, registry, target, status=status).reconcile()
    assert status.saved[-1]["since"]["endpoint"] == {"version": 1, "since": "2020-01-01T00:00:00Z"}  # kept
    registry.versions.append(version(2))
    stage_reconciler(STAGING, registry, target, status=status).reconcile()
    assert status.saved[-1]["since"]["endpoint"]["version"] == 2
    assert status.saved[-1]["since"]["endpoint"]["since"] != "2020-01-01T00:00:00Z"  # a new version: a new clock


def test_approval_and_lifecycle_events_out_of_order_and_duplicated_converge():
    """The handler serves Stages as it serves one reconciler; the registry, not the events, decides."""
    import json
    import random
    from pathlib import Path

    from deploy.engine.events import describe_event
    from deploy.handler import handle

    events = Path(__file__).resolve().parents[1] / "events"
    approved = json.loads((events / "model_package_state_change_approved.json").read_text())
    lifecycle = json.loads((events / "model_package_state_change_lifecycle.json").read_text())
    group = approved["detail"]["ModelPackageGroupName"]
    assert "Approved in stage production" in describe_event(lifecycle)
    registry = FakeRegistry(promoted(1), version(2))
    for seed in range(3):
        staging, production = FakeTarget(serving=None), FakeTarget(serving=2)
        stages = Stages(group, [(STAGING, stage_reconciler(STAGING, registry, staging)),
                                (PRODUCTION, stage_reconciler(PRODUCTION, registry, production))])
        delivered = [approved, lifecycle, lifecycle, approved]
        random.Random(seed).shuffle(delivered)
        results = [handle(e, stages, account=None, region=None) for e in delivered]
        assert {r["status"] for r in results} == {"reconciled"}
        assert (staging.serving, production.serving) == (2, 1)  # v2 not promoted: production back to v1
        assert all(r["report"]["ok"] for r in results)
