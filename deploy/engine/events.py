"""Which EventBridge events the approval handler acts on (pure).

The handler reacts to "SageMaker Model Package State Change" events of its own group, account and
region by reconciling; it never trusts the event's payload (status, version) beyond that, because
EventBridge delivers at least once and possibly out of order: the registry is the truth. The deploy
stack's periodic resync (EventBridge Scheduler, deploy/template.yaml) sends an event of its own, source
`greenlight` and detail-type `Greenlight Resync`, with the same group, account and region: it acts the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from greenlight.registry.events import DETAIL_TYPE, SOURCE

__all__ = ["RESYNC_DETAIL_TYPE", "RESYNC_SOURCE", "describe_event", "why_ignored"]

RESYNC_SOURCE, RESYNC_DETAIL_TYPE = "greenlight", "Greenlight Resync"


def why_ignored(event: Any, *, group: str, account: str | None, region: str | None) -> str | None:
    """None if the event should trigger a reconcile of `group`, else why it is ignored (one line)."""
    if not isinstance(event, Mapping):
        return f"not an EventBridge event (a {type(event).__name__})"
    kind = (event.get("source"), event.get("detail-type"))
    if kind != (RESYNC_SOURCE, RESYNC_DETAIL_TYPE):
        if event.get("source") != SOURCE:
            return f"source is {event.get('source')!r}, not {SOURCE!r} (or {RESYNC_SOURCE!r}, a resync)"
        if event.get("detail-type") != DETAIL_TYPE:
            return f"detail-type is {event.get('detail-type')!r}, not {DETAIL_TYPE!r}"
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return "the event has no detail object"
    if detail.get("ModelPackageGroupName") != group:
        return f"model package group {detail.get('ModelPackageGroupName')!r} is not the configured {group!r}"
    if account is not None and event.get("account") != account:
        return f"account {event.get('account')!r} is not this function's {account!r}"
    if region is not None and event.get("region") != region:
        return f"region {event.get('region')!r} is not this function's {region!r}"
    return None


def describe_event(event: Any) -> str:
    """'event <id>: v<version> of <group> is <status>' (for logs and the report's trigger)."""
    if not isinstance(event, Mapping):
        return "a malformed event"
    raw_detail = event.get("detail")
    detail: Mapping[str, Any] = raw_detail if isinstance(raw_detail, Mapping) else {}
    if (event.get("source"), event.get("detail-type")) == (RESYNC_SOURCE, RESYNC_DETAIL_TYPE):
        return f"resync {event.get('id', '?')} of {detail.get('ModelPackageGroupName', '?')}"
    raw_lifecycle = detail.get("ModelLifeCycle")
    lifecycle: Mapping[str, Any] = raw_lifecycle if isinstance(raw_lifecycle, Mapping) else {}
    stage = f", {lifecycle.get('StageStatus', '?')} in stage {lifecycle['Stage']}" if lifecycle.get("Stage") else ""
    return (f"event {event.get('id', '?')}: v{detail.get('ModelPackageVersion', '?')} of "
            f"{detail.get('ModelPackageGroupName', '?')} is {detail.get('ModelApprovalStatus', '?')}{stage}")
