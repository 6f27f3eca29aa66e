"""Progressive delivery's rules (issue 22): the pure rollout (deploy/engine/rollout.py) and the transaction and
reconciler moving it, each against in-memory fakes and a clock passed in (no sleep, no wall clock asserted).

GIVEN a fake target that can split traffic (shift/traffic over variables) serving v1, v2 approved and a
canary or linear policy, WHEN reconciles run at chosen instants, THEN the rollout holds, moves one step, bakes,
completes or rolls back by the rules, records what it does before doing it, and a version rolled back is not
retried until it is approved again.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from deploy.engine.model import Action
from deploy.engine.reconciler import Reconciler
from deploy.engine.rollout import Move, Phase, Rollout, decide
from deploy.engine.traffic import Shift, TrafficPolicy, VersionTraffic
from deploy.engine.transaction import Transaction
from greenlight.registry.model import ApprovalStatus
from tests.unit.test_reconciler import SMOKE, FakeRegistry, FakeTarget, MemoryStatus, version

CANARY = TrafficPolicy(Shift.CANARY, canary_percent=20, step_wait_seconds=10, bake_seconds=30, min_requests=20)
HEALTHY = VersionTraffic(50, 0, 5.0)
FAILING = VersionTraffic(40, 12, 5.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class ShiftingTarget(FakeTarget):
    """FakeTarget that also splits traffic: `percent` is the staged version's share; `seen` what it answered."""

    def __init__(self, serving: int | None = None):
        super().__init__(serving=serving)
        self.percent = 0.0
        self.seen: dict[int, VersionTraffic] = {}
        self.asked: list[tuple[int, float]] = []

    def shift(self, staged, previous, percent: float) -> str:
        self._call("shift")
        self.percent = percent
        return ""

    def traffic(self, version: int, since: float) -> VersionTraffic:
        self.asked.append((version, since))
        return self.seen.get(version, VersionTraffic())

    def switch(self, staged) -> str:
        self.percent = 0.0
        return super().switch(staged)

    def unstage(self, staged) -> None:
        self.percent = 0.0
        super().unstage(staged)


def world(policy: TrafficPolicy = CANARY, target: FakeTarget | None = None):
    clock = Clock()
    target = target if target is not None else ShiftingTarget(serving=1)
    registry = FakeRegistry(version(1), version(2))
    status = MemoryStatus()
    reconciler = Reconciler("g", registry, [target], lock=lambda: _nolock(), status=status,
                            read=lambda uri: SMOKE, policy=None,
                            transaction=Transaction(status, wall=clock), traffic={target.name: policy})
    from deploy.engine.model import NothingApproved
    reconciler.policy = NothingApproved.KEEP
    return reconciler, target, clock, status, registry


class _nolock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# -- the pure state machine ------------------------------------------------------------------------

def test_a_canary_holds_then_bakes_then_completes() -> None:
    rollout = Rollout.begin(2, 1, CANARY, 0.0)
    assert rollout.weights() == {"v2": 20.0, "v1": 80.0} and rollout.phase is Phase.SHIFTING
    assert decide(rollout, CANARY, HEALTHY, 9.9).move is Move.HOLD
    baking = decide(rollout, CANARY, HEALTHY, 10.0)
    assert baking.move is Move.BAKE and baking.rollout.weights() == {"v2": 100.0}
    assert baking.rollout.step_started == 10.0
    assert decide(baking.rollout, CANARY, HEALTHY, 39.9).move is Move.HOLD
    assert decide(baking.rollout, CANARY, HEALTHY, 40.0).move is Move.COMPLETE


def test_a_breach_rolls_back_with_its_reason_at_any_step() -> None:
    rollout = Rollout.begin(2, 1, CANARY, 0.0)
    decision = decide(rollout, CANARY, FAILING, 1.0)
    assert decision.move is Move.ROLL_BACK and decision.reason == "canary v2: 5xx 30% > 1% over 40 requests"
    assert decision.rollout.weights() == {"v2": 0.0, "v1": 100.0}
    baking = decide(rollout, CANARY, HEALTHY, 10.0).rollout
    assert decide(baking, CANARY, FAILING, 11.0).reason == "bake v2: 5xx 30% > 1% over 40 requests"
    slow = replace(CANARY, max_p99_ms=50)
    assert decide(rollout, slow, VersionTraffic(30, 0, 81.0), 1.0).reason == \
        "canary v2: p99 81 ms > 50 ms over 30 requests"


def test_linear_moves_one_step_per_wait_and_round_trips_through_json() -> None:
    policy = TrafficPolicy(Shift.LINEAR, linear_step_percent=40, step_wait_seconds=5)
    rollout = Rollout.begin(3, 2, policy, 0.0)
    seen = []
    for now in (5.0, 10.0):
        rollout = decide(rollout, policy, HEALTHY, now).rollout
        seen.append(rollout.weights())
    assert seen == [{"v3": 80.0, "v2": 20.0}, {"v3": 100.0}]
    assert Rollout.from_dict(rollout.to_dict()) == rollout
    with pytest.raises(ValueError):
        Rollout.from_dict({**rollout.to_dict(), "step": 7})


# -- the transaction and the reconciler ---------------------------------------------------------------

def test_a_healthy_canary_reaches_100_percent_over_reconciles_never_waiting_inside_one() -> None:
    reconciler, target, clock, status, _ = world()
    target.seen = {2: HEALTHY, 1: VersionTraffic(200, 0, 3.0)}
    first = reconciler.reconcile().results[0]
    assert first.ok and first.in_progress and target.percent == 20.0 and target.serving == 1
    assert first.rollout is not None and first.rollout["phase"] == "shifting"
    assert first.rollout["weights"] == {"v2": 20.0, "v1": 80.0}
    assert first.rollout["counts"]["v2"] == {"requests": 50, "errors_5xx": 0, "p99_ms": 5.0}
    assert status.load()["results"][0]["rollout"]["weights"] == {"v2": 20.0, "v1": 80.0}
    clock.now += 5
    assert reconciler.reconcile().results[0].rollout["phase"] == "shifting"  # held: the step is not over
    clock.now += 5
    baking = reconciler.reconcile().results[0]
    assert baking.in_progress and baking.rollout["phase"] == "baking" and target.serving == 2
    clock.now += 30
    done = reconciler.reconcile().results[0]
    assert done.ok and not done.in_progress and "canary rollout complete" in done.message
    assert status.load_intent("endpoint") is None and target.serving == 2
    assert reconciler.reconcile().results[0].action is Action.NONE


def test_a_breach_rolls_back_records_the_reason_and_is_not_retried_until_approved_again() -> None:
    reconciler, target, clock, status, registry = world()
    reconciler.reconcile()
    target.seen = {2: FAILING}
    clock.now += 1
    result = reconciler.reconcile().results[0]
    reason = "canary v2: 5xx 30% > 1% over 40 requests"
    assert not result.ok and result.rolled_back == reason and target.serving == 1 and target.percent == 0.0
    saved = status.load()
    assert reason in saved["last_failure"]["targets"]["endpoint"] and saved["rolled_back"]["endpoint"]["version"] == 2
    target.calls.clear()
    again = reconciler.reconcile().results[0]
    assert again.ok and again.action is Action.KEEP and "not retried" in again.message and "stage" not in target.calls
    # approved again: its approval changed (rejected, then approved), so LastModifiedTime moved
    registry.versions[1] = replace(version(2), modified=version(2).modified + timedelta(minutes=1))
    target.seen = {}
    assert reconciler.reconcile().results[0].in_progress and "stage" in target.calls


class PlatformJudgedTarget(ShiftingTarget):
    """A ShiftingTarget whose platform judges too (AWS): `verdict` is raised as TrafficBreach from `at`."""

    def __init__(self, serving: int | None = None):
        super().__init__(serving=serving)
        self.verdict: str | None = None
        self.at = "traffic"

    def _judged(self, where: str) -> None:
        from deploy.engine.protocol import TrafficBreach

        if self.verdict is not None and where == self.at:
            raise TrafficBreach(f"the whole message: {self.verdict}", self.verdict)

    def traffic(self, version: int, since: float) -> VersionTraffic:
        self._judged("traffic")
        return super().traffic(version, since)

    def switch(self, staged) -> str:
        self._judged("switch")
        return super().switch(staged)


@pytest.mark.parametrize("at, label", [("traffic", "canary"), ("switch", "bake")])
def test_a_platforms_verdict_is_the_same_rollback_as_a_breach_held_until_approved_again(at, label) -> None:
    # GIVEN a canary in progress on a target whose platform judges it too (SageMaker's rollback, a named alarm)
    target = PlatformJudgedTarget(serving=1)
    reconciler, target, clock, status, _ = world(target=target)
    target.seen = {2: HEALTHY}
    assert reconciler.reconcile().results[0].in_progress
    # WHEN the platform rolls it back: during the step (traffic) or as the bake begins (the 100% switch)
    target.verdict, target.at = "SageMaker rolled back: alarm g-5xx in ALARM", at
    clock.now += 1 if at == "traffic" else 10
    result = reconciler.reconcile().results[0]
    # THEN the engine's own rollback: the reason labelled by its step, v1 serves, the status records it, held
    reason = f"{label} v2: SageMaker rolled back: alarm g-5xx in ALARM"
    assert not result.ok and result.rolled_back == reason, result.message
    assert result.rollout is not None and result.rollout["phase"] == "rolled-back"
    assert target.serving == 1 and target.percent == 0.0 and status.load_intent("endpoint") is None
    saved = status.load()
    assert reason in saved["last_failure"]["targets"]["endpoint"] and saved["rolled_back"]["endpoint"]["reason"] == reason
    target.verdict = None
    again = reconciler.reconcile().results[0]
    assert again.ok and again.action is Action.KEEP and "not retried" in again.message


def test_a_rollout_goes_on_while_its_target_is_observed_mid_change() -> None:
    # GIVEN a canary under way on a target that reports itself not active during it (SageMaker's update shows the
    # new config, unverified, until the engine confirms it)
    reconciler, target, clock, status, _ = world()
    target.seen = {2: HEALTHY}
    assert reconciler.reconcile().results[0].in_progress
    target.verified = False
    # WHEN the next reconcile takes it up before the step is over
    clock.now += 1
    result = reconciler.reconcile().results[0]
    # THEN the rollout holds at its step: it is not finished at once by a switch
    assert result.in_progress and result.rollout["phase"] == "shifting", result.message
    assert target.serving == 1 and target.percent == 20.0


def test_abort_rolls_an_in_progress_rollout_back_and_holds_the_version() -> None:
    reconciler, target, clock, status, _ = world()
    reconciler.reconcile()
    report = reconciler.abort()
    assert [r.rolled_back for r in report.results] == ["aborted by greenlight deploy --abort"]
    assert target.serving == 1 and target.percent == 0.0 and status.load_intent("endpoint") is None
    assert "not retried" in reconciler.reconcile().results[0].message
    assert reconciler.abort().results == ()  # nothing in progress: nothing to abort


def test_a_kill_between_the_record_and_the_shift_is_repaired_to_what_the_record_says() -> None:
    policy = TrafficPolicy(Shift.LINEAR, linear_step_percent=40, step_wait_seconds=10, bake_seconds=10)
    reconciler, target, clock, status, _ = world(policy)
    target.seen = {2: HEALTHY}
    reconciler.reconcile()
    assert target.percent == 40.0
    clock.now += 10

    left: dict = {}

    def killed(at: str, name: str) -> None:  # what a kill -9 right after the record would leave: the record
        if at == "shifted" and not left:
            left.update(copy.deepcopy(status.records))

    reconciler.transaction.hook = killed
    reconciler.reconcile()
    status.records = left
    assert status.load_intent("endpoint")["rollout"]["weights"] == {"v2": 80.0, "v1": 20.0}
    # ... with the target still on the step before (both versions verified): the next reconcile repairs it
    target.percent = 40.0
    reconciler.transaction.hook = None
    result = reconciler.reconcile().results[0]
    assert target.percent == 80.0 and result.rollout["weights"] == {"v2": 80.0, "v1": 20.0}


def test_a_target_that_cannot_shift_refuses_a_progressive_policy_and_keeps_serving() -> None:
    reconciler, target, _, status, _ = world(target=FakeTarget(serving=1))
    result = reconciler.reconcile().results[0]
    assert not result.ok and target.serving == 1 and "stage" not in target.calls
    assert "traffic = 'canary' needs traffic shifting, which FakeTarget does not implement yet" in result.message


def test_all_at_once_is_todays_switch() -> None:
    reconciler, target, *_ = world(TrafficPolicy())
    result = reconciler.reconcile().results[0]
    assert result.ok and not result.in_progress and target.serving == 2 and "shift" not in target.calls


def test_a_rollout_the_plan_no_longer_wants_is_rolled_back() -> None:
    reconciler, target, clock, status, registry = world()
    reconciler.reconcile()
    registry.versions[1] = version(2, ApprovalStatus.REJECTED)
    reconciler.reconcile()
    assert target.serving == 1 and target.percent == 0.0 and status.load_intent("endpoint") is None


@pytest.mark.parametrize("step", ["shifted", "baking", "done"])
@pytest.mark.parametrize("fault", [RuntimeError, KeyboardInterrupt], ids=["exception", "ctrl-c"])
def test_a_fault_at_a_rollout_step_puts_v1_back_with_no_weights_and_no_intent(step, fault) -> None:
    reconciler, target, clock, status, _ = world()
    target.seen = {2: HEALTHY}

    def hook(at: str, name: str) -> None:
        if at == step:
            raise fault(f"injected at {step}")

    reconciler.transaction.hook = hook
    for _ in range(4):  # start, bake, complete: the fault lands at its step on the way
        try:
            results = reconciler.reconcile().results
        except KeyboardInterrupt:
            break
        if not results[0].ok:
            assert f"injected at {step}" in results[0].message
            assert re.search(r"; v1 (still )?serves$", results[0].message), results[0].message
            break
        clock.now += 30
    else:
        pytest.fail(f"the fault at {step} never fired")
    assert (target.serving, target.percent, status.load_intent("endpoint")) == (1, 0.0, None)


def test_aws_composes_progressive_targets_and_refuses_only_what_sagemaker_refuses(tmp_path, monkeypatch) -> None:
    from deploy.engine.protocol import TrafficTarget
    from greenlight.errors import ConfigurationError
    from greenlight.workspace import Workspace

    env = {"AWS_REGION": "us-east-1", "GREENLIGHT_STATE_TABLE": "t", "GREENLIGHT_ENDPOINT_ROLE_ARN":
           "arn:aws:iam::123456789012:role/r", "GREENLIGHT_LAMBDA_ECR_REPOSITORY": "repo",
           "GREENLIGHT_LAMBDA_BASE_IMAGE_TAG": "base-1", "GREENLIGHT_BATCH_ENABLED": "false",
           "GREENLIGHT_ENDPOINT_TRAFFIC": "canary", "GREENLIGHT_ENDPOINT_CANARY_PERCENT": "20",
           "GREENLIGHT_ENDPOINT_ALARMS": "g-endpoint-5xx,,g-endpoint-latency",  # the stack's join: empty names dropped
           "GREENLIGHT_LAMBDA_TRAFFIC": "linear", "GREENLIGHT_LAMBDA_ALARMS": "g-lambda-errors,"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    ws = Workspace.open("aws", home=tmp_path)
    reconciler = ws.reconciler(ws.deploy_config())
    endpoint, function = reconciler.targets
    assert isinstance(endpoint, TrafficTarget) and isinstance(function, TrafficTarget)
    assert endpoint.deployment["AutoRollbackConfiguration"]["Alarms"] == [  # type: ignore[attr-defined]
        {"AlarmName": "g-endpoint-5xx"}, {"AlarmName": "g-endpoint-latency"}]
    assert function.alarms == ("g-lambda-errors",)  # type: ignore[attr-defined]
    assert {name: p.traffic.value for name, p in reconciler.traffic.items()} == {"endpoint": "canary",
                                                                                 "lambda": "linear"}
    # what SageMaker's guardrails refuse is still one line when the engine is composed, before any call
    monkeypatch.setenv("GREENLIGHT_ENDPOINT_CANARY_PERCENT", "75")
    with pytest.raises(ConfigurationError, match=r"^endpoint canary_percent = 75: SageMaker's deployment guardrails "):
        ws.reconciler(ws.deploy_config())
    monkeypatch.setenv("GREENLIGHT_ENDPOINT_CANARY_PERCENT", "20")
    monkeypatch.setenv("GREENLIGHT_ENDPOINT_ALARMS", "")
    with pytest.raises(ConfigurationError, match=r"^endpoint traffic = canary needs at least one alarm"):
        ws.reconciler(ws.deploy_config())
