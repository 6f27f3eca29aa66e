"""The local mirror of the AWS batch schedule: the same request, kept as JSON under GREENLIGHT_HOME.

`put_local_schedule` takes exactly what `aws_requests.schedule_request` builds for CreateSchedule /
UpdateSchedule (same expression, time zone, State and target Input) and keeps it, in GetSchedule's
shape, at `GREENLIGHT_HOME/batch/schedules/<Name>.json`, together with when it started (a rate
schedule's first run, kept while the expression and time zone stay the same) and the scheduled time
it last fired for. The engine's local adapter calls put/read/enable/disable; `greenlight batch
scheduler` asks `plan_fire` what is due.

`plan_fire` is pure. As EventBridge Scheduler: a rate schedule fires at its start and every period
after; a cron schedule at the times its fields select in its time zone; a DISABLED schedule never.
The local scheduler only runs while it is running, so runs it missed are folded into one run for the
latest missed time (logged), and a run older than the target's MaximumEventAgeInSeconds is dropped,
as EventBridge Scheduler drops events it could not deliver in that time.
"""

from __future__ import annotations

import copy
import fcntl
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from deploy.batch.expressions import (
    RateExpression,
    ScheduleExpressionError,
    next_fire_time,
    parse_schedule_expression,
)
from deploy.engine.local_state import CorruptState, read_json, write_json
from greenlight.errors import NotFoundError, ParameterError

__all__ = [
    "FireDecision",
    "disable_local_schedule",
    "enable_local_schedule",
    "list_local_schedules",
    "mark_fired",
    "plan_fire",
    "put_local_schedule",
    "read_local_schedule",
    "read_local_state",
    "schedules_dir",
]

log = logging.getLogger(__name__)

LOCAL_SCHEDULE_ARN = "arn:aws:scheduler:local:000000000000:schedule/default/{name}"
DEFAULT_MAX_EVENT_AGE = 86400
_NAME_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_.")


@dataclass(frozen=True)
class FireDecision:
    """What the scheduler does with one schedule now: run for `run_at`, or not, and why."""

    name: str
    run_at: datetime | None
    consumed_until: datetime | None  # record as the last fired time even when nothing runs
    folded: int  # earlier missed runs folded into this one
    reason: str


def schedules_dir(home: Path) -> Path:
    return Path(home) / "batch" / "schedules"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None  # ValueError if not a time


def _check(request: Mapping[str, Any]) -> None:
    """What CreateSchedule validates before accepting a schedule. Raises: ParameterError."""
    name = request.get("Name")
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not set(name) <= _NAME_CHARS:
        raise ParameterError(f"schedule Name {name!r} is not 1-64 of letters, digits, '-', '_' and '.'")
    try:
        parse_schedule_expression(request.get("ScheduleExpression"))
    except ScheduleExpressionError as exc:
        raise ParameterError(f"schedule {name}: {exc}") from None
    zone = request.get("ScheduleExpressionTimezone") or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ParameterError(f"schedule {name}: unknown ScheduleExpressionTimezone {zone!r}") from None
    if request.get("State", "ENABLED") not in ("ENABLED", "DISABLED"):
        raise ParameterError(f"schedule {name}: State must be ENABLED or DISABLED")
    target = request.get("Target")
    if not isinstance(target, Mapping) or not target.get("Arn") or not target.get("RoleArn"):
        raise ParameterError(f"schedule {name}: Target needs Arn and RoleArn")
    if (request.get("FlexibleTimeWindow") or {}).get("Mode") not in ("OFF", "FLEXIBLE"):
        raise ParameterError(f"schedule {name}: FlexibleTimeWindow.Mode must be OFF or FLEXIBLE")


@contextmanager
def _locked(home: Path) -> Iterator[Path]:
    folder = schedules_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(fd)


def _load(folder: Path, name: str) -> dict | None:
    """The entry of a schedule; None when there is none, or (said in one line) when its file is not an entry:
    the next put rewrites it, as if the schedule had been deleted."""
    try:
        entry = read_json(folder / f"{name}.json")
        if entry is not None and (not isinstance(entry.get("schedule"), dict) or "anchor" not in entry):
            raise CorruptState(f"{folder / f'{name}.json'} holds no schedule")
        if entry is not None:
            _parse_time(entry.get("anchor")), _parse_time(entry.get("last_scheduled_time"))
        return entry
    except (CorruptState, AttributeError, TypeError, ValueError) as exc:
        log.warning("local batch schedule %s is unreadable (%s); taken as absent until it is put again", name, exc)
        return None


def _store(folder: Path, name: str, entry: dict) -> None:
    write_json(folder / f"{name}.json", entry)


def put_local_schedule(home: Path, request: Mapping[str, Any], *, now: datetime | None = None) -> dict:
    """Create or replace a schedule (a CreateSchedule/UpdateSchedule request); its GetSchedule view.

    Raises:
        ParameterError: what CreateSchedule would refuse (name, expression, time zone, state, target).
    """
    _check(request)
    now = now or datetime.now(UTC)
    name = request["Name"]
    with _locked(home) as folder:
        entry = _load(folder, name)
        schedule = {k: copy.deepcopy(v) for k, v in request.items() if k != "ClientToken"}
        schedule.setdefault("State", "ENABLED")
        schedule.setdefault("ScheduleExpressionTimezone", "UTC")
        schedule.update(Arn=LOCAL_SCHEDULE_ARN.format(name=name), GroupName="default",
                        LastModificationDate=_iso(now))
        if entry is None:
            entry = {"anchor": _iso(now), "last_scheduled_time": None}
            schedule["CreationDate"] = _iso(now)
        else:
            old = entry["schedule"]
            schedule["CreationDate"] = old.get("CreationDate", _iso(now))
            if (old.get("ScheduleExpression"), old.get("ScheduleExpressionTimezone")) != (
                    schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]):
                entry.update(anchor=_iso(now), last_scheduled_time=None)
        entry["schedule"] = schedule
        _store(folder, name, entry)
        return copy.deepcopy(schedule)


def read_local_schedule(home: Path, name: str) -> dict | None:
    """The schedule in GetSchedule's shape, or None when there is none."""
    entry = _load(schedules_dir(home), name)
    return None if entry is None else entry["schedule"]


def read_local_state(home: Path, name: str) -> tuple[dict, datetime, datetime | None] | None:
    """(schedule, start, last scheduled time fired) or None."""
    entry = _load(schedules_dir(home), name)
    if entry is None:
        return None
    return entry["schedule"], _parse_time(entry["anchor"]), _parse_time(entry.get("last_scheduled_time"))


def list_local_schedules(home: Path) -> list[dict]:
    folder = schedules_dir(home)
    if not folder.is_dir():
        return []
    return [s for s in (read_local_schedule(home, p.stem) for p in sorted(folder.glob("*.json"))) if s]


def _set_state(home: Path, name: str, state: str, now: datetime | None) -> dict:
    with _locked(home) as folder:
        entry = _load(folder, name)
        if entry is None:
            raise NotFoundError(f"no local batch schedule {name!r}")
        entry["schedule"].update(State=state, LastModificationDate=_iso(now or datetime.now(UTC)))
        _store(folder, name, entry)
        return copy.deepcopy(entry["schedule"])


def enable_local_schedule(home: Path, name: str, *, now: datetime | None = None) -> dict:
    """State ENABLED. Raises: NotFoundError."""
    return _set_state(home, name, "ENABLED", now)


def disable_local_schedule(home: Path, name: str, *, now: datetime | None = None) -> dict:
    """State DISABLED (it keeps its Input). Raises: NotFoundError."""
    return _set_state(home, name, "DISABLED", now)


def mark_fired(home: Path, name: str, scheduled_time: datetime) -> None:
    """Record that the schedule fired (or dropped its runs) up to `scheduled_time`."""
    with _locked(home) as folder:
        entry = _load(folder, name)
        if entry is None:
            return
        last = _parse_time(entry.get("last_scheduled_time"))
        if last is None or scheduled_time > last:
            entry["last_scheduled_time"] = _iso(scheduled_time)
            _store(folder, name, entry)


def plan_fire(schedule: Mapping[str, Any], start: datetime, last: datetime | None, now: datetime) -> FireDecision:
    """Whether `schedule` runs now, for which scheduled time, and why (see the module docstring)."""
    name = schedule.get("Name", "?")
    if schedule.get("State") != "ENABLED":
        return FireDecision(name, None, None, 0, "it is DISABLED")
    expression = parse_schedule_expression(schedule["ScheduleExpression"])
    zone = schedule.get("ScheduleExpressionTimezone") or "UTC"
    retry = (schedule.get("Target") or {}).get("RetryPolicy") or {}
    max_age = timedelta(seconds=retry.get("MaximumEventAgeInSeconds") or DEFAULT_MAX_EVENT_AGE)
    if last is None:
        last = start - timedelta(microseconds=1) if isinstance(expression, RateExpression) else start
    first = next_fire_time(expression, zone, last, start=start)
    if first is None:
        return FireDecision(name, None, None, 0, "its expression selects no future time")
    if first > now:
        return FireDecision(name, None, None, 0, f"its next run is at {_iso(first)}")
    floor = now - max_age
    moment = first if first > floor else next_fire_time(expression, zone, floor, start=start)
    latest, count = None, 0
    while moment is not None and moment <= now:
        latest, count = moment, count + 1
        moment = next_fire_time(expression, zone, moment, start=start)
    if latest is None:
        return FireDecision(name, None, now, 0, f"its runs due before {_iso(floor)} are older than "
                            f"MaximumEventAgeInSeconds ({int(max_age.total_seconds())} s) and were dropped")
    dropped = " (runs due more than MaximumEventAgeInSeconds ago were dropped)" if first <= floor else ""
    folded = f"; {count - 1} missed run(s) folded into this one" if count > 1 else ""
    return FireDecision(name, latest, latest, count - 1,
                        f"{schedule['ScheduleExpression']} ({zone}) was due at {_iso(latest)}{folded}{dropped}")
