"""EventBridge Scheduler cron()/rate() expressions: what the service accepts, and when they fire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from deploy.batch.expressions import (
    CronExpression,
    RateExpression,
    ScheduleExpressionError,
    next_fire_time,
    parse_schedule_expression,
)

START = datetime(2026, 3, 1, tzinfo=UTC)


def fires(expression: str, after: datetime, count: int = 3, zone: str = "UTC", start=START) -> list[datetime]:
    parsed = parse_schedule_expression(expression)
    out = []
    for _ in range(count):
        after = next_fire_time(parsed, zone, after, start=start)
        out.append(after)
    return out


@pytest.mark.parametrize("text", [
    "cron(0 2 * * ? *)", "cron(15 10 ? * 6L 2026-2030)", "cron(0 18 ? * MON-FRI *)", "cron(0/15 * 15W * ? *)",
    "cron(*/5 8-17 ? JAN,MAR,DEC 2#1 *)", "cron(0 0 L * ? *)", "cron(0 0 LW * ? *)", "cron(0 12 1-15/2 * ? 1970)",
    "cron(59 23 31 DEC ? 2199)", "cron(0 9 ? * L *)", "cron(0 9 ? * sun,sat *)",
    "rate(1 minute)", "rate(5 minutes)", "rate(1 hour)", "rate(12 hours)", "rate(1 day)", "rate(30 days)",
])
def test_valid_expressions_parse(text):
    assert isinstance(parse_schedule_expression(text), (CronExpression, RateExpression))


@pytest.mark.parametrize("text, rule", [
    ("rate(1 minutes)", "singular"), ("rate(2 hour)", "plural"), ("rate(0 days)", "positive"),
    ("rate(-1 days)", "positive"), ("rate(1.5 hours)", "positive"), ("rate(5 weeks)", "minute(s), hour(s) or day(s)"),
    ("rate(5)", "rate(value unit)"), ("cron(0 2 * * ?)", "six fields"), ("cron(0 2 * * ? * *)", "six fields"),
    ("cron(0 2 * * * *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 2 ? * ? *)", "exactly one of day-of-month and day-of-week"),
    ("cron(60 2 * * ? *)", "minutes: 60 is outside 0-59"), ("cron(0 24 * * ? *)", "hours: 24 is outside 0-23"),
    ("cron(0 2 0 * ? *)", "day-of-month: 0 is outside 1-31"), ("cron(0 2 * 13 ? *)", "month: 13 is outside 1-12"),
    ("cron(0 2 ? * 8 *)", "day-of-week: 8 is outside 1-7"), ("cron(0 2 * * ? 1969)", "year: 1969 is outside"),
    ("cron(0 2 * * ? 2200)", "year: 2200 is outside"), ("cron(0 2 ? * 1#1,2#2 *)", "one expression only"),
    ("cron(0 2 ? * 2#6 *)", "1-5"), ("cron(0 2 ? * 2/2 *)", "'/' is not allowed"), ("cron(0 2 L * ? *)", None),
    ("cron(0 22-2 * * ? *)", "runs upwards"), ("cron(0 2 W * ? *)", "not a number"), ("cron(0 2 * JANUARY ? *)", "not a number"),
    ("cron(0 L * * ? *)", "not a number"), ("cron(0 2 ?5 * ? *)", "'?' stands alone"),
    ("cron(0 2 * * ? */0)", "positive number"), ("at(2026-01-01T00:00:00)", "one-time"), ("", "required"),
    ("every day", "neither cron"),
    ("cron(0 12 * * ? *", "cron(minutes hours"),  # no closing parenthesis: once an AttributeError (found by mypy)
])
def test_invalid_expressions_name_the_rule(text, rule):
    if rule is None:  # a valid control in the middle of the table
        parse_schedule_expression(text)
        return
    with pytest.raises(ScheduleExpressionError, match=rule.replace("(", r"\(").replace(")", r"\)")):
        parse_schedule_expression(text)


def test_rate_fires_at_its_start_then_every_period():
    assert fires("rate(5 minutes)", START - timedelta(seconds=1)) == [
        START, START + timedelta(minutes=5), START + timedelta(minutes=10)]
    assert fires("rate(1 day)", START + timedelta(hours=1), 1) == [START + timedelta(days=1)]


def test_rate_days_are_24_hours_across_daylight_saving():
    start = datetime(2026, 3, 7, 12, tzinfo=UTC)  # DST begins in New York on 2026-03-08
    assert fires("rate(1 day)", start, 2, zone="America/New_York", start=start) == [
        start + timedelta(days=1), start + timedelta(days=2)]


def test_cron_fields_select_the_documented_days():
    after = datetime(2026, 3, 1, tzinfo=UTC)
    assert [d.date().isoformat() for d in fires("cron(0 10 ? * 6L *)", after)] == [
        "2026-03-27", "2026-04-24", "2026-05-29"]  # last Friday
    assert [d.date().isoformat() for d in fires("cron(0 10 ? * 3#2 *)", after)] == [
        "2026-03-10", "2026-04-14", "2026-05-12"]  # second Tuesday
    assert [d.date().isoformat() for d in fires("cron(0 10 LW * ? *)", after)] == [
        "2026-03-31", "2026-04-30", "2026-05-29"]  # last weekday (May 31 is a Sunday)
    assert [d.date().isoformat() for d in fires("cron(0 10 15W * ? *)", after)] == [
        "2026-03-16", "2026-04-15", "2026-05-15"]  # 2026-03-15 is a Sunday: Monday the 16th
    assert [d.date().isoformat() for d in fires("cron(0 10 1W * ? *)", datetime(2026, 8, 1, tzinfo=UTC), 1)] == [
        "2026-08-03"]  # 1 August 2026 is a Saturday: W never leaves the month, so Monday the 3rd
    assert [d.date().isoformat() for d in fires("cron(0 10 L FEB ? *)", after, 2)] == ["2027-02-28", "2028-02-29"]
    assert [d.isoformat() for d in fires("cron(0/20 9 ? * MON-FRI *)", after, 4)] == [
        "2026-03-02T09:00:00+00:00", "2026-03-02T09:20:00+00:00", "2026-03-02T09:40:00+00:00",
        "2026-03-03T09:00:00+00:00"]


def test_cron_in_a_time_zone_skips_a_missing_wall_time_and_fires_a_repeated_one_once():
    zone = ZoneInfo("America/New_York")
    spring = [d.astimezone(zone).isoformat() for d in fires("cron(30 2 * * ? *)", datetime(2026, 3, 7, 12, tzinfo=UTC),
                                                            2, zone="America/New_York")]
    assert spring == ["2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"]  # 2026-03-08 02:30 does not exist
    autumn = [d.astimezone(zone).isoformat() for d in fires("cron(30 1 * * ? *)", datetime(2026, 10, 31, 12, tzinfo=UTC),
                                                            2, zone="America/New_York")]
    assert autumn == ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]  # 01:30 happens twice; fires once


def test_a_cron_that_selects_no_future_time_never_fires():
    parsed = parse_schedule_expression("cron(0 0 30 FEB ? *)")
    assert next_fire_time(parsed, "UTC", START) is None
    assert next_fire_time(parse_schedule_expression("cron(0 0 1 1 ? 2020)"), "UTC", START) is None
