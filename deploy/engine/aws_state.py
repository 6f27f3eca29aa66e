"""State of the deployment engine on AWS: the reconcile lease and the status, in one DynamoDB table.

The table (`state_table` in the configuration, GREENLIGHT_STATE_TABLE) has one string partition key
`pk` and no sort key; each group uses two items:

    pk = "lease#<group>"    owner (a random token), expires_at (epoch seconds), holder, acquired_at
    pk = "status#<group>"   report (the last reconcile report as JSON), updated_at
    pk = "intent#<group>#<target>"  intent (a deployment in flight, deploy.engine.transaction), updated_at

**Lease.** One reconcile at a time per group: a conditional PutItem takes the lease when nobody holds
it or the holder's lease has expired (`attribute_not_exists(pk) OR expires_at < :now`); a waiter polls
until `timeout` and then raises ConflictError (the approval Lambda's invocation fails and EventBridge
retries it later). The holder renews the lease every third of its length while it runs (a conditional
UpdateItem on its own token) and releases it with a conditional DeleteItem on its token, so nobody
can release a lease they do not hold. The lease lasts `LEASE_SECONDS` (the Lambda's 15-minute maximum
plus a margin): a holder in Lambda never outlives it even without renewal, a CLI reconcile that runs
longer keeps it by renewing, and a holder that crashed blocks the others for at most that long. Under
a deadline (deploy.engine.deadline: the approval handler's invocation) the lease expires when the
invocation ends, and renewing never moves it past that: a killed invocation blocks the next one (the
resync's, or Lambda's retry) only until its own end, and the wait for the lease stops at the deadline.

Every AWS call goes through greenlight.aws_errors; the client is injected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from deploy.engine.deadline import current as current_deadline
from greenlight.aws_errors import aws_errors as _aws
from greenlight.errors import AwsError, ConfigurationError, ConflictError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["LAMBDA_MAX_SECONDS", "LEASE_SECONDS", "DynamoLease", "DynamoStatusStore"]

log = logging.getLogger(__name__)

LAMBDA_MAX_SECONDS = 15 * 60
LEASE_SECONDS = LAMBDA_MAX_SECONDS + 120  # longer than any handler invocation can run
_CHECK_FAILED = "ConditionalCheckFailedException"


def _missing_table(table: str) -> Callable[[], ConfigurationError]:
    return lambda: ConfigurationError(f"the deployment state table {table!r} does not exist in this account and "
                                      "region; create it (partition key 'pk', type String) or set "
                                      "state_table / GREENLIGHT_STATE_TABLE to an existing one")


def _iso(epoch: float) -> str:
    try:
        return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (ValueError, OverflowError, OSError):
        return f"{epoch:g} (epoch seconds)"


class DynamoLease:
    """One reconcile of `group` at a time, across processes and machines (module docstring).

    `lease = DynamoLease(client, table, group)`; `with lease(): ...` holds it. `clock` is wall-clock
    time (expiry is compared across machines), `monotonic` bounds the wait, `sleep` paces the polls.
    """

    def __init__(self, client: DynamoDBClient, table: str, group: str, *, timeout: float = 600.0,
                 lease_seconds: float = LEASE_SECONDS, poll: float = 0.5, holder: str | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._db, self.table, self.group = client, table, group
        self.key = {"pk": {"S": f"lease#{group}"}}
        self.timeout, self.lease_seconds, self.poll = timeout, lease_seconds, poll
        self.holder = holder or f"{socket.gethostname()} pid {os.getpid()}"
        self._clock, self._monotonic, self._sleep = clock, monotonic, sleep

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        owner = secrets.token_hex(16)
        deadline = current_deadline()
        until = None if deadline is None else self._clock() + deadline.until_end()  # the invocation's end
        self._acquire(owner, until, None if deadline is None else max(min(self.timeout, deadline.remaining()), 0.0))
        stop = threading.Event()
        renewer = threading.Thread(target=self._renew_until, args=(owner, stop, until), daemon=True,
                                   name=f"lease-renewer-{self.group}")
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            self._release(owner)

    # -- the three conditional writes ------------------------------------------------------------

    def _expiry(self, until: float | None) -> float:
        now = self._clock() + self.lease_seconds
        return now if until is None else min(now, until)

    def _acquire(self, owner: str, until: float | None = None, timeout: float | None = None) -> None:
        timeout = self.timeout if timeout is None else timeout
        deadline = self._monotonic() + timeout
        waited = False
        while True:
            now = self._clock()
            item = {**self.key, "owner": {"S": owner}, "expires_at": {"N": f"{self._expiry(until):.3f}"},
                    "holder": {"S": self.holder}, "acquired_at": {"S": _iso(now)}}
            try:
                with _aws("PutItem", _missing_table(self.table)):
                    self._db.put_item(TableName=self.table, Item=item,
                                      ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                                      ExpressionAttributeValues={":now": {"N": f"{now:.3f}"}})
                log.info("took the reconcile lease of %s (%s, for %g s)", self.group, self.holder, self.lease_seconds)
                return
            except AwsError as exc:
                if exc.code != _CHECK_FAILED:
                    raise
            if not waited:
                log.info("waiting for another reconcile of %s (%s)", self.group, self._describe_holder())
                waited = True
            if self._monotonic() + self.poll > deadline:  # never waits past the deadline
                raise ConflictError(f"another reconcile of {self.group} has held its lease in DynamoDB table "
                                    f"{self.table} for over {timeout:g} s ({self._describe_holder()}); "
                                    "retry later") from None
            self._sleep(self.poll)

    def _renew_until(self, owner: str, stop: threading.Event, until: float | None = None) -> None:
        while not stop.wait(self.lease_seconds / 3):
            try:
                with _aws("UpdateItem", _missing_table(self.table)):
                    self._db.update_item(TableName=self.table, Key=self.key, UpdateExpression="SET expires_at = :e",
                                         ConditionExpression="#o = :owner", ExpressionAttributeNames={"#o": "owner"},
                                         ExpressionAttributeValues={
                                             ":e": {"N": f"{self._expiry(until):.3f}"},
                                             ":owner": {"S": owner}})
            except (AwsError, ConfigurationError) as exc:  # lost (expired and taken) or AWS unreachable: say so
                log.error("could not renew the reconcile lease of %s: %s", self.group, exc)

    def _release(self, owner: str) -> None:
        try:
            with _aws("DeleteItem", _missing_table(self.table)):
                self._db.delete_item(TableName=self.table, Key=self.key, ConditionExpression="#o = :owner",
                                     ExpressionAttributeNames={"#o": "owner"},
                                     ExpressionAttributeValues={":owner": {"S": owner}})
        except AwsError as exc:
            if exc.code == _CHECK_FAILED:
                log.error("the reconcile lease of %s expired while this reconcile held it and was taken by %s",
                          self.group, self._describe_holder())
            else:  # never hide the reconcile's own outcome behind this: the lease expires by itself
                log.error("could not release the reconcile lease of %s (it expires within %g s): %s", self.group,
                          self.lease_seconds, exc)
            return
        log.info("released the reconcile lease of %s", self.group)

    def _describe_holder(self) -> str:
        try:
            with _aws("GetItem"):
                item = self._db.get_item(TableName=self.table, Key=self.key, ConsistentRead=True).get("Item")
        except AwsError as exc:
            return f"holder unknown: {exc}"
        if not item:
            return "just released"
        return (f"held by {item.get('holder', {}).get('S', '?')} since {item.get('acquired_at', {}).get('S', '?')}, "
                f"until {_iso(float(item['expires_at']['N']))} unless renewed")


class DynamoStatusStore:
    """The last reconcile report of a group, as LocalStatusStore keeps status.json."""

    def __init__(self, client: DynamoDBClient, table: str, group: str):
        self._db, self.table, self.group = client, table, group
        self.key = {"pk": {"S": f"status#{group}"}}

    def save(self, report: dict[str, Any]) -> None:
        item = {**self.key, "report": {"S": json.dumps(report, sort_keys=True)},
                "updated_at": {"S": _iso(time.time())}}
        with _aws("PutItem", _missing_table(self.table)):
            self._db.put_item(TableName=self.table, Item=item)

    def load(self) -> dict[str, Any] | None:
        """The saved report; None when there is none, or (logged in one line) when the item is not a report."""
        return self._get(self.key, "report")

    def _get(self, key: dict[str, Any], attribute: str) -> dict[str, Any] | None:
        with _aws("GetItem", _missing_table(self.table)):
            item = self._db.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        if not item:
            return None
        try:
            value = json.loads(item[attribute]["S"])
            if not isinstance(value, dict):
                raise ValueError(f"a JSON {type(value).__name__}, not an object")
            return value
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("the item %s in DynamoDB table %s is not readable (%s); the next reconcile rewrites it",
                        key["pk"]["S"], self.table, exc)
            return None

    def _intent_key(self, target: str) -> dict[str, Any]:
        return {"pk": {"S": f"intent#{self.group}#{target}"}}

    def load_intent(self, target: str) -> dict[str, Any] | None:
        return self._get(self._intent_key(target), "intent")

    def save_intent(self, target: str, intent: dict[str, Any] | None) -> None:
        key = self._intent_key(target)
        if intent is None:
            with _aws("DeleteItem", _missing_table(self.table)):
                self._db.delete_item(TableName=self.table, Key=key)
            return
        item = {**key, "intent": {"S": json.dumps(intent, sort_keys=True)}, "updated_at": {"S": _iso(time.time())}}
        with _aws("PutItem", _missing_table(self.table)):
            self._db.put_item(TableName=self.table, Item=item)
