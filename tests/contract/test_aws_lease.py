"""The reconcile lease and status store on DynamoDB (deploy.engine.aws_state) against moto's HTTP server.

The lease is proven with real processes: workers released together each take the lease, record
enter/exit times in a shared file and hold it; no two holds overlap and every worker gets its turn,
also when a hold outlasts the lease itself (the holder renews it). A control run without the lease
shows the same check catching overlaps. A holder killed with SIGKILL blocks a waiter only until its
lease expires. moto serialises its DynamoDB writes here (tests/support/moto_sagemaker.py): it checks a
ConditionExpression and writes in two steps, which DynamoDB does atomically.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deploy.engine.aws_state import LEASE_SECONDS, DynamoLease, DynamoStatusStore
from greenlight.errors import ConfigurationError, ConflictError
from tests.contract.conftest import REGION, aws_client
from tests.support.deploy_env_aws import TABLE, create_state_table

ROOT = Path(__file__).resolve().parents[2]
BOUND = 60  # seconds: an upper bound on every wait, never an assertion

WORKER = r"""
import contextlib, json, os, sys, time
import boto3
from botocore.config import Config
from deploy.engine.aws_state import DynamoLease

spec = json.loads(sys.argv[1])
client = boto3.client("dynamodb", region_name=spec["region"], endpoint_url=spec["url"], aws_access_key_id="testing",
                      aws_secret_access_key="testing", config=Config(retries={"total_max_attempts": 1}))
lease = DynamoLease(client, spec["table"], spec["group"], timeout=spec.get("timeout", 60),
                    lease_seconds=spec["lease"], poll=0.05)
def note(kind):
    with open(spec["record"], "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {kind} {time.time()!r}\n")
note("ready")
go = spec.get("go")
while go and not os.path.exists(go):
    time.sleep(0.01)
note("start")
with (lease() if spec["use_lease"] else contextlib.nullcontext()):
    note("enter")
    time.sleep(spec["hold"])
    note("exit")
"""


@pytest.fixture
def db(moto_endpoint):
    client = aws_client("dynamodb", moto_endpoint)
    create_state_table(client)
    return client


def start(moto_endpoint: str, record: Path, **spec) -> subprocess.Popen:
    spec = {"url": moto_endpoint, "region": REGION, "table": TABLE, "group": "churn", "record": str(record),
            "use_lease": True, **spec}
    return subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(spec)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def lines(record: Path) -> list[tuple[int, str, float]]:
    return [(int(p), kind, float(t)) for p, kind, t in (line.split() for line in record.read_text().splitlines())]


def wait_for(record: Path, pid: int, kind: str) -> None:
    deadline = time.monotonic() + BOUND
    while not (record.exists() and any(p == pid and k == kind for p, k, _ in lines(record))):
        assert time.monotonic() < deadline, f"worker {pid} never wrote {kind!r}"
        time.sleep(0.02)


def holds(record: Path) -> list[tuple[int, str, float]]:
    return sorted((entry for entry in lines(record) if entry[1] in ("enter", "exit")), key=lambda e: e[2])


def overlapping(record: Path) -> bool:
    """True if some worker entered while another held (enter/exit do not alternate per worker)."""
    ordered = holds(record)
    pairs = [ordered[i:i + 2] for i in range(0, len(ordered), 2)]
    return not all(len(p) == 2 and p[0][1] == "enter" and p[1][1] == "exit" and p[0][0] == p[1][0] for p in pairs)


def run_together(moto_endpoint: str, tmp_path: Path, n: int, **spec) -> tuple[Path, list[int]]:
    record, go = tmp_path / "record.txt", tmp_path / "go"
    workers = [start(moto_endpoint, record, go=str(go), **spec) for _ in range(n)]
    for w in workers:
        wait_for(record, w.pid, "ready")  # all are past their imports: they contend at once
    go.touch()
    outputs = [w.communicate(timeout=BOUND) for w in workers]
    assert [w.returncode for w in workers] == [0] * n, outputs
    return record, [w.pid for w in workers]


@pytest.mark.parametrize("n, lease, hold", [
    (4, 30.0, 0.2),
    # renewed every 0.5 s: a renewal slower than a second (a very loaded machine) would lose it, as it
    # would on AWS; the production lease is 17 minutes
    pytest.param(3, 1.5, 2.0, marks=pytest.mark.slow),
], ids=["hold-within-lease", "hold-outlasts-lease"])
def test_concurrent_processes_take_turns_and_all_run(db, moto_endpoint, tmp_path, n, lease, hold):
    record, pids = run_together(moto_endpoint, tmp_path, n, lease=lease, hold=hold)
    assert not overlapping(record), holds(record)
    assert sorted(p for p, kind, _ in holds(record) if kind == "enter") == sorted(pids)
    assert "Item" not in db.get_item(TableName=TABLE, Key={"pk": {"S": "lease#churn"}}), "the last holder released it"


def test_the_overlap_check_catches_workers_without_the_lease(db, moto_endpoint, tmp_path):
    record, _ = run_together(moto_endpoint, tmp_path, 3, lease=30.0, hold=0.5, use_lease=False)
    assert overlapping(record), "the control run should overlap; if not, the check above proves nothing"


def test_a_killed_holder_blocks_others_only_until_its_lease_expires(db, moto_endpoint, tmp_path):
    record = tmp_path / "record.txt"
    holder = start(moto_endpoint, record, lease=2.0, hold=BOUND)
    waiter = None
    try:
        wait_for(record, holder.pid, "enter")
        waiter = start(moto_endpoint, record, lease=2.0, hold=0.0)
        wait_for(record, waiter.pid, "start")
        killed_at = time.time()
        os.kill(holder.pid, signal.SIGKILL)  # no release, no more renewals
        holder.wait(timeout=BOUND)
        expires_at = float(db.get_item(TableName=TABLE, Key={"pk": {"S": "lease#churn"}},
                                       ConsistentRead=True)["Item"]["expires_at"]["N"])
        waiter.communicate(timeout=BOUND)
        assert waiter.returncode == 0
    finally:
        for process in (holder, waiter):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    [(_, _, started)] = [e for e in lines(record) if e[0] == waiter.pid and e[1] == "start"]
    [(_, _, entered)] = [e for e in lines(record) if e[0] == waiter.pid and e[1] == "enter"]
    assert started < killed_at < expires_at <= entered  # it waited while the holder lived, and until expiry


class FakeTime:
    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_a_waiter_gives_up_after_the_lock_timeout_with_a_conflict_error(db):
    fake = FakeTime()
    holder = DynamoLease(db, TABLE, "churn", holder="reconcile A")
    waiter = DynamoLease(db, TABLE, "churn", timeout=5, poll=1, sleep=fake.sleep, monotonic=fake.clock)
    with holder():
        with pytest.raises(ConflictError, match=r"another reconcile of churn has held its lease in DynamoDB table "
                                                r"greenlight-deployments for over 5 s \(held by reconcile A since"):
            with waiter():
                pytest.fail("the waiter got a lease that was held")
    assert fake.sleeps == [1, 1, 1, 1, 1]
    with waiter():  # released: the next one takes it at once
        pass


def test_an_expired_lease_is_taken_over_and_release_never_deletes_another_owners_lease(db):
    key = {"pk": {"S": "lease#churn"}}
    db.put_item(TableName=TABLE, Item={**key, "owner": {"S": "crashed"}, "expires_at": {"N": f"{time.time() - 1}"},
                                       "holder": {"S": "a dead Lambda"}, "acquired_at": {"S": "earlier"}})
    lease = DynamoLease(db, TABLE, "churn", timeout=0.01)
    with lease():
        item = db.get_item(TableName=TABLE, Key=key)["Item"]
        assert item["owner"]["S"] != "crashed" and float(item["expires_at"]["N"]) > time.time() + LEASE_SECONDS - 60
        # GIVEN our lease expired and another reconcile took it
        db.put_item(TableName=TABLE, Item={**key, "owner": {"S": "newcomer"}, "expires_at": {"N": f"{time.time() + 3600}"}})
    assert db.get_item(TableName=TABLE, Key=key)["Item"]["owner"]["S"] == "newcomer"


def test_the_lease_outlasts_the_longest_lambda_invocation():
    assert LEASE_SECONDS > 15 * 60


def test_the_status_store_keeps_the_last_report(db):
    store = DynamoStatusStore(db, TABLE, "churn")
    assert store.load() is None
    store.save({"group": "churn", "ok": False, "last_failure": {"targets": {"endpoint": "smoke test: 1 of 2 differ"}}})
    store.save({"group": "churn", "ok": True, "last_failure": {"targets": {"endpoint": "smoke test: 1 of 2 differ"}}})
    assert store.load() == {"group": "churn", "ok": True,
                            "last_failure": {"targets": {"endpoint": "smoke test: 1 of 2 differ"}}}
    assert DynamoStatusStore(db, TABLE, "other").load() is None


def test_intent_records_are_kept_per_target_and_an_unreadable_item_never_blocks(db, caplog):
    store = DynamoStatusStore(db, TABLE, "churn")
    intent = {"target": "endpoint", "version": 7, "step": "probe", "staged": {"ref": {"config": "churn-v7-c1"}}}
    assert store.load_intent("endpoint") is None
    store.save_intent("endpoint", intent)
    assert store.load_intent("endpoint") == intent and store.load_intent("lambda") is None
    assert DynamoStatusStore(db, TABLE, "other").load_intent("endpoint") is None
    store.save_intent("endpoint", None)
    assert store.load_intent("endpoint") is None
    store.save_intent("endpoint", None)  # clearing twice is fine
    db.put_item(TableName=TABLE, Item={"pk": {"S": "status#churn"}, "report": {"S": "{not json"}})
    db.put_item(TableName=TABLE, Item={"pk": {"S": "intent#churn#lambda"}, "intent": {"S": "[1, 2]"}})
    assert store.load() is None and store.load_intent("lambda") is None
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"][-2:] == [
        f"the item status#churn in DynamoDB table {TABLE} is not readable (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)); the next reconcile rewrites it",
        f"the item intent#churn#lambda in DynamoDB table {TABLE} is not readable (a JSON list, not an object); the "
        "next reconcile rewrites it"]


def test_a_missing_table_is_a_configuration_error(moto_endpoint):
    client = aws_client("dynamodb", moto_endpoint)
    with pytest.raises(ConfigurationError, match="state table 'nope' does not exist.*GREENLIGHT_STATE_TABLE"):
        DynamoStatusStore(client, "nope", "churn").load()
    with pytest.raises(ConfigurationError, match="state table 'nope' does not exist"):
        with DynamoLease(client, "nope", "churn")():
            pass
