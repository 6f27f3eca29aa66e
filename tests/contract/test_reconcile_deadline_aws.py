"""Reconciling within Lambda's limits, on moto's HTTP server: long waits handed over, a killed invocation.

GIVEN the SageMaker endpoint target (moto extended: an endpoint stays Creating/Updating for K
DescribeEndpoint calls, tests/support/moto_sagemaker.py) and a second target (an in-memory fake), the
DynamoDB lease and status store on moto, and an invocation deadline of 60 s on a fake clock (the clock
moves only when the code sleeps), WHEN the approval handler's `handle` reconciles, THEN each
invocation ends before its deadline with the endpoint "in progress" (its intent kept), the other target
deploys in the same invocation, later invocations (the periodic resync) continue where the last one
stopped, and nothing serves that was not probed. A killed invocation leaves its lease and its intent:
the next resync takes the lease once the killed invocation's own end has passed, and converges.
"""

from __future__ import annotations

import json

import pytest

from deploy.config import EndpointConfig
from deploy.endpoint.aws import CONFIG_TAG, SageMakerEndpointTarget
from deploy.engine.aws_state import DynamoLease, DynamoStatusStore
from deploy.engine.deadline import Deadline
from deploy.engine.events import RESYNC_DETAIL_TYPE, RESYNC_SOURCE
from deploy.engine.model import NothingApproved, TargetKind
from deploy.engine.reconciler import Reconciler
from deploy.engine.smoke import SMOKE_KEY
from deploy.handler import handle
from greenlight.errors import ConflictError
from greenlight.registry import ApprovalStatus, SageMakerModelRegistry
from tests.contract.conftest import REGION, aws_client
from tests.support.deploy_env_aws import ACCOUNT, ROLE, TABLE, create_state_table
from tests.support.moto_sagemaker import FAKE
from tests.unit.test_reconciler import FakeTarget

GROUP = "slow-models"
SMOKE = {"format": "greenlight-smoke/1", "content_type": "text/csv", "body": "1,2\n3,4\n", "predictions": [1.5, 2.5]}
ANSWER = json.dumps({"predictions": [1.5, 2.5]})
EPOCH = 1_800_000_000.0  # the fake wall clock's origin (the lease compares wall-clock expiries)
INVOCATION = 60.0  # seconds an invocation has (context.get_remaining_time_in_millis() / 1000)


class FakeTime:
    """A monotonic clock (and a wall clock beside it) that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return EPOCH + self.now


class World:
    def __init__(self, url: str):
        self.url, self.time = url, FakeTime()
        self.sm = aws_client("sagemaker", url)
        self.dynamodb = aws_client("dynamodb", url)
        create_state_table(self.dynamodb)
        self.registry = SageMakerModelRegistry(aws_client("sagemaker", url))
        self.endpoint = SageMakerEndpointTarget(self.sm, aws_client("sagemaker-runtime", url),
                                                EndpointConfig(update_timeout_seconds=600), GROUP, ROLE, poll=10,
                                                sleep=self.time.sleep, clock=self.time.clock)
        self.other = FakeTarget("lambda", TargetKind.LAMBDA)
        self.lease = DynamoLease(self.dynamodb, TABLE, GROUP, poll=5, clock=self.time.wall, monotonic=self.time.clock,
                                 sleep=self.time.sleep)
        self.status = DynamoStatusStore(self.dynamodb, TABLE, GROUP)
        self.reconciler = Reconciler(GROUP, self.registry, [self.endpoint, self.other], lock=self.lease,
                                     status=self.status, read=lambda uri: json.dumps(SMOKE).encode(),
                                     policy=NothingApproved.KEEP)

    def approve(self) -> int:
        version = self.registry.create_model_package({
            "ModelPackageGroupName": GROUP,
            "InferenceSpecification": {"Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": "s3://b/m.tar.gz"}],
                                       "SupportedContentTypes": ["text/csv"],
                                       "SupportedResponseMIMETypes": ["application/json"]},
            "CustomerMetadataProperties": {SMOKE_KEY: "s3://b/smoke.json"}})
        self.registry.update_status(GROUP, version.version, ApprovalStatus.APPROVED)
        FAKE.answer(version.arn, ANSWER)  # what an endpoint serving this version answers
        return version.version

    def resync(self) -> tuple[dict, float]:
        """One invocation of the handler by the periodic resync: its result, and the seconds it took."""
        event = {"id": f"r{self.time.now:g}", "source": RESYNC_SOURCE, "detail-type": RESYNC_DETAIL_TYPE,
                 "account": ACCOUNT, "region": REGION, "detail": {"ModelPackageGroupName": GROUP}}
        start = self.time.now
        result = handle(event, self.reconciler, account=ACCOUNT, region=REGION,
                        deadline=Deadline.after(INVOCATION, clock=self.time.clock))
        return result, self.time.now - start

    def results(self, result: dict) -> dict[str, dict]:
        return {r["target"]: r for r in result["report"]["results"]}

    def item(self, pk: str) -> dict | None:
        return self.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")

    def serves(self) -> tuple[int | None, bool]:
        observed = self.endpoint.observe()
        return observed.version, observed.active


@pytest.fixture
def world(moto_endpoint) -> World:
    return World(moto_endpoint)


def converge(world: World, version: int, most: int) -> list[dict]:
    """Resync until the endpoint serves `version` verified; every invocation ends in time, nothing unprobed serves."""
    seen = []
    for _ in range(most):
        result, took = world.resync()
        assert took <= INVOCATION - 6  # work stops at the deadline (the margin kept for the report and the lease)
        assert world.item(f"lease#{GROUP}") is None  # released at the end of every invocation
        endpoint = world.results(result)["endpoint"]
        seen.append(endpoint)
        assert endpoint["ok"], endpoint["message"]
        if not endpoint["in_progress"]:
            assert world.serves() == (version, True) and world.item(f"intent#{GROUP}#endpoint") is None
            return seen
        intent = json.loads(world.item(f"intent#{GROUP}#endpoint")["intent"]["S"])
        assert intent["version"] == version and intent["waiting"]
        running, active = world.serves()
        assert running != version or not active  # v<version> takes the traffic only once its probe passed
    raise AssertionError(f"not converged after {most} invocations: {[r['message'] for r in seen]}")


def test_an_endpoint_slow_to_start_is_handed_over_and_the_other_target_deploys_in_the_same_invocation(world):
    v1 = world.approve()
    FAKE.settle_after(5)  # every creation and update stays Creating/Updating for 5 DescribeEndpoint calls
    first, took = world.resync()
    assert took <= (INVOCATION - 6) / 2  # two targets act: the endpoint waits within its half of the time only
    results = world.results(first)
    assert first["ok"] and results["lambda"]["ok"] and world.other.serving == v1  # not delayed by the endpoint
    endpoint = results["endpoint"]
    assert endpoint["in_progress"] and endpoint["message"].startswith(
        "in progress: probing v1 on endpoint; previous nothing, waiting for endpoint slow-models-verify to leave "
        "Creating (start verification endpoint slow-models-verify for v1); nothing was deployed before, so nothing "
        "is; the next reconcile continues it")
    saved = world.status.load()
    assert saved["results"][0]["in_progress"] and saved["last_failure"] is None
    steps = converge(world, v1, most=4)
    assert "continued from an earlier reconcile" in steps[-1]["message"]
    # an update of a serving endpoint: v1 keeps serving while v2 is probed and while the endpoint is Updating
    v2 = world.approve()
    steps = converge(world, v2, most=6)
    assert len(steps) >= 2 and all(s["in_progress"] for s in steps[:-1])
    assert any("to leave Updating" in s["message"] for s in steps[:-1])
    arn = world.sm.describe_endpoint(EndpointName=GROUP)["EndpointArn"]
    tags = {t["Key"]: t["Value"] for t in world.sm.list_tags(ResourceArn=arn)["Tags"]}
    assert tags[CONFIG_TAG] == world.sm.describe_endpoint(EndpointName=GROUP)["EndpointConfigName"]


class Killed(BaseException):
    """The invocation's end: Lambda stops the process; no handler, no finally of ours runs after it."""


def test_a_killed_invocation_converges_on_the_next_resync_once_its_lease_has_passed_its_deadline(world, monkeypatch):
    v1 = world.approve()
    converge(world, v1, most=1)
    v2 = world.approve()
    # GIVEN an invocation killed right after the endpoint switched to v2, before its confirmation: its lease
    # and its intent stay behind (no undo, no release)
    start = world.time.now

    def kill(step: str, target: str) -> None:
        if (step, target) == ("switched", "endpoint"):
            raise Killed()

    world.reconciler.transaction.hook = kill
    monkeypatch.setattr(world.reconciler.transaction, "_undo", lambda *args: "killed")
    monkeypatch.setattr(world.lease, "_release", lambda owner: None)
    with pytest.raises(Killed):
        world.resync()
    monkeypatch.undo()
    world.reconciler.transaction.hook = None
    lease = world.item(f"lease#{GROUP}")
    assert float(lease["expires_at"]["N"]) == pytest.approx(EPOCH + start + INVOCATION)  # the invocation's end
    assert json.loads(world.item(f"intent#{GROUP}#endpoint")["intent"]["S"])["step"] == "confirm"
    assert world.serves() == (v2, False)  # switched, not confirmed: not counted as serving verified
    # WHEN a resync comes 10 s later THEN it waits for the lease within its own time only, and gives up
    world.time.now = start + 10
    with pytest.raises(ConflictError, match=r"another reconcile of slow-models has held its lease .* for over 54 s"):
        world.resync()
    assert world.time.now <= start + 10 + INVOCATION - 6
    # WHEN the next resync comes once the killed invocation's end has passed THEN it takes the lease, undoes the
    # unconfirmed switch, and converges on v2
    world.time.now = start + 600
    result, took = world.resync()
    assert took <= INVOCATION - 6
    endpoint = world.results(result)["endpoint"]
    assert endpoint["ok"] and "stopped while confirming v2 on endpoint; previous v1; undone: v1 serves" in (
        endpoint["warning"] or "")
    if endpoint["in_progress"]:
        converge(world, v2, most=4)
    assert world.serves() == (v2, True) and world.item(f"lease#{GROUP}") is None


def test_a_smoke_transform_job_still_running_is_handed_over_and_found_by_its_name_next_time(moto_endpoint, models,
                                                                                          tmp_path, monkeypatch):
    """The batch target's smoke job (moto extended: InProgress for K describes) under a 60 s deadline: the
    invocation returns with the batch target in progress and the schedule unchanged; the next one finds the
    same job by its name (no second job), reads its result, and moves the schedule."""
    from tests.support.deploy_env import GROUP as BATCH_GROUP
    from tests.support.deploy_env_batch import AwsBatchDeployEnv
    from tests.support.moto_batch import FAKE_BATCH

    env = AwsBatchDeployEnv(moto_endpoint, tmp_path / "home", models, monkeypatch, BATCH_GROUP)
    try:
        time = FakeTime()
        engine = env.reconciler()
        [target] = engine.targets
        target.smoke._sleep, target.smoke._clock = time.sleep, time.clock
        v1 = env.register()
        env.approve(v1)
        FAKE_BATCH.slow_jobs = 5  # each describe is a poll of batch.smoke poll seconds
        report = engine.reconcile(trigger="resync", deadline=Deadline.after(INVOCATION, clock=time.clock))
        [result] = report.results
        assert report.ok and result.in_progress and "waiting for smoke transform job" in result.message
        assert time.now - 1000.0 <= INVOCATION - 6 and env.served_version() is None and FAKE_BATCH.jobs_run == 1
        for _ in range(3):
            [result] = engine.reconcile(trigger="resync", deadline=Deadline.after(INVOCATION, clock=time.clock)).results
            if not result.in_progress:
                break
        assert result.ok and not result.in_progress, result.message
        assert "continued from an earlier reconcile" in result.message and env.served_version() == v1
        assert FAKE_BATCH.jobs_run == 1  # the job started in the first invocation was found by its name
    finally:
        env.close()
