"""EventBridge Scheduler's `cron()` and `rate()` expressions: checked as the service checks them, and
the next time one fires (what the local scheduler needs). Pure: no clock, no disk.

Rules, from the AWS documentation (EventBridge User Guide, "Cron expressions reference"
eb-cron-expressions.html and "Rate expressions reference" eb-rate-expressions.html; EventBridge
Scheduler User Guide, "Schedule types" schedule-types.html):

- `cron(minutes hours day-of-month month day-of-week year)`: six fields. Minutes 0-59 and hours
  0-23 take `, - * /`; day-of-month 1-31 takes `, - * ? / L W`; month 1-12 or JAN-DEC takes
  `, - * /`; day-of-week 1-7 or SUN-SAT (1 is Sunday) takes `, - * ? L #`; year 1970-2199 takes
  `, - * /`. Exactly one of day-of-month and day-of-week is `?`. `#` (the n-th weekday of the
  month, `3#2` the second Tuesday) allows one expression in its field only. `L` is the last day of
  the month (day-of-month) or, after a weekday (`6L`), that weekday's last occurrence; `nW` is the
  weekday nearest day n (never crossing into another month), `LW` the month's last weekday.
- `rate(value unit)`: a positive integer and minute|minutes|hour|hours|day|days; the unit is
  singular when the value is 1 and plural otherwise. A rate schedule without StartDate fires at
  once, then every period; `days` are 24-hour periods, whatever the time zone's clock does.
- Time zones: cron fields are read in the schedule's time zone. A wall time skipped by a daylight
  saving change is skipped; a wall time repeated by one fires once (its first occurrence).

Where the documentation is silent, the stricter reading is taken and named in the error: a range
must run upwards (`22-2` is refused rather than wrapped) and `/` is not accepted in day-of-week
(the English reference does not list it).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "CronExpression",
    "RateExpression",
    "ScheduleExpressionError",
    "next_fire_time",
    "parse_schedule_expression",
]

_MONTHS = {name: i for i, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_WEEKDAYS = {name: i for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
_RATE = re.compile(r"^rate\(\s*(\S+)\s+(\S+)\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
_FIELDS = (  # name, low, high, allowed specials, names
    ("minutes", 0, 59, ",-*/", None),
    ("hours", 0, 23, ",-*/", None),
    ("day-of-month", 1, 31, ",-*?/LW", None),
    ("month", 1, 12, ",-*/", _MONTHS),
    ("day-of-week", 1, 7, ",-*?L#", _WEEKDAYS),
    ("year", 1970, 2199, ",-*/", None),
)


class ScheduleExpressionError(ValueError):
    """A schedule expression EventBridge Scheduler would refuse; the message names the rule."""


@dataclass(frozen=True)
class RateExpression:
    """`rate(value unit)`: every `seconds` seconds from the schedule's start."""

    value: int
    unit: str

    @property
    def seconds(self) -> int:
        return self.value * _RATE_UNITS[self.unit.rstrip("s")]


@dataclass(frozen=True)
class CronExpression:
    """A parsed `cron()`; `day_of_month`/`day_of_week` hold their items (None for `?`)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: tuple[str, ...] | None
    months: frozenset[int]
    day_of_week: tuple[str, ...] | None
    years: frozenset[int]

    def matches_day(self, day: date) -> bool:
        """Whether the day-of-month or day-of-week field (whichever is not `?`) selects `day`."""
        last = calendar.monthrange(day.year, day.month)[1]
        if self.day_of_month is not None:
            return any(_dom_matches(item, day, last) for item in self.day_of_month)
        return any(_dow_matches(item, day, last) for item in self.day_of_week or ())


def parse_schedule_expression(text: object) -> RateExpression | CronExpression:
    """Parse a `rate()` or `cron()` expression. Raises: ScheduleExpressionError naming the rule."""
    if not isinstance(text, str) or not text.strip():
        raise ScheduleExpressionError("a schedule expression is required: cron(...) or rate(...)")
    text = text.strip()
    if text.startswith("at("):
        raise ScheduleExpressionError(f"{text!r} is a one-time at() schedule; batch schedules recur: "
                                      "use cron(...) or rate(...)")
    if text.startswith("rate("):
        return _parse_rate(text)
    if text.startswith("cron("):
        return _parse_cron(text)
    raise ScheduleExpressionError(f"{text!r} is neither cron(minutes hours day-of-month month day-of-week year) "
                                  "nor rate(value unit)")


def _parse_rate(text: str) -> RateExpression:
    match = _RATE.match(text)
    if not match:
        raise ScheduleExpressionError(f"{text!r}: a rate expression is rate(value unit), e.g. rate(5 minutes)")
    raw, unit = match.groups()
    if not raw.isdigit() or int(raw) < 1:
        raise ScheduleExpressionError(f"{text!r}: the value must be a positive whole number")
    value = int(raw)
    if unit not in ("minute", "minutes", "hour", "hours", "day", "days"):
        raise ScheduleExpressionError(f"{text!r}: the unit must be minute(s), hour(s) or day(s)")
    plural = unit.endswith("s")
    if value == 1 and plural:
        raise ScheduleExpressionError(f"{text!r}: with a value of 1 the unit is singular ({unit[:-1]})")
    if value > 1 and not plural:
        raise ScheduleExpressionError(f"{text!r}: with a value above 1 the unit is plural ({unit}s)")
    return RateExpression(value, unit)


def _parse_cron(text: str) -> CronExpression:
    match = _CRON.match(text)
    if match is None:
        raise ScheduleExpressionError(f"{text!r}: a cron expression is cron(minutes hours day-of-month month "
                                      "day-of-week year), closed by ')'")
    body = match.group(1).split()
    if len(body) != 6:
        raise ScheduleExpressionError(f"{text!r}: a cron expression has six fields (minutes hours day-of-month "
                                      f"month day-of-week year); this one has {len(body)}")
    dom, dow = body[2], body[4]
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(f"{text!r}: exactly one of day-of-month and day-of-week must be '?' "
                                      "(a value or * in one needs ? in the other)")
    values = []
    for raw, (name, low, high, specials, names) in zip(body, _FIELDS, strict=True):
        try:
            values.append(_parse_field(raw, name, low, high, specials, names))
        except ScheduleExpressionError as exc:
            raise ScheduleExpressionError(f"{text!r}: {exc}") from None
    minutes, hours, dom_items, months, dow_items, years = values
    return CronExpression(minutes, hours, dom_items, months, dow_items, years)


def _parse_field(raw: str, name: str, low: int, high: int, specials: str, names):
    """A numeric field -> frozenset of values; day fields -> tuple of normalised items (None for '?')."""
    bad = sorted({c for c in raw if not (c.isalnum() or c in specials)})
    if bad:
        raise ScheduleExpressionError(f"{name} {raw!r}: {''.join(bad)!r} is not allowed here "
                                      f"(allowed: digits{', names' if names else ''} and {' '.join(specials)})")
    if raw == "?":
        return None
    if "?" in raw:
        raise ScheduleExpressionError(f"{name} {raw!r}: '?' stands alone")
    items = raw.split(",")
    if name == "day-of-week" and "#" in raw and len(items) > 1:
        raise ScheduleExpressionError(f"{name} {raw!r}: with '#' the field holds one expression only")
    if name == "day-of-month":
        return tuple(_day_of_month_item(item, low, high) for item in items)
    if name == "day-of-week":
        return tuple(_day_of_week_item(item, low, high, names) for item in items)
    out: set[int] = set()
    for item in items:
        out.update(_numeric_item(item, name, low, high, names))
    return frozenset(out)


def _number(token: str, name: str, low: int, high: int, names) -> int:
    if names and token.upper() in names:
        return names[token.upper()]
    if not token.isdigit():
        raise ScheduleExpressionError(f"{name}: {token!r} is not a number{' or a name' if names else ''} "
                                      f"({low}-{high})")
    value = int(token)
    if not low <= value <= high:
        raise ScheduleExpressionError(f"{name}: {value} is outside {low}-{high}")
    return value


def _numeric_item(item: str, name: str, low: int, high: int, names) -> range:
    """'*', 'a', 'a-b', with an optional '/step'."""
    if not item:
        raise ScheduleExpressionError(f"{name}: an empty list item")
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) < 1:
            raise ScheduleExpressionError(f"{name} {item!r}: the increment after '/' must be a positive number")
        step = int(step_text)
    if base == "*":
        start, end = low, high
    elif "-" in base:
        first, _, last = base.partition("-")
        start, end = _number(first, name, low, high, names), _number(last, name, low, high, names)
        if start > end:
            raise ScheduleExpressionError(f"{name} {item!r}: a range runs upwards ({start} > {end})")
    else:
        start = _number(base, name, low, high, names)
        end = high if slash else start
    return range(start, end + 1, step)


def _day_of_month_item(item: str, low: int, high: int) -> str:
    """Normalised: 'L', 'LW', '<n>W', or a numeric item."""
    upper = item.upper()
    if upper in ("L", "LW"):
        return upper
    if upper.endswith("W"):
        day = _number(upper[:-1], "day-of-month", low, high, None)
        return f"{day}W"
    if "L" in upper or "W" in upper:
        raise ScheduleExpressionError(f"day-of-month {item!r}: use L, LW or <day>W (e.g. 15W)")
    values = _numeric_item(item, "day-of-month", low, high, None)
    return ",".join(str(v) for v in values)


def _day_of_week_item(item: str, low: int, high: int, names) -> str:
    """Normalised: 'L' (Saturday), '<d>L', '<d>#<k>', or a numeric item."""
    upper = item.upper()
    if upper == "L":
        return "7"
    if "#" in upper:
        day, _, nth = upper.partition("#")
        weekday = _number(day, "day-of-week", low, high, names)
        if not nth.isdigit() or not 1 <= int(nth) <= 5:
            raise ScheduleExpressionError(f"day-of-week {item!r}: after '#' comes the occurrence in the month, 1-5")
        return f"{weekday}#{int(nth)}"
    if upper.endswith("L"):
        return f"{_number(upper[:-1], 'day-of-week', low, high, names)}L"
    if "L" in upper:
        raise ScheduleExpressionError(f"day-of-week {item!r}: use L or <weekday>L (e.g. 6L, the last Friday)")
    values = _numeric_item(item, "day-of-week", low, high, names)
    return ",".join(str(v) for v in values)


def _aws_weekday(day: date) -> int:
    """1 = Sunday ... 7 = Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _dom_matches(item: str, day: date, last: int) -> bool:
    if item == "L":
        return day.day == last
    if item == "LW":
        return day == _nearest_weekday(date(day.year, day.month, last))
    if item.endswith("W"):
        target = int(item[:-1])
        return target <= last and day == _nearest_weekday(date(day.year, day.month, target))
    return str(day.day) in item.split(",")


def _nearest_weekday(day: date) -> date:
    """The weekday nearest `day` without leaving its month (Saturday -> Friday, Sunday -> Monday)."""
    last = calendar.monthrange(day.year, day.month)[1]
    if day.weekday() == 5:  # Saturday
        return day - timedelta(days=1) if day.day > 1 else day + timedelta(days=2)
    if day.weekday() == 6:  # Sunday
        return day + timedelta(days=1) if day.day < last else day - timedelta(days=2)
    return day


def _dow_matches(item: str, day: date, last: int) -> bool:
    weekday = _aws_weekday(day)
    if "#" in item:
        wanted, nth = (int(v) for v in item.split("#"))
        return weekday == wanted and (day.day - 1) // 7 + 1 == nth
    if item.endswith("L"):
        return weekday == int(item[:-1]) and day.day > last - 7
    return str(weekday) in item.split(",")


def next_fire_time(expression: RateExpression | CronExpression, timezone: str, after: datetime,
                   start: datetime | None = None) -> datetime | None:
    """The first time (UTC, aware) strictly after `after` that the schedule fires; None if never again.

    A rate schedule fires at start, start + period, ... (start is required); a cron schedule at the
    minutes its fields select in `timezone`, skipping wall times a DST change skips and firing a
    repeated wall time once.
    """
    after = after.astimezone(UTC)
    if isinstance(expression, RateExpression):
        if start is None:
            raise ValueError("a rate schedule needs its start time")
        start = start.astimezone(UTC)
        if after < start:
            return start
        periods = int((after - start).total_seconds() // expression.seconds) + 1
        return start + timedelta(seconds=periods * expression.seconds)
    zone = ZoneInfo(timezone)
    local = after.astimezone(zone).replace(tzinfo=None)
    first_day = local.date()
    for year in sorted(y for y in expression.years if y >= first_day.year):
        for month in sorted(expression.months):
            if (year, month) < (first_day.year, first_day.month):
                continue
            last = calendar.monthrange(year, month)[1]
            for dom in range(1, last + 1):
                day = date(year, month, dom)
                if day < first_day or not expression.matches_day(day):
                    continue
                found = _first_time_on(expression, zone, day, after, local.hour if day == first_day else 0)
                if found is not None:
                    return found
    return None


def _first_time_on(expression: CronExpression, zone: ZoneInfo, day: date, after: datetime,
                   from_hour: int) -> datetime | None:
    for hour in sorted(h for h in expression.hours if h >= from_hour):
        for minute in sorted(expression.minutes):
            wall = datetime(day.year, day.month, day.day, hour, minute)
            aware = wall.replace(tzinfo=zone)  # fold=0: the first of a repeated wall time
            instant = aware.astimezone(UTC)
            if instant.astimezone(zone).replace(tzinfo=None) != wall:
                continue  # skipped by a daylight saving change
            if instant > after:
                return instant
    return None
