"""The local schedule: the AWS request kept under GREENLIGHT_HOME, and what is due when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from deploy.batch.aws_requests import ModelRef, model_from_schedule, schedule_request
from deploy.batch.config import BatchConfig
from deploy.batch.local_schedule import (
    disable_local_schedule,
    enable_local_schedule,
    list_local_schedules,
    mark_fired,
    plan_fire,
    put_local_schedule,
    read_local_schedule,
    read_local_state,
)
from greenlight.errors import NotFoundError, ParameterError

T0 = datetime(2026, 11, 30, 12, 0, 10, tzinfo=UTC)
V1 = ModelRef("greenlight-models", 1, "greenlight-models-v1")


def request(schedule="rate(1 hour)", model=V1, **fields):
    config = BatchConfig(input="in", output="out", schedule=schedule, **fields)
    return schedule_request(config, model, local=True)


def test_put_read_enable_disable(tmp_path):
    stored = put_local_schedule(tmp_path, request(), now=T0)
    assert stored["Arn"] == "arn:aws:scheduler:local:000000000000:schedule/default/greenlight-batch"
    assert read_local_schedule(tmp_path, "greenlight-batch") == stored
    assert model_from_schedule(stored) == V1
    assert disable_local_schedule(tmp_path, "greenlight-batch")["State"] == "DISABLED"
    assert read_local_schedule(tmp_path, "greenlight-batch")["State"] == "DISABLED"
    assert enable_local_schedule(tmp_path, "greenlight-batch")["State"] == "ENABLED"
    v2 = ModelRef("greenlight-models", 2, "greenlight-models-v2")
    put_local_schedule(tmp_path, request(model=v2), now=T0 + timedelta(minutes=5))
    assert model_from_schedule(read_local_schedule(tmp_path, "greenlight-batch")) == v2
    assert [s["Name"] for s in list_local_schedules(tmp_path)] == ["greenlight-batch"]
    assert read_local_schedule(tmp_path, "other") is None
    with pytest.raises(NotFoundError, match="no local batch schedule 'other'"):
        disable_local_schedule(tmp_path, "other")


@pytest.mark.parametrize("change, message", [
    ({"ScheduleExpression": "rate(1 hours)"}, "singular"),
    ({"ScheduleExpressionTimezone": "Atlantis/Central"}, "unknown ScheduleExpressionTimezone"),
    ({"Name": "has space"}, "is not 1-64"),
    ({"State": "PAUSED"}, "State must be ENABLED or DISABLED"),
    ({"FlexibleTimeWindow": {}}, "FlexibleTimeWindow.Mode"),
])
def test_what_create_schedule_refuses_is_refused(tmp_path, change, message):
    with pytest.raises(ParameterError, match=message):
        put_local_schedule(tmp_path, {**request(), **change}, now=T0)


def plan(tmp_path, now):
    schedule, start, last = read_local_state(tmp_path, "greenlight-batch")
    return plan_fire(schedule, start, last, now)


def test_a_rate_schedule_fires_at_once_then_every_period(tmp_path):
    put_local_schedule(tmp_path, request("rate(1 hour)"), now=T0)
    first = plan(tmp_path, T0 + timedelta(seconds=1))
    assert first.run_at == T0 and first.folded == 0
    mark_fired(tmp_path, "greenlight-batch", first.run_at)
    assert plan(tmp_path, T0 + timedelta(minutes=59)).run_at is None
    assert "next run is at 2026-11-30T13:00:10" in plan(tmp_path, T0 + timedelta(minutes=59)).reason
    assert plan(tmp_path, T0 + timedelta(hours=1, seconds=5)).run_at == T0 + timedelta(hours=1)


def test_missed_runs_fold_into_one_for_the_latest_and_old_ones_are_dropped(tmp_path):
    put_local_schedule(tmp_path, request("cron(0 * * * ? *)", max_event_age_seconds=7200), now=T0)
    due = plan(tmp_path, T0 + timedelta(hours=1, minutes=30))  # 13:00 due, 14:00 not yet
    assert due.run_at == datetime(2026, 11, 30, 13, tzinfo=UTC) and due.folded == 0
    mark_fired(tmp_path, "greenlight-batch", due.run_at)
    later = plan(tmp_path, datetime(2026, 11, 30, 17, 30, tzinfo=UTC))  # 14:00 too old; 16:00, 17:00 due
    assert later.run_at == datetime(2026, 11, 30, 17, tzinfo=UTC) and later.folded == 1
    assert "dropped" in later.reason
    put_local_schedule(tmp_path, request("cron(0 0 * * ? *)", max_event_age_seconds=7200), now=T0)
    stale = plan(tmp_path, datetime(2026, 12, 1, 5, tzinfo=UTC))  # midnight's run is five hours old
    assert stale.run_at is None and stale.consumed_until == datetime(2026, 12, 1, 5, tzinfo=UTC)
    assert "older than MaximumEventAgeInSeconds (7200 s) and were dropped" in stale.reason


def test_a_disabled_schedule_never_fires_and_a_new_expression_starts_afresh(tmp_path):
    put_local_schedule(tmp_path, request("rate(5 minutes)"), now=T0)
    disable_local_schedule(tmp_path, "greenlight-batch")
    decision = plan(tmp_path, T0 + timedelta(hours=1))
    assert decision.run_at is None and decision.reason == "it is DISABLED"
    enable_local_schedule(tmp_path, "greenlight-batch")
    mark_fired(tmp_path, "greenlight-batch", T0 + timedelta(minutes=55))
    put_local_schedule(tmp_path, request("rate(10 minutes)"), now=T0 + timedelta(hours=2))
    _, start, last = read_local_state(tmp_path, "greenlight-batch")
    assert (start, last) == (T0 + timedelta(hours=2), None)
    put_local_schedule(tmp_path, request("rate(10 minutes)", model=ModelRef("g", 3, "g-v3")), now=T0 + timedelta(hours=3))
    assert read_local_state(tmp_path, "greenlight-batch")[1] == T0 + timedelta(hours=2)  # same expression: kept
