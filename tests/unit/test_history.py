"""The deployment history: what the reconciler appends, the local SQLite table, and `served_at` (pure).

GIVEN the reconciler's in-memory fakes (tests/unit/test_reconciler.py) and a history store, WHEN versions are
approved, rejected and fail their smoke test, THEN each target change is appended once with its from -> to,
trigger, event id, smoke result and failure; a store that cannot be written never fails the deployment;
the local table refuses UPDATE and DELETE; and `served_at` answers from successful changes only.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from deploy.engine.history import (Cause, HistoryEvent, HistoryQuery, Trigger, cause_of_event, parse_when,
                                   served_at)
from deploy.engine.local_history import LocalHistory, history_path
from greenlight.errors import ParameterError
from greenlight.registry.model import ApprovalStatus
from tests.unit.test_reconciler import SMOKE, FakeRegistry, FakeTarget, reconciler, version


class MemoryHistory:
    def __init__(self) -> None:
        self.events: list[HistoryEvent] = []
        self.error: BaseException | None = None

    def append(self, event: HistoryEvent) -> None:
        if self.error is not None:
            raise self.error
        self.events.append(event)

    def read(self, query: HistoryQuery = HistoryQuery()) -> list[HistoryEvent]:
        return sorted(self.events, key=lambda e: e.at, reverse=True)


def with_history(registry, *targets, history, **options):
    engine = reconciler(registry, *targets, **options)
    engine.history = history
    return engine


def test_each_target_change_is_appended_with_its_cause_and_smoke_result():
    registry = FakeRegistry(version(1))
    endpoint, function = FakeTarget("endpoint"), FakeTarget("lambda", serving=None)
    history = MemoryHistory()
    engine = with_history(registry, endpoint, function, history=history,
                          smoke={f"s3://b/{n}/smoke.json": SMOKE for n in (1, 2)})
    engine.reconcile(trigger="event e1", cause=Cause(Trigger.APPROVAL, "e1", "alice"))
    registry.versions.append(version(2))
    engine.reconcile(trigger="event e2", cause=Cause(Trigger.APPROVAL, "e2"))
    engine.reconcile(trigger="nothing changed")  # no change: nothing appended
    registry.versions[1] = version(2, ApprovalStatus.REJECTED)
    engine.reconcile(trigger="event e3", cause=Cause(Trigger.REJECTION, "e3"))
    rows = [(e.target, e.from_version, e.to_version, e.trigger, e.event_id, e.smoke, e.ok) for e in history.events]
    assert rows == [
        ("endpoint", None, 1, "approval", "e1", "passed", True), ("lambda", None, 1, "approval", "e1", "passed", True),
        ("endpoint", 1, 2, "approval", "e2", "passed", True), ("lambda", 1, 2, "approval", "e2", "passed", True),
        ("endpoint", 2, 1, "rejection", "e3", "passed", True), ("lambda", 2, 1, "rejection", "e3", "passed", True)]
    assert history.events[0].approver == "alice" and history.events[0].stage == "default"
    assert all(e.duration_seconds is not None and e.duration_seconds >= 0 for e in history.events)


def test_a_failed_smoke_test_is_recorded_as_a_failure_that_changed_nothing():
    target = FakeTarget(serving=None)
    target.fail["probe"] = RuntimeError("prediction 0.7 is not the recorded 0.5")
    history = MemoryHistory()
    report = with_history(FakeRegistry(version(1)), target, history=history).reconcile()
    (event,) = history.events
    assert not report.ok and not event.ok and event.smoke == "failed" and event.trigger == "manual deploy"
    assert "prediction 0.7" in event.failure
    assert served_at(history.events, "9999-01-01T00:00:00.000Z") == {}


def test_a_history_that_cannot_be_written_never_blocks_the_deployment():
    target = FakeTarget(serving=None)
    history = MemoryHistory()
    history.error = sqlite3.OperationalError("database or disk is full")
    report = with_history(FakeRegistry(version(1)), target, history=history).reconcile()
    assert report.ok and target.serving == 1
    assert "cannot append to the deployment history" in report.history_error
    assert "disk is full" in report.to_dict()["history_error"]


def test_the_local_table_is_append_only_and_reads_newest_first(tmp_path):
    store = LocalHistory(tmp_path, "g")
    assert store.read() == []
    for at, target, to in (("2026-12-01T10:00:00.000Z", "endpoint", 1), ("2026-12-01T12:00:00.000Z", "lambda", 2),
                           ("2026-12-01T11:00:00.000Z", "endpoint", 2)):
        store.append(HistoryEvent(at, "g", "default", target, target, "deploy", None, to, True, "approval"))
    LocalHistory(tmp_path, "other").append(HistoryEvent("2026-12-02T00:00:00.000Z", "other", "default", "endpoint",
                                                        "endpoint", "deploy", None, 9, True, "approval"))
    assert [e.at[11:13] for e in store.read()] == ["12", "11", "10"]
    assert [e.to_version for e in store.read(HistoryQuery(target="endpoint"))] == [2, 1]
    assert [e.to_version for e in store.read(HistoryQuery(since="2026-12-01T11:00:00.000Z"))] == [2, 2]
    conn = sqlite3.connect(history_path(tmp_path))
    for statement in ("UPDATE deployment_history SET to_version = 7", "DELETE FROM deployment_history"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(statement)
    conn.close()
    assert len(store.read()) == 3


def test_served_at_takes_the_newest_successful_change_at_or_before_the_instant():
    def event(at, target, to, ok=True):
        return HistoryEvent(at, "g", "default", target, "endpoint", "deploy", None, to, ok, "approval")

    events = [event("2026-12-01T10:00:00.000Z", "endpoint", 1), event("2026-12-01T12:00:00.000Z", "endpoint", 2),
              event("2026-12-01T11:00:00.000Z", "endpoint", 3, ok=False), event("2026-12-01T10:30:00.000Z", "batch", 1)]
    at = served_at(events, "2026-12-01T11:30:00.000Z")
    assert {k: v["version"] for k, v in at.items()} == {"batch": 1, "endpoint": 1}
    assert served_at(events, "2026-12-01T09:00:00.000Z") == {}
    assert served_at(events, "2026-12-01T12:00:00.000Z")["endpoint"]["version"] == 2


def test_times_parse_as_iso_8601_or_a_time_ago():
    now = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert parse_when("2026-12-01T14:00Z", "--at", now) == "2026-12-01T14:00:00.000Z"
    assert parse_when("2026-12-01T15:00+01:00", "--at", now) == "2026-12-01T14:00:00.000Z"
    assert parse_when("2026-12-01", "--since", now) == "2026-12-01T00:00:00.000Z"
    assert parse_when("2h", "--since", now) == "2026-12-05T10:00:00.000Z"
    with pytest.raises(ParameterError, match="--at 'yesterday' is not a time"):
        parse_when("yesterday", "--at", now)


def test_the_cause_of_an_event_labels_the_trigger_never_what_is_deployed():
    approved = {"id": "e1", "detail-type": "SageMaker Model Package State Change",
                "detail": {"ModelApprovalStatus": "Approved",
                           "LastModifiedBy": {"IamIdentity": {"Arn": "arn:aws:iam::1:user/alice"}}}}
    assert cause_of_event(approved) == Cause(Trigger.APPROVAL, "e1", "arn:aws:iam::1:user/alice")
    rejected = {"id": "e2", "detail": {"ModelApprovalStatus": "Rejected"}}
    assert cause_of_event(rejected) == Cause(Trigger.REJECTION, "e2")
    assert cause_of_event({"id": "r", "detail-type": "Greenlight Resync"}).trigger is Trigger.RESYNC
    assert cause_of_event("junk") == Cause(Trigger.MANUAL)


def test_a_lifecycle_event_is_a_promotion_or_rejection_in_its_stage_only():
    def event(status: str, stage_status: str) -> dict:
        return {"id": "e9", "detail": {"ModelApprovalStatus": status,
                                       "ModelLifeCycle": {"Stage": "production", "StageStatus": stage_status}}}

    promoted = cause_of_event(event("Approved", "Approved"))
    assert promoted.for_stage("production") == Cause(Trigger.PROMOTION, "e9", None, "production", "Approved")
    assert promoted.for_stage("staging").trigger is Trigger.APPROVAL
    assert cause_of_event(event("Approved", "Rejected")).for_stage("production").trigger is Trigger.REJECTION
    # the approval itself withdrawn is a rejection everywhere, whatever the lifecycle says
    assert cause_of_event(event("Rejected", "Approved")).for_stage("production").trigger is Trigger.REJECTION
