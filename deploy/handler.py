"""The approval handler: "SageMaker Model Package State Change" events in, a reconcile out.

On AWS this module is the Lambda entry point (`deploy.handler.lambda_handler`, a zip package of
boto3-free Greenlight code: boto3 comes with the runtime). EventBridge invokes it for every state
change of the group's model packages; it checks the event's source, detail-type, group, account and
region, ignores anything else with one log line saying why, and otherwise reconciles: the registry,
not the event, decides what is deployed, so duplicate, late and out-of-order events are harmless.
Its composition (an `aws` Workspace, the configuration from GREENLIGHT_* variables, the reconciler)
is built once per execution environment; logs are JSON (aws-lambda-powertools).

Locally, `deliver_outbox` hands the local registry's outbox events to the same `handle`, in commit
order, marking each delivered only after it was handled: at least once, like EventBridge.

A reconcile that cannot take the group's lock raises: the invocation fails, and since EventBridge
invokes the handler asynchronously, Lambda's own retries and then the dead-letter queue take over
(EventBridge's retry policy covers only deliveries Lambda refuses). Target failures do not raise: they
are in the returned report, the logs and `greenlight status`.

Each invocation reconciles within its own time (`context.get_remaining_time_in_millis()`, less a
margin: deploy.engine.deadline): a wait that would outlast it is handed over, the target reported "in
progress", and the deploy stack's periodic resync (or the next event) continues it; the reconcile lease
expires when the invocation ends, so a killed invocation holds it no longer than that.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from deploy.engine.deadline import Deadline
from deploy.engine.events import describe_event, why_ignored
from deploy.engine.history import cause_of_event

__all__ = ["deliver_outbox", "handle", "lambda_handler"]

log = logging.getLogger(__name__)


def handle(event: Any, reconciler, *, account: str | None, region: str | None,
           deadline: Deadline | None = None) -> dict[str, Any]:
    """Reconcile for an event of the reconciler's group (within `deadline`); ignore (and say why) anything else."""
    what = describe_event(event)
    reason = why_ignored(event, group=reconciler.group, account=account, region=region)
    if reason is not None:
        log.info("ignored %s: %s", what, reason)
        return {"status": "ignored", "event": what, "reason": reason}
    log.info("reconciling %s for %s", reconciler.group, what)
    report = reconciler.reconcile(trigger=what, cause=cause_of_event(event), deadline=deadline)  # logs itself
    return {"status": "reconciled", "event": what, "ok": report.ok, "report": report.to_dict()}


def deliver_outbox(outbox, reconciler_for: Callable[[str | None], Any]) -> list[dict[str, Any]]:
    """Hand every undelivered outbox event to `handle`, oldest first; each is marked after it is handled.

    `reconciler_for(group)` gives the handler of the event's group (one handler per group, as one
    deploy stack per group on AWS); a malformed event without a group goes to `reconciler_for(None)`,
    which ignores it with the reason.
    """
    results = []
    for event in outbox.pending_events():
        detail = event.get("detail") if isinstance(event, dict) else None
        group = detail.get("ModelPackageGroupName") if isinstance(detail, dict) else None
        results.append(handle(event, reconciler_for(group if isinstance(group, str) else None),
                              account=outbox.account, region=outbox.region))
        outbox.mark_delivered(event["id"])
    return results


_runtime: dict[str, Any] = {}


def _cold_start() -> dict[str, Any]:
    """The Lambda's composition, once per execution environment."""
    from aws_lambda_powertools import Logger
    from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers

    from deploy.config import load_config
    from greenlight.workspace import Workspace

    logger = Logger(service="greenlight-approval-handler")
    copy_config_to_registered_loggers(source_logger=logger, include={"deploy", "greenlight"})
    workspace = Workspace.open("aws")
    config = load_config()
    return {"logger": logger, "workspace": workspace, "reconciler": workspace.reconciler(config)}


def lambda_handler(event: dict, context) -> dict[str, Any]:
    """The Lambda entry point."""
    if not _runtime:
        _runtime.update(_cold_start())
    account = None
    arn = getattr(context, "invoked_function_arn", "") or ""
    if arn.count(":") >= 5:
        account = arn.split(":")[4]
    _runtime["logger"].append_keys(aws_request_id=getattr(context, "aws_request_id", None))
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    deadline = None if remaining is None else Deadline.after(remaining() / 1000)
    return handle(event, _runtime["reconciler"], account=account, region=_runtime["workspace"].region,
                  deadline=deadline)
