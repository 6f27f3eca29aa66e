"""The deployment history's two stores, one suite: SQLite locally, the state table's index on moto's HTTP server.

GIVEN records of two groups appended out of time order, WHEN a group's history is read with each filter,
THEN both stores answer the same records, newest first, and never another group's.
"""

from __future__ import annotations

import pytest

from deploy.engine.aws_history import DynamoHistory
from deploy.engine.history import HistoryEvent, HistoryQuery
from deploy.engine.local_history import LocalHistory
from tests.contract.conftest import aws_client
from tests.support.deploy_env_aws import TABLE, create_state_table


def event(group: str, at: str, target: str, to: int, stage: str = "default") -> HistoryEvent:
    return HistoryEvent(f"2026-12-01T{at}:00.000Z", group, stage, target, target, "deploy", None, to, True, "approval",
                        "e-" + at, "arn:aws:iam::1:user/alice", "passed", 1.5)


@pytest.fixture(params=["local", "aws"])
def stores(request, tmp_path):
    if request.param == "local":
        return lambda group: LocalHistory(tmp_path, group)
    dynamodb = aws_client("dynamodb", request.getfixturevalue("moto_endpoint"))
    create_state_table(dynamodb)
    return lambda group: DynamoHistory(dynamodb, TABLE, group)


def test_both_stores_read_a_group_newest_first_with_every_filter(stores):
    store, other = stores("g"), stores("other")
    appended = [event("g", "10:00", "endpoint", 1), event("g", "12:00", "lambda", 2),
                event("g", "11:00", "endpoint", 2), event("g", "11:30", "endpoint", 3, stage="prod")]
    for record in appended:
        store.append(record)
    other.append(event("other", "11:45", "endpoint", 9))
    assert [e.at[11:16] for e in store.read()] == ["12:00", "11:30", "11:00", "10:00"]
    assert store.read()[0] == appended[1]  # every field round-trips
    assert [e.to_version for e in store.read(HistoryQuery(target="endpoint"))] == [3, 2, 1]
    assert [e.to_version for e in store.read(HistoryQuery(stage="prod"))] == [3]
    assert [e.to_version for e in store.read(HistoryQuery(since="2026-12-01T11:00:00.000Z"))] == [2, 3, 2]
    assert [e.to_version for e in store.read(HistoryQuery(until="2026-12-01T11:00:00.000Z"))] == [2, 1]
    assert [e.to_version for e in store.read(HistoryQuery(since="2026-12-01T11:00:00.000Z",
                                                          until="2026-12-01T11:59:00.000Z"))] == [3, 2]
    assert [e.group for e in other.read()] == ["other"]
