"""Deployment history: one append-only record per target change, and what served when (pure).

Every reconcile that deploys or stops a target appends a `HistoryEvent` (deploy.engine.reconciler):
when, which stage and target, from -> to version, what triggered it (approval, promotion, rejection,
resync, manual deploy), the registry event's id and the approver where the event carries them, the
smoke result, how long it took and, for a failure, why. The stores (deploy.engine.local_history: SQLite;
deploy.engine.aws_history: the engine's DynamoDB table) only append and list newest first; `served_at`
answers "what did each target serve at instant T" from that list. A failed change is recorded too, but
only a successful one changes what served.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, Protocol

from greenlight.errors import ParameterError

__all__ = ["DEFAULT_STAGE", "Cause", "HistoryEvent", "HistoryQuery", "HistoryStore", "Trigger", "cause_of_event",
           "iso_ms", "matches", "parse_when", "served_at"]

DEFAULT_STAGE = "default"  # until stages land, every target belongs to this one


class Trigger(str, Enum):
    APPROVAL = "approval"
    PROMOTION = "promotion"
    REJECTION = "rejection"
    RESYNC = "resync"
    MANUAL = "manual deploy"


@dataclass(frozen=True)
class Cause:
    """Why a reconcile ran: the trigger, and the registry event's id and approver when an event carries them."""

    trigger: Trigger = Trigger.MANUAL
    event_id: str | None = None
    approver: str | None = None
    lifecycle_stage: str | None = None  # the event's ModelLifeCycle Stage and StageStatus, when it has one
    lifecycle_status: str | None = None

    def for_stage(self, stage: str) -> Cause:
        """This cause as `stage`'s history records it: an event that says the version is Approved and that
        its ModelLifeCycle names `stage` is a promotion there (StageStatus Approved) or a rejection (any
        other status); elsewhere, and for other events, the cause is unchanged."""
        if self.trigger is not Trigger.APPROVAL or self.lifecycle_stage != stage:
            return self
        return replace(self, trigger=Trigger.PROMOTION if self.lifecycle_status == "Approved" else Trigger.REJECTION)


def _approver(detail: Mapping[str, Any]) -> str | None:
    """Who changed the package, where the event carries it (DescribeModelPackage's LastModifiedBy shape)."""
    who = detail.get("LastModifiedBy")
    if not isinstance(who, Mapping):
        return None
    identity = who.get("IamIdentity")
    for value in (who.get("UserProfileName"), identity.get("Arn") if isinstance(identity, Mapping) else None):
        if isinstance(value, str) and value:
            return value
    return None


def cause_of_event(event: Any) -> Cause:
    """The cause a handled event records: resync for Greenlight's resync event; approval when the event says
    the version is Approved, rejection when it says anything else (Rejected, or an approval withdrawn).

    The event's status only labels the history: what is deployed is still read from the registry.
    """
    if not isinstance(event, Mapping):
        return Cause(Trigger.MANUAL)
    event_id = event.get("id") if isinstance(event.get("id"), str) else None
    raw_detail = event.get("detail")
    detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, Mapping) else {}
    if event.get("detail-type") == "Greenlight Resync":
        return Cause(Trigger.RESYNC, event_id)
    status = detail.get("ModelApprovalStatus")
    trigger = Trigger.APPROVAL if status == "Approved" else Trigger.REJECTION
    raw_lifecycle = detail.get("ModelLifeCycle")
    lifecycle: Mapping[str, Any] = raw_lifecycle if isinstance(raw_lifecycle, Mapping) else {}
    stage, stage_status = lifecycle.get("Stage"), lifecycle.get("StageStatus")
    return Cause(trigger, event_id, _approver(detail), stage if isinstance(stage, str) else None,
                 stage_status if isinstance(stage_status, str) else None)


def iso_ms(moment: datetime) -> str:
    """UTC, millisecond precision, 'Z': sorts as text in time order (the stores' sort key)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class HistoryEvent:
    """One target change. `to_version` None: the target was stopped (serves nothing)."""

    at: str
    group: str
    stage: str
    target: str
    kind: str
    action: str
    from_version: int | None
    to_version: int | None
    ok: bool
    trigger: str
    event_id: str | None = None
    approver: str | None = None
    smoke: str | None = None
    duration_seconds: float | None = None
    failure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEvent:
        """Raises: KeyError or TypeError for a record that is not one (the stores say which)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class HistoryQuery:
    """Which records to list: every filter optional; `since` and `until` are iso_ms strings (inclusive)."""

    stage: str | None = None
    target: str | None = None
    since: str | None = None
    until: str | None = None


def matches(event: HistoryEvent, query: HistoryQuery) -> bool:
    return ((query.stage is None or event.stage == query.stage)
            and (query.target is None or event.target == query.target)
            and (query.since is None or event.at >= query.since)
            and (query.until is None or event.at <= query.until))


class HistoryStore(Protocol):
    """Append-only: `append` adds one record; `read` gives a group's records newest first."""

    def append(self, event: HistoryEvent) -> None: ...

    def read(self, query: HistoryQuery = HistoryQuery()) -> list[HistoryEvent]: ...


def served_at(events: Iterable[HistoryEvent], at: str) -> dict[str, dict[str, Any]]:
    """Per target ('stage/target' when the stage is not the default): what it served at instant `at`, from
    the newest successful change at or before it: {"version", "since", "trigger", "event_id", "approver"}."""
    answer: dict[str, dict[str, Any]] = {}
    for event in sorted(events, key=lambda e: e.at, reverse=True):
        key = event.target if event.stage == DEFAULT_STAGE else f"{event.stage}/{event.target}"
        if not event.ok or event.at > at or key in answer:
            continue
        answer[key] = {"version": event.to_version, "since": event.at, "trigger": event.trigger,
                       "event_id": event.event_id, "approver": event.approver}
    return dict(sorted(answer.items()))


_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_when(text: str, flag: str, now: datetime) -> str:
    """An instant as iso_ms: ISO 8601 ('2026-12-01T14:00Z', '2026-12-01 14:00:00+01:00', '2026-12-01'; no zone
    means UTC) or a time ago ('90m', '2h', '7d').

    Raises:
        ParameterError: naming the flag and the forms it takes.
    """
    value = text.strip()
    relative = _RELATIVE.match(value)
    if relative:
        return iso_ms(now - timedelta(**{_UNITS[relative.group(2)]: int(relative.group(1))}))
    try:
        moment = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise ParameterError(f"{flag} {text!r} is not a time: give ISO 8601 (2026-12-01T14:00Z, 2026-12-01) or a "
                             "time ago (90m, 2h, 7d)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return iso_ms(moment)
