"""The reconciler's and the deploy transaction's rules, each against in-memory fakes, in milliseconds.

GIVEN a fake registry (versions in a list), fake targets (deploy.engine.protocol primitives over a
variable, recording every call), an in-memory status store and smoke data in a dict, WHEN the
reconciler runs, THEN each rule of deploy/engine/reconciler.py and deploy/engine/transaction.py holds.
The five rule changes that once survived every test (issue 18) are named in the docstrings of the
tests that kill them: "mutant 1" .. "mutant 5".
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy.engine.model import Action, NothingApproved, Observed, TargetKind
from deploy.engine.protocol import Artifact, DeployTarget, Staged
from deploy.engine.reconciler import Reconciler
from deploy.engine.smoke import SMOKE_KEY
from deploy.engine.transaction import NOT_SMOKE_TESTED, STEPS, MemoryIntents, Transaction
from greenlight.errors import DeploymentFailed, NotFoundError
from greenlight.registry.model import ApprovalStatus, ModelVersion

GROUP = "g"
SMOKE = json.dumps({"format": "greenlight-smoke/1", "body": "1,2\n", "predictions": [0.5]}).encode()


def version(n: int, status: ApprovalStatus = ApprovalStatus.APPROVED, smoke: str | None = "default") -> ModelVersion:
    uri = f"s3://b/{n}/smoke.json" if smoke == "default" else smoke
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return ModelVersion(GROUP, n, f"arn:aws:sagemaker:r:1:model-package/{GROUP}/{n}", status, None,
                        f"s3://b/{n}/model.tar.gz", "img", ("text/csv",), ("application/json",), {},
                        {SMOKE_KEY: uri} if uri else {}, None, now, now)


class FakeRegistry:
    def __init__(self, *versions: ModelVersion):
        self.versions = list(versions)

    def list_versions(self, group: str) -> list[ModelVersion]:
        if not self.versions:
            raise NotFoundError(f"no group {group}")
        return list(self.versions)


class FakeTarget:
    """A DeployTarget over a variable: `serving` is what answers; `fail[primitive]` raises there."""

    def __init__(self, name: str = "endpoint", kind: TargetKind = TargetKind.ENDPOINT, serving: int | None = None):
        self.name, self.kind, self.serving = name, kind, serving
        self.calls: list[str] = []
        self.fail: dict[str, BaseException] = {}
        self.kept: list[frozenset[int]] = []
        self.probed: list[str] = []
        self.verified = True  # False: it serves a version no probe passed (a switch a dead reconcile left)

    def _call(self, primitive: str) -> None:
        self.calls.append(primitive)
        if primitive in self.fail:
            raise self.fail[primitive]

    def observe(self) -> Observed:
        self._call("observe")
        return Observed(self.name, self.kind, self.serving, self.serving is not None and self.verified)

    def fetch(self, release, scratch: Path) -> Artifact:
        self._call("fetch")
        return Artifact(release.version, release.model_data_url)

    def stage(self, release, artifact: Artifact) -> Staged:
        self._call("stage")
        return Staged(self.name, release.version, {"before": self.serving})

    def probe(self, staged: Staged, smoke) -> str:
        self._call("probe")
        self.probed.append(smoke.body)
        return "in memory"

    def switch(self, staged: Staged) -> str:
        self._call("switch")
        self.serving = staged.version
        return "switched"

    def confirm(self, staged: Staged, smoke) -> str | None:
        self._call("confirm")
        return None

    def unstage(self, staged: Staged) -> None:
        self._call("unstage")
        if self.serving == staged.version:
            self.serving, self.verified = staged.ref["before"], True

    def stop(self) -> str:
        self._call("stop")
        self.serving = None
        return "stopped"

    def prune(self, keep: frozenset[int]) -> list[str]:
        self._call("prune")
        self.kept.append(keep)
        return []


class MemoryStatus(MemoryIntents):
    def __init__(self) -> None:
        super().__init__()
        self.saved: list[dict] = []
        self.load_error: BaseException | None = None

    def save(self, report: dict) -> None:
        self.saved.append(json.loads(json.dumps(report)))

    def load(self) -> dict | None:
        if self.load_error is not None:
            raise self.load_error
        return self.saved[-1] if self.saved else None


def reconciler(registry: FakeRegistry, *targets: FakeTarget, smoke: dict[str, bytes] | None = None,
               smoke_required: bool = True, status: MemoryStatus | None = None,
               policy: NothingApproved = NothingApproved.KEEP) -> Reconciler:
    data = {f"s3://b/{v.version}/smoke.json": SMOKE for v in registry.versions} if smoke is None else smoke

    def read(uri: str) -> bytes:
        if uri not in data:
            raise NotFoundError(f"no object at {uri}")
        return data[uri]

    return Reconciler(GROUP, registry, list(targets), lock=contextlib.nullcontext, status=status or MemoryStatus(),
                      read=read, policy=policy, smoke_required=smoke_required)


def test_the_fake_is_a_deploy_target():
    assert isinstance(FakeTarget(), DeployTarget)


# -- the five mutants ------------------------------------------------------------------------------

def test_smoke_required_refuses_a_version_without_smoke_data():
    """Kills mutant 1 (`smoke.required` ignored: a version without smoke-test data deploys unprobed)."""
    target = FakeTarget(serving=1)
    report = reconciler(FakeRegistry(version(1), version(2, smoke=None)), target).reconcile()
    [result] = report.results
    assert not report.ok and not result.ok and result.action is Action.DEPLOY
    assert "v2 has no smoke-test data" in result.message and result.message.endswith("; v1 still serves")
    assert target.serving == 1 and "stage" not in target.calls


def test_without_smoke_data_and_smoke_not_required_it_deploys_unprobed_and_says_so():
    """Kills mutant 1 the other way (`smoke.required = false` ignored: such a version is refused)."""
    target = FakeTarget(serving=1)
    report = reconciler(FakeRegistry(version(1), version(2, smoke=None)), target, smoke_required=False).reconcile()
    [result] = report.results
    assert report.ok and target.serving == 2 and "probe" not in target.calls
    assert result.message == f"v1 -> v2 ({NOT_SMOKE_TESTED}; switched)"


@pytest.mark.parametrize("smoke_required", [True, False])
def test_unreadable_smoke_data_fails_the_target_whatever_smoke_required_says(smoke_required):
    """Kills mutant 2 (unreadable smoke data deploying with no smoke test)."""
    target = FakeTarget(serving=1)
    engine = reconciler(FakeRegistry(version(1), version(2)), target, smoke={}, smoke_required=smoke_required)
    [result] = engine.reconcile().results
    assert not result.ok and target.serving == 1 and "stage" not in target.calls
    assert "cannot read v2's smoke-test data at s3://b/2/smoke.json: no object at s3://b/2/smoke.json" \
        in result.message


def test_a_target_that_cannot_be_observed_is_reported_failed_with_its_own_kind():
    """Kills mutant 3 (a target that cannot be observed dropped from the report, which then says ok)."""
    good = FakeTarget("endpoint", serving=2)
    blind = FakeTarget("lambda", TargetKind.LAMBDA, serving=2)
    blind.fail["observe"] = sqlite3.OperationalError("database is locked")
    status = MemoryStatus()
    engine = reconciler(FakeRegistry(version(2)), good, blind, status=status)
    for report in (engine.reconcile(), engine.reconcile(dry_run=True)):
        assert not report.ok
        failed = next(r for r in report.results if r.target == "lambda")
        assert (failed.ok, failed.kind, failed.desired) == (False, TargetKind.LAMBDA, 2)
        assert failed.message == "cannot observe it: SQLite: database is locked"
    assert status.saved[-1]["last_failure"]["targets"] == {"lambda": "cannot observe it: SQLite: database is locked"}


def test_last_failure_survives_a_clean_run():
    """Kills mutant 4 (`last_failure` forgotten after a clean run)."""
    target = FakeTarget(serving=1)
    target.fail["probe"] = DeploymentFailed("5 of 5 smoke predictions differ")
    status = MemoryStatus()
    engine = reconciler(FakeRegistry(version(1), version(2)), target, status=status)
    first = engine.reconcile(trigger="event a")
    assert not first.ok and target.serving == 1
    failure = status.saved[-1]["last_failure"]
    assert failure["trigger"] == "event a" and "5 of 5 smoke predictions differ" in failure["targets"]["endpoint"]
    del target.fail["probe"]
    assert engine.reconcile(trigger="event b").ok and target.serving == 2
    assert status.saved[-1]["last_failure"] == failure and status.saved[-1]["ok"]


def test_pruning_keeps_every_running_and_every_desired_version():
    """Kills mutant 5 (running versions not kept by pruning): a target left on v1 by a failed deployment of v3,
    and one on v2 (not Approved any more), must keep both running versions and the desired one."""
    stuck, other = FakeTarget("endpoint", serving=1), FakeTarget("lambda", TargetKind.LAMBDA, serving=2)
    stuck.fail["probe"] = DeploymentFailed("smoke test failed")
    other.fail["stage"] = DeploymentFailed("cannot build the image")
    reconciler(FakeRegistry(version(1), version(2, ApprovalStatus.REJECTED), version(3)), stuck, other).reconcile()
    assert stuck.kept == other.kept == [frozenset({1, 2, 3})]


# -- per-target isolation -------------------------------------------------------------------------

def test_any_fault_inside_one_target_is_its_failure_in_one_line_and_the_others_still_reconcile(tmp_path):
    full = FakeTarget("endpoint", serving=1)
    full.fail["switch"] = OSError(28, "No space left on device", str(tmp_path / "deployments" / "g" / "endpoint.json"))
    buggy = FakeTarget("lambda", TargetKind.LAMBDA, serving=1)
    buggy.fail["stage"] = KeyError("model_dir")
    fine = FakeTarget("batch", TargetKind.BATCH, serving=1)
    status = MemoryStatus()
    report = reconciler(FakeRegistry(version(1), version(2)), full, buggy, fine, status=status).reconcile()
    messages = {r.target: r.message for r in report.results}
    assert fine.serving == 2 and full.serving == 1 and buggy.serving == 1
    assert messages["endpoint"].startswith(f"deploy failed: no space left on / while writing {tmp_path}/deployments")
    assert messages["endpoint"].endswith("endpoint.json; v1 still serves")
    assert messages["lambda"] == "deploy failed: KeyError: 'model_dir' (a bug in Greenlight); v1 still serves"
    assert all("\n" not in m for m in messages.values())
    assert set(status.saved[-1]["last_failure"]["targets"]) == {"endpoint", "lambda"}


def test_an_unreadable_status_store_never_blocks_a_reconcile():
    target = FakeTarget(serving=1)
    status = MemoryStatus()
    status.load_error = OSError(5, "Input/output error", "/home/.greenlight/deployments/g/status.json")
    report = reconciler(FakeRegistry(version(1), version(2)), target, status=status).reconcile()
    assert report.ok and target.serving == 2 and status.saved[-1]["results"][0]["ok"]


# -- the transaction ------------------------------------------------------------------------------

def test_the_intent_is_recorded_before_acting_and_claims_only_what_was_verified():
    target = FakeTarget(serving=1)
    status = MemoryStatus()
    seen: list[tuple[str, str | None, list[str]]] = []

    def hook(step: str, name: str) -> None:
        record = status.load_intent(name)
        seen.append((step, None if record is None else record["step"], list(target.calls)))

    engine = reconciler(FakeRegistry(version(1), version(2)), target, status=status)
    engine.transaction.hook = hook
    engine.reconcile()
    assert [s for s, _, _ in seen] == list(STEPS)
    assert seen[0] == ("intent", "stage", ["observe"])  # recorded before fetching anything
    assert [(s, r) for s, r, _ in seen] == [("intent", "stage"), ("fetched", "stage"), ("staged", "probe"),
                                            ("probed", "switch"), ("switched", "confirm"), ("confirmed", "confirm"),
                                            ("done", None)]
    assert "switch" not in seen[3][2] and seen[3][2][-1] == "probe"  # "switch" is recorded only after the probe
    assert status.records == {}  # nothing left behind


@pytest.mark.parametrize("step", STEPS[:-2])
@pytest.mark.parametrize("fault", [DeploymentFailed("boom"), KeyboardInterrupt()], ids=["exception", "ctrl-c"])
def test_a_fault_at_any_step_leaves_the_previous_version_serving_and_no_intent(step, fault):
    target = FakeTarget(serving=1)
    status = MemoryStatus()

    def hook(at: str, name: str) -> None:
        if at == step:
            raise fault

    engine = reconciler(FakeRegistry(version(1), version(2)), target, status=status)
    engine.transaction.hook = hook
    if isinstance(fault, KeyboardInterrupt):
        with pytest.raises(KeyboardInterrupt):
            engine.reconcile()
        [result] = status.saved[-1]["results"]  # saved before the interrupt went on
        assert result["message"].startswith("interrupted while ") and result["message"].endswith("; v1 still serves")
    else:
        [result] = engine.reconcile().results
        assert not result.ok and result.message == "deploy failed: boom; v1 still serves"
    assert target.serving == 1 and status.load_intent("endpoint") is None
    assert ("unstage" in target.calls) == (STEPS.index(step) >= STEPS.index("staged"))


def test_recovery_undoes_what_a_dead_reconcile_staged_and_finishes_what_it_switched():
    target = FakeTarget(serving=1)
    status = MemoryStatus()
    staged = Staged("endpoint", 2, {"before": 1})
    status.save_intent("endpoint", {"target": "endpoint", "version": 2, "previous": 1, "step": "probe",
                                    "staged": staged.to_dict(), "holder": "pid 9", "started": "t", "updated": "t"})
    target.serving = 2  # it had been switched to v2 (and the target reports it active: verified), so it finished
    transaction = Transaction(status)
    assert transaction.recover(target) == ("a reconcile (pid 9, t) stopped while probing v2 on endpoint; previous "
                                           "v1; it had finished: v2 serves")
    assert "unstage" not in target.calls and status.load_intent("endpoint") is None

    target.verified = False  # it runs v2, which no probe passed: undo
    status.save_intent("endpoint", {"target": "endpoint", "version": 2, "previous": 1, "step": "switch",
                                    "staged": staged.to_dict(), "holder": "pid 9", "started": "t", "updated": "t"})
    note = transaction.recover(target)
    assert "unstage" in target.calls and status.load_intent("endpoint") is None
    assert note == "a reconcile (pid 9, t) stopped while switching to v2 on endpoint; previous v1; undone: v1 serves"
    assert target.serving == 1


def test_a_reconcile_reports_the_recovery_as_a_warning_and_then_deploys():
    target = FakeTarget(serving=1)
    status = MemoryStatus()
    status.save_intent("endpoint", {"target": "endpoint", "version": 2, "previous": 1, "step": "probe",
                                    "staged": Staged("endpoint", 2, {"before": 1}).to_dict(), "holder": "pid 9",
                                    "started": "t", "updated": "t"})
    [result] = reconciler(FakeRegistry(version(1), version(2)), target, status=status).reconcile().results
    assert result.ok and target.serving == 2 and target.calls.index("unstage") < target.calls.index("stage")
    assert "stopped while probing v2" in result.warning and "undone: v1 still serves" in result.warning


def test_an_unreadable_intent_is_dropped_and_observation_decides():
    target = FakeTarget(serving=1)
    status = MemoryStatus()
    status.save_intent("endpoint", {"what": "not an intent"})
    assert Transaction(status).recover(target) is None and status.load_intent("endpoint") is None


def test_a_failed_undo_keeps_the_intent_for_the_next_reconcile():
    target = FakeTarget(serving=1)
    target.fail["probe"] = DeploymentFailed("differs")
    target.fail["unstage"] = OSError(30, "Read-only file system", "/ro/deployments/g/endpoint.json")
    status = MemoryStatus()
    with pytest.raises(DeploymentFailed, match=r"^differs; undoing it failed \(/ is a read-only file system; cannot "
                                               r"write /ro/deployments/g/endpoint.json\); the next reconcile"):
        Transaction(status).deploy(target, _release(2), _smoke())
    assert status.load_intent("endpoint")["step"] == "probe"


def _release(n: int):
    from deploy.engine.model import Release

    return Release.from_version(version(n), SMOKE_KEY)


def _smoke():
    from deploy.engine.smoke import SmokeTest

    return SmokeTest.from_json(SMOKE, "smoke.json")


# -- plan and dry run -----------------------------------------------------------------------------

def test_a_dry_run_plans_without_any_write_call_and_keeps_each_target_s_kind():
    endpoint, batch = FakeTarget("endpoint", serving=1), FakeTarget("batch", TargetKind.BATCH, serving=None)
    status = MemoryStatus()
    report = reconciler(FakeRegistry(version(1), version(2)), endpoint, batch, status=status).reconcile(dry_run=True)
    assert [(r.target, r.kind, r.action) for r in report.results] == [
        ("endpoint", TargetKind.ENDPOINT, Action.DEPLOY), ("batch", TargetKind.BATCH, Action.DEPLOY)]
    assert endpoint.calls == batch.calls == ["observe"] and status.saved == [] and status.records == {}


def test_nothing_approved_with_stop_stops_every_target_and_an_empty_group_plans_nothing():
    target = FakeTarget(serving=1)
    report = reconciler(FakeRegistry(version(1, ApprovalStatus.REJECTED)), target,
                        policy=NothingApproved.STOP).reconcile()
    assert report.ok and target.serving is None and "stop" in target.calls
    empty = FakeTarget()
    assert reconciler(FakeRegistry(), empty).reconcile().ok and empty.calls == ["observe", "prune"]
