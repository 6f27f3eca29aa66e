"""Create, update and delete CloudFormation stacks through change sets, showing progress as it happens.

    stacks = Stacks(cloudformation_client, echo=print)
    result = stacks.deploy("greenlight-models", template_body, {"Group": "models", ...})
    result.changed, result.outputs
    stacks.delete("greenlight-models")

`deploy` creates a change set (CREATE for a new stack, UPDATE otherwise), waits for it, prints what
it will change, executes it and follows the stack's events until the stack settles, printing each
resource's progress. An empty change set is "no changes" (the change set is deleted; nothing fails).
A stack whose creation failed (ROLLBACK_COMPLETE) cannot be updated: it is deleted first, and said so.
A stack that ends in a rollback or a failure raises DeploymentFailed naming the first FAILED event of
this operation and its reason, on one line. Every wait is bounded by `timeout` (WaitTimeout names the
stack and its last status); every call goes through greenlight.aws_errors; the client is injected.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from greenlight.aws_errors import aws_errors as _aws
from greenlight.errors import AwsError, DeploymentFailed, NotFoundError, WaitTimeout

__all__ = ["MAX_TEMPLATE_BODY", "StackResult", "Stacks"]

log = logging.getLogger(__name__)

MAX_TEMPLATE_BODY = 51_200  # CloudFormation's TemplateBody limit; larger templates go by TemplateURL
_NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
_SETTLED_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
_SETTLED_BAD = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
                "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_FAILED", "IMPORT_ROLLBACK_COMPLETE",
                "IMPORT_ROLLBACK_FAILED"}


class _Gone(NotFoundError):
    """The stack does not exist (internal)."""


@dataclass(frozen=True)
class StackResult:
    """What a deploy did: whether anything changed, and the stack's outputs afterwards."""

    name: str
    changed: bool
    outputs: dict[str, str] = field(default_factory=dict)
    status: str = ""


class Stacks:
    """CloudFormation stacks over an injected client (module docstring).

    `echo` receives one line per change and event; `poll` is the seconds between reads while
    waiting; `timeout` bounds each wait; `sleep` and `clock` (monotonic) are injectable for tests.
    """

    def __init__(self, cloudformation: Any, *, echo: Callable[[str], None] = print, poll: float = 5.0,
                 timeout: float = 3600.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self._cf, self._echo = cloudformation, echo
        self.poll, self.timeout, self._sleep, self._clock = poll, timeout, sleep, clock

    # -- reads ---------------------------------------------------------------------------------

    def describe(self, name: str) -> dict[str, Any] | None:
        """DescribeStacks of `name`, or None when there is no such stack."""
        try:
            with _aws("DescribeStacks", lambda: _Gone(name)):
                stacks = self._cf.describe_stacks(StackName=name)["Stacks"]
        except _Gone:
            return None
        return stacks[0] if stacks else None

    def outputs(self, name: str) -> dict[str, str]:
        stack = self.describe(name)
        return {o["OutputKey"]: o.get("OutputValue", "") for o in (stack or {}).get("Outputs") or []}

    def parameters(self, name: str) -> dict[str, str]:
        stack = self.describe(name)
        return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters") or []}

    # -- deploy ----------------------------------------------------------------------------------

    def deploy(self, name: str, template: str, parameters: dict[str, str], *, template_url: str | None = None,
               capabilities: Iterable[str] = ("CAPABILITY_NAMED_IAM",),
               tags: dict[str, str] | None = None) -> StackResult:
        """Create or update stack `name` from `template` (or `template_url`) with `parameters`.

        Raises:
            DeploymentFailed: the change set failed, or the stack rolled back (the first FAILED event).
            WaitTimeout: the change set or the stack did not settle within `timeout`.
        """
        stack = self._settled(name, self.describe(name))
        if stack is not None and stack["StackStatus"] == "ROLLBACK_COMPLETE":
            self._echo(f"{name}: its creation failed earlier (ROLLBACK_COMPLETE); deleting it before creating it again")
            self.delete(name)
            stack = None
        kind = "CREATE" if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS" else "UPDATE"
        body = {"TemplateURL": template_url} if template_url else {"TemplateBody": template}
        change_set = f"greenlight-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"
        try:
            with _aws("CreateChangeSet"):
                created = self._cf.create_change_set(
                    StackName=name, ChangeSetName=change_set, ChangeSetType=kind, Capabilities=list(capabilities),
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())],
                    Tags=[{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())], **body)
        except AwsError as exc:  # nothing to change, said at once (UpdateStack's answer) instead of by the change set
            if exc.code != "ValidationError" or not any(phrase in str(exc) for phrase in _NO_CHANGES):
                raise
            self._echo(f"{name}: no changes")
            return StackResult(name, False, self.outputs(name), (stack or {}).get("StackStatus", ""))
        described = self._wait_change_set(name, created["Id"])
        if described["Status"] == "FAILED":
            reason = described.get("StatusReason") or "no reason given"
            if any(phrase in reason for phrase in _NO_CHANGES):
                self._delete_change_set(created["Id"])
                self._echo(f"{name}: no changes")
                return StackResult(name, False, self.outputs(name), (stack or {}).get("StackStatus", ""))
            raise DeploymentFailed(f"stack {name}: change set failed: {' '.join(reason.split())}")
        for line in _describe_changes(described.get("Changes") or []):
            self._echo(f"{name}: {line}")
        marker = self._newest_event(name)
        with _aws("ExecuteChangeSet"):
            self._cf.execute_change_set(ChangeSetName=created["Id"], StackName=name)
        final = self._follow(name, marker)
        if final is None or final["StackStatus"] not in _SETTLED_OK:
            raise DeploymentFailed(self._failure(name, final, marker))
        self._echo(f"{name}: {final['StackStatus']}")
        return StackResult(name, True, self.outputs(name), final["StackStatus"])

    def delete(self, name: str) -> bool:
        """Delete stack `name` and wait until it is gone; False if there was none.

        Raises:
            DeploymentFailed: the deletion failed (the first FAILED event and its reason).
            WaitTimeout: still there after `timeout`.
        """
        stack = self._settled(name, self.describe(name))
        if stack is None:
            return False
        marker = self._newest_event(stack["StackId"])
        with _aws("DeleteStack"):
            self._cf.delete_stack(StackName=stack["StackId"])
        final = self._follow(stack["StackId"], marker, deleting=True)
        if final is not None and final["StackStatus"] != "DELETE_COMPLETE":
            raise DeploymentFailed(self._failure(name, final, marker))
        self._echo(f"{name}: DELETE_COMPLETE")
        return True

    # -- waiting -----------------------------------------------------------------------------------

    def _deadline(self, what: str) -> Callable[[str], None]:
        end = self._clock() + self.timeout

        def check(status: str) -> None:
            if self._clock() >= end:
                raise WaitTimeout(f"{what} is still {status} after {self.timeout:g} s; CloudFormation goes on, "
                                  "run the command again to follow it")
            self._sleep(self.poll)
        return check

    def _settled(self, name: str, stack: dict[str, Any] | None) -> dict[str, Any] | None:
        """Wait for an operation someone else started on the stack to end."""
        check = self._deadline(f"stack {name}")
        while stack is not None and stack["StackStatus"].endswith("_IN_PROGRESS") and \
                stack["StackStatus"] != "REVIEW_IN_PROGRESS":
            self._echo(f"{name}: {stack['StackStatus']}; waiting for it to finish first")
            check(stack["StackStatus"])
            stack = self.describe(name)
        return stack

    def _wait_change_set(self, name: str, change_set: str) -> dict[str, Any]:
        check = self._deadline(f"the change set of stack {name}")
        while True:
            with _aws("DescribeChangeSet"):
                pages = self._cf.get_paginator("describe_change_set").paginate(ChangeSetName=change_set, StackName=name)
                pages = list(pages)
            described = {**pages[0], "Changes": [c for page in pages for c in page.get("Changes") or []]}
            if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
                return described
            check(described["Status"])

    def _delete_change_set(self, change_set: str) -> None:
        with _aws("DeleteChangeSet"):
            self._cf.delete_change_set(ChangeSetName=change_set)

    def _follow(self, name: str, marker: str | None, deleting: bool = False) -> dict[str, Any] | None:
        """Print the stack's new events until it settles; its final description (None: deleted)."""
        seen: set[str] = set()
        check = self._deadline(f"stack {name}")
        while True:
            for event in self._events(name, marker):
                if event["EventId"] not in seen:
                    seen.add(event["EventId"])
                    self._echo(_describe_event(event))
            stack = self.describe(name)
            if stack is None:
                return None
            status = stack["StackStatus"]
            if (deleting and status in ("DELETE_COMPLETE", "DELETE_FAILED")) or \
                    (not status.endswith("_IN_PROGRESS") and (status in _SETTLED_OK or status in _SETTLED_BAD)):
                return stack
            check(status)

    def _newest_event(self, name: str) -> str | None:
        """The id of the stack's newest event (what this operation's events come after)."""
        try:
            with _aws("DescribeStackEvents", lambda: _Gone(name)):
                events = self._cf.describe_stack_events(StackName=name)["StackEvents"]
        except _Gone:
            return None
        return events[0]["EventId"] if events else None

    def _events(self, name: str, marker: str | None) -> list[dict[str, Any]]:
        """The events after `marker` (this operation's), oldest first. CloudFormation lists newest first."""
        events = []
        try:
            with _aws("DescribeStackEvents", lambda: _Gone(name)):
                for page in self._cf.get_paginator("describe_stack_events").paginate(StackName=name):
                    for event in page["StackEvents"]:
                        if event["EventId"] == marker:
                            return list(reversed(events))
                        events.append(event)
        except _Gone:
            return []
        return list(reversed(events))

    def _failure(self, name: str, stack: dict[str, Any] | None, marker: str | None) -> str:
        if stack is None:
            return f"stack {name} disappeared while it was being deployed"
        failed = [e for e in self._events(name, marker) if e["ResourceStatus"].endswith("_FAILED")
                  and e.get("ResourceStatusReason")]
        real = [e for e in failed if "cancelled" not in e["ResourceStatusReason"].lower()] or failed
        if not real:
            reason = stack.get("StackStatusReason") or "no failed event recorded"
            return f"stack {name} is {stack['StackStatus']}: {' '.join(reason.split())}"
        first = real[0]
        return (f"stack {name} is {stack['StackStatus']}: {first['LogicalResourceId']} ({first['ResourceType']}) "
                f"{first['ResourceStatus']}: {' '.join(first['ResourceStatusReason'].split())}")


def _describe_changes(changes: list[dict[str, Any]]) -> list[str]:
    lines = []
    for change in changes:
        rc = change.get("ResourceChange") or {}
        replace = " (replacement)" if rc.get("Replacement") == "True" else ""
        action = str(rc.get("Action", "?")).lower()
        lines.append(f"{action} {rc.get('LogicalResourceId')} ({rc.get('ResourceType')}){replace}")
    return lines or ["no resource changes (parameters, outputs or tags only)"]


def _describe_event(event: dict[str, Any]) -> str:
    reason = event.get("ResourceStatusReason")
    return (f"  {event['ResourceStatus']:<28} {event['ResourceType']:<32} {event['LogicalResourceId']}"
            + (f": {' '.join(reason.split())}" if reason else ""))
