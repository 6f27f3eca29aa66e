"""Reconciling within a deadline (deploy/engine/deadline.py), against the in-memory fakes of test_reconciler.

GIVEN a fake clock, fake targets whose waits hand over as the real adapters' do (a wait that would sleep
past the current deadline raises HandedOver), WHEN the reconciler runs with a deadline, THEN a long wait
becomes "in progress" with its intent kept, the next reconcile continues it at the recorded step (never
switching before a probe passed), a plan that moved on undoes it first, and each target waits within
its share of the time only.
"""

from __future__ import annotations

import pytest

from deploy.engine.deadline import Deadline, HandedOver, current, hand_over_before_sleep, within
from deploy.engine.protocol import Staged
from deploy.engine.transaction import Intent, Transaction
from greenlight.registry.model import ApprovalStatus
from tests.unit.test_reconciler import FakeRegistry, FakeTarget, MemoryStatus, reconciler, version


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class SlowTarget(FakeTarget):
    """A FakeTarget whose `slow` primitive waits `waits` polls of 10 s (as an adapter's bounded wait does)."""

    def __init__(self, clock: Clock, slow: str, waits: int, **kwargs):
        super().__init__(**kwargs)
        self.clock, self.slow, self.waits = clock, slow, waits

    def _call(self, primitive: str) -> None:
        super()._call(primitive)
        if primitive == self.slow and primitive != "switch":
            self._wait()

    def _wait(self) -> None:
        while self.waits > 0:
            hand_over_before_sleep(f"{self.name} to be ready", 10)
            self.clock.sleep(10)
            self.waits -= 1

    def switch(self, staged: Staged) -> str:
        message = super().switch(staged)  # the update is started, then waited for (not verified until confirmed)
        if self.slow == "switch":
            self.verified = False
            self._wait()
        return message

    def confirm(self, staged: Staged, smoke) -> str | None:
        self.verified = True
        return super().confirm(staged, smoke)


def test_a_deadline_keeps_a_margin_and_shares_what_is_left():
    clock = Clock()
    assert Deadline.after(900, clock=clock) == Deadline(840, 900, clock)  # 60 s kept back
    assert Deadline.after(30, clock=clock) == Deadline(27, 30, clock)  # a tenth of a short invocation
    clock.now = 40
    deadline = Deadline(840, 900, clock)
    assert deadline.share(4).at == 240 and deadline.share(1).at == 840 and deadline.until_end() == 860
    clock.now = 900
    assert deadline.share(2).at == 840 and deadline.remaining() < 0


def test_a_wait_hands_over_only_under_a_deadline_and_only_if_it_would_sleep_past_it():
    clock = Clock()
    hand_over_before_sleep("anything", 10**9)  # no deadline (the CLI): the waits' own timeouts bound them
    with within(Deadline(25, 30, clock)):
        assert current() == Deadline(25, 30, clock)
        hand_over_before_sleep("x", 25)
        with pytest.raises(HandedOver) as handed:
            hand_over_before_sleep("endpoint e to leave Updating", 25.5)
        assert handed.value.waiting == "endpoint e to leave Updating"
    assert current() is None


def test_a_long_wait_is_in_progress_and_the_next_reconcile_continues_at_that_step():
    clock = Clock()
    target = SlowTarget(clock, "probe", waits=7, serving=1)
    status = MemoryStatus()
    engine = reconciler(FakeRegistry(version(1), version(2)), target, status=status)
    report = engine.reconcile(deadline=Deadline.after(60, clock=clock))
    [result] = report.results
    assert report.ok and result.in_progress and clock.now == 50  # the sixth sleep would end past 54
    assert result.message == ("in progress: probing v2 on endpoint; previous v1, waiting for endpoint to be ready; "
                              "v1 still serves; the next reconcile continues it")
    intent = Intent.from_dict(status.load_intent("endpoint"))
    assert (intent.step, intent.waiting, intent.staged.version) == ("probe", "endpoint to be ready", 2)
    assert target.calls == ["observe", "fetch", "stage", "probe", "observe", "prune"] and target.serving == 1
    target.calls.clear()
    report = engine.reconcile(deadline=Deadline.after(60, clock=clock))
    [result] = report.results
    assert result.ok and not result.in_progress and target.serving == 2
    assert "continued from an earlier reconcile" in result.message
    # continued at the probe: no second fetch or stage; the switch only after the probe passed
    assert target.calls == ["observe", "probe", "switch", "confirm", "prune"]
    assert status.load_intent("endpoint") is None


def test_a_handed_over_deployment_the_plan_no_longer_wants_is_undone_first():
    clock = Clock()
    target = SlowTarget(clock, "switch", waits=100, serving=1)
    registry = FakeRegistry(version(1), version(2))
    status = MemoryStatus()
    engine = reconciler(registry, target, status=status)
    assert engine.reconcile(deadline=Deadline.after(60, clock=clock)).results[0].in_progress
    assert target.serving == 2 and status.load_intent("endpoint")["step"] == "switch"  # switched, then waiting
    registry.versions[1] = version(2, ApprovalStatus.REJECTED)
    target.calls.clear()
    target.waits = 0
    [result] = engine.reconcile(deadline=Deadline.after(60, clock=clock)).results
    assert "unstage" in target.calls and target.serving == 1 and status.load_intent("endpoint") is None
    assert result.ok and "handed over while switching to v2 on endpoint; previous v1 (waiting for endpoint to be " \
                         "ready); undone: v1 serves" in (result.warning or "")


def test_each_acting_target_waits_within_its_share_and_a_target_with_no_time_left_is_not_started():
    clock = Clock()
    slow = SlowTarget(clock, "probe", waits=100, name="endpoint", serving=1)
    quick = FakeTarget("lambda", serving=1)
    report = reconciler(FakeRegistry(version(1), version(2)), slow, quick).reconcile(
        deadline=Deadline.after(60, clock=clock))
    results = {r.target: r for r in report.results}
    assert results["endpoint"].in_progress and clock.now == 20  # half of 54 s: two waits of 10 s
    assert results["lambda"].ok and not results["lambda"].in_progress and quick.serving == 2
    clock.now = 0
    late = FakeTarget("lambda", serving=1)
    with within(None):
        deadline = Deadline(0, 6, clock)  # already past: nothing is started
    [result] = reconciler(FakeRegistry(version(1), version(2)), late).reconcile(deadline=deadline).results
    assert result.in_progress and result.message.startswith("in progress: not started") and late.calls == ["observe"]


def test_an_intent_without_waiting_is_still_finished_or_undone_by_recover():
    target = FakeTarget(serving=1)
    status = MemoryStatus()
    staged = Staged("endpoint", 2, {"before": 1})
    status.save_intent("endpoint", Intent("endpoint", 2, 1, "switch", staged, "pid 1", "t", "t").to_dict())
    report = reconciler(FakeRegistry(version(1), version(2)), target, status=status).reconcile()
    assert "undone" in (report.results[0].warning or "") and target.serving == 2


def test_a_deployment_still_handed_over_an_hour_after_it_started_fails_and_is_undone():
    """GIVEN a version that never becomes ready WHEN resyncs keep continuing it THEN after the hand-over limit
    the deployment fails in one line, is undone, and the last good version serves."""
    clock, wall = Clock(), Clock()
    wall.now = 1_800_000_000.0
    target = SlowTarget(clock, "probe", waits=10**6, serving=1)
    status = MemoryStatus()
    engine = reconciler(FakeRegistry(version(1), version(2)), target, status=status)
    engine.transaction = Transaction(status, wall=wall, handover_limit=3600)
    for _ in range(6):  # a resync every 10 minutes: in progress each time, within the limit
        assert engine.reconcile(deadline=Deadline.after(60, clock=clock)).results[0].in_progress
        wall.now += 600
    [result] = engine.reconcile(deadline=Deadline.after(60, clock=clock)).results
    assert not result.ok and not result.in_progress and target.serving == 1
    assert result.message == ("deploy failed: probing v2 on endpoint; previous v1: still waiting for endpoint to be "
                              "ready 3600 s after it started, over several reconciles (limit 3600 s); v1 still serves")
    assert status.load_intent("endpoint") is None and "unstage" in target.calls
