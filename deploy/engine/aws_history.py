"""The deployment history on AWS: items in the engine's DynamoDB table (deploy.engine.aws_state), newest first
through its global secondary index.

    pk = "history#<group>#<at>#<target>#<random>"   one item per target change, never updated
    history = "history#<group>", at = <iso_ms>      the keys of index `history-by-time` (HASH, RANGE)
    event = <the HistoryEvent as JSON>              the same record the local table holds, field for field

PutItem with `attribute_not_exists(pk)` only ever adds an item; a Query on the index with
ScanIndexForward=false reads a group newest first, `at` bounded in the key condition, stage and target
filtered. The index is declared in deploy/template.yaml; writing needs only PutItem on the table, so
the approval handler's permissions are unchanged.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import TYPE_CHECKING, Any

from deploy.engine.history import HistoryEvent, HistoryQuery, matches
from greenlight.aws_errors import aws_errors as _aws
from greenlight.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["HISTORY_INDEX", "DynamoHistory"]

log = logging.getLogger(__name__)

HISTORY_INDEX = "history-by-time"


class DynamoHistory:
    """One group's history in the state table (deploy.engine.history.HistoryStore)."""

    def __init__(self, client: DynamoDBClient, table: str, group: str):
        self._db, self.table, self.group = client, table, group
        self.partition = f"history#{group}"

    def _missing(self) -> ConfigurationError:
        return ConfigurationError(f"the deployment state table {self.table!r} or its index {HISTORY_INDEX!r} does not "
                                  "exist in this account and region; update the deploy stack (`greenlight stack "
                                  "deploy`), which declares both")

    def append(self, event: HistoryEvent) -> None:
        item = {"pk": {"S": f"{self.partition}#{event.at}#{event.target}#{secrets.token_hex(4)}"},
                "history": {"S": self.partition}, "at": {"S": event.at},
                "event": {"S": json.dumps(event.to_dict(), sort_keys=True)}}
        with _aws("PutItem", self._missing):
            self._db.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")

    def read(self, query: HistoryQuery = HistoryQuery()) -> list[HistoryEvent]:
        """The group's records newest first."""
        condition, values = "#h = :h", {":h": {"S": self.partition}}
        if query.since is not None and query.until is not None:
            condition += " AND #at BETWEEN :since AND :until"
            values.update({":since": {"S": query.since}, ":until": {"S": query.until}})
        elif query.since is not None:
            condition += " AND #at >= :since"
            values[":since"] = {"S": query.since}
        elif query.until is not None:
            condition += " AND #at <= :until"
            values[":until"] = {"S": query.until}
        events: list[HistoryEvent] = []
        with _aws("Query", self._missing):
            pages = self._db.get_paginator("query").paginate(
                TableName=self.table, IndexName=HISTORY_INDEX, KeyConditionExpression=condition,
                ExpressionAttributeNames={"#h": "history", **({"#at": "at"} if "#at" in condition else {})},
                ExpressionAttributeValues=values,
                ScanIndexForward=False)
            for page in pages:
                events += filter(None, (self._event(item) for item in page.get("Items", [])))
        return [e for e in events if matches(e, query)]

    def _event(self, item: dict[str, Any]) -> HistoryEvent | None:
        try:
            return HistoryEvent.from_dict(json.loads(item["event"]["S"]))
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("history item %s in DynamoDB table %s is not a record (%s); skipped",
                        item.get("pk", {}).get("S", "?"), self.table, exc)
            return None
