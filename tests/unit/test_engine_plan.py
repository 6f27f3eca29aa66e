"""deploy.engine.model: the pure plan. Every branch of plan_target, and desired_version's ordering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deploy.engine.model import (Action, NothingApproved, Observed, TargetKind, desired_version, make_plan,
                                 plan_target)
from greenlight.registry.model import ApprovalStatus, ModelVersion

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def version(n: int, status: ApprovalStatus, created_offset: int = 0, smoke: str | None = None) -> ModelVersion:
    return ModelVersion("g", n, f"arn:aws:sagemaker:r:1:model-package/g/{n}", status, None, f"s3://b/{n}.tar.gz",
                        "img", ("text/csv",), ("application/json",), {},
                        {"greenlight:smoke-test": smoke} if smoke else {}, None,
                        T0 + timedelta(seconds=created_offset), T0)


A, R, P = ApprovalStatus.APPROVED, ApprovalStatus.REJECTED, ApprovalStatus.PENDING


def test_desired_is_the_newest_approved_by_version_number_not_by_creation_time_or_order():
    versions = [version(3, A, created_offset=0), version(5, R, 50), version(4, A, -100), version(6, P, 10)]
    assert desired_version(versions).version == 4
    assert desired_version(reversed(versions)).version == 4
    assert desired_version([version(1, R), version(2, P)]) is None


def obs(v, active=True, kind=TargetKind.ENDPOINT):
    return Observed("t", kind, v, active)


@pytest.mark.parametrize("running, active, desired, kind, policy, action, words", [
    (2, True, 2, TargetKind.ENDPOINT, NothingApproved.KEEP, Action.NONE, "runs v2, the newest Approved"),
    (None, False, 2, TargetKind.ENDPOINT, NothingApproved.KEEP, Action.DEPLOY, "runs nothing"),
    (2, False, 2, TargetKind.BATCH, NothingApproved.KEEP, Action.DEPLOY, "runs nothing"),  # disabled
    (1, True, 2, TargetKind.ENDPOINT, NothingApproved.KEEP, Action.DEPLOY, "newer than v1"),
    (3, True, 2, TargetKind.ENDPOINT, NothingApproved.KEEP, Action.DEPLOY, "rolls back from v3"),
    (None, False, None, TargetKind.ENDPOINT, NothingApproved.KEEP, Action.NONE, "nothing runs"),
    (2, True, None, TargetKind.ENDPOINT, NothingApproved.KEEP, Action.KEEP, "keeps serving v2"),
    (2, True, None, TargetKind.LAMBDA, NothingApproved.KEEP, Action.KEEP, "keeps serving v2"),
    (2, True, None, TargetKind.BATCH, NothingApproved.KEEP, Action.STOP, "scheduled target"),
    (2, True, None, TargetKind.ENDPOINT, NothingApproved.STOP, Action.STOP, "taken down"),
    (None, False, None, TargetKind.ENDPOINT, NothingApproved.STOP, Action.NONE, "nothing runs"),
])
def test_plan_target(running, active, desired, kind, policy, action, words):
    step = plan_target(obs(running, active, kind), desired, policy)
    assert step.action is action and words in step.reason
    assert (step.warning is not None) == (action is Action.KEEP)


def test_make_plan_reads_the_smoke_link_and_lists_approved_versions():
    versions = [version(1, A, smoke="s3://b/1/smoke.json"), version(2, R), version(3, A, smoke="s3://b/3/smoke.json")]
    plan = make_plan("g", versions, [obs(1), Observed("l", TargetKind.LAMBDA, 3)], NothingApproved.KEEP,
                     "greenlight:smoke-test")
    assert plan.desired.version == 3 and plan.desired.smoke_uri == "s3://b/3/smoke.json"
    assert plan.approved == (1, 3)
    assert [(t.target, t.action) for t in plan.targets] == [("t", Action.DEPLOY), ("l", Action.NONE)]
    assert [t.target for t in plan.changes] == ["t"]
    assert plan.to_dict()["desired"] == 3
