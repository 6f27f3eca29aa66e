"""Concurrent writers on one SQLite registry: real separate processes (and threads) on their own
connections. No version number is handed out twice, no status change is lost, and each change has
exactly one event, in commit order."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from greenlight.registry import LocalModelRegistry

WORKER = Path(__file__).with_name("registry_worker.py")
GROUP = "greenlight-models"


def run_together(home: Path, gate: Path, jobs: dict[str, list[str]]) -> dict[str, list[dict]]:
    """Start one process per job, release them all at once, and return what each one wrote."""
    gate.mkdir()
    procs = {
        name: subprocess.Popen([sys.executable, str(WORKER), str(home), str(gate), name, *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, args in jobs.items()
    }
    try:
        deadline = time.monotonic() + 120
        while not all((gate / f"ready-{name}").exists() for name in jobs):
            failed = {n: p.poll() for n, p in procs.items() if p.poll() is not None}
            assert not failed, f"workers exited before the start: {failed}"
            assert time.monotonic() < deadline, "workers never got ready"
            time.sleep(0.01)
        (gate / "go").touch()
        outputs = {name: p.communicate(timeout=300) for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
    for name, p in procs.items():
        assert p.returncode == 0, f"worker {name} failed: {outputs[name][1]}"
    return {name: json.loads(out) for name, (out, _err) in outputs.items()}


def seed(home: Path, count: int) -> LocalModelRegistry:
    registry = LocalModelRegistry(home)
    for _ in range(count):
        registry.create_model_package({"ModelPackageGroupName": GROUP, "InferenceSpecification": {
            "Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": "s3://b/m.tar.gz"}]}})
    return registry


def changes(registry: LocalModelRegistry) -> list[tuple[int, str]]:
    """(version, status) of every event after creation, in commit order."""
    return [(e["detail"]["ModelPackageVersion"], e["detail"]["ModelApprovalStatus"])
            for e in registry.pending_events() if e["detail"]["ModelApprovalStatus"] != "PendingManualApproval"]


@pytest.mark.slow
def test_processes_registering_at_once_never_share_a_version_number(tmp_path):
    home = tmp_path / "home"
    LocalModelRegistry(home)
    # WHEN three processes register 30 versions each into the same group at the same moment
    results = run_together(home, tmp_path / "gate", {f"w{i}": ["register", "30"] for i in range(3)})
    # THEN the 90 versions are numbered 1..90, each handed to exactly one process
    handed_out = [v["version"] for versions in results.values() for v in versions]
    assert sorted(handed_out) == list(range(1, 91))
    registry = LocalModelRegistry(home)
    assert sorted(v.version for v in registry.list_versions(GROUP)) == list(range(1, 91))
    created = [e["detail"]["ModelPackageVersion"] for e in registry.pending_events()]
    assert sorted(created) == list(range(1, 91))  # one creation event per version
    assert all(sorted(v["version"] for v in vs) == [v["version"] for v in vs] for vs in results.values())


@pytest.mark.slow
def test_two_processes_approving_the_same_versions_record_each_approval_once(tmp_path):
    home = tmp_path / "home"
    registry = seed(home, 20)
    # WHEN two terminals approve versions 1..20 at the same moment, with different descriptions
    results = run_together(home, tmp_path / "gate", {
        "alice": ["set-status", "Approved", "1", "20", "alice says yes"],
        "bob": ["set-status", "Approved", "1", "20", "bob says yes"],
    })
    # THEN every version is Approved once: one event each, and both terminals saw the same winner
    assert sorted(changes(registry)) == [(v, "Approved") for v in range(1, 21)]
    for alice, bob in zip(results["alice"], results["bob"], strict=True):
        assert alice == bob
        assert alice["approval_description"] in {"alice says yes", "bob says yes"}
        assert registry.get(GROUP, alice["version"]).to_dict() == alice


@pytest.mark.slow
def test_racing_approve_and_reject_lose_no_update_and_events_follow_commit_order(tmp_path):
    home = tmp_path / "home"
    registry = seed(home, 20)
    # WHEN one process approves and another rejects the same 20 versions, while a third registers more
    run_together(home, tmp_path / "gate", {
        "approver": ["set-status", "Approved", "1", "20"],
        "rejecter": ["set-status", "Rejected", "1", "20"],
        "trainer": ["register", "10"],
    })
    # THEN each version took one or two changes, and its last event is its final status
    events = changes(registry)
    per_version = Counter(v for v, _ in events)
    assert set(per_version) == set(range(1, 21)) and set(per_version.values()) <= {1, 2}
    last = {v: s for v, s in events}
    assert last == {v: registry.get(GROUP, v).status.value for v in range(1, 21)}
    assert sorted(v.version for v in registry.list_versions(GROUP)) == list(range(1, 31))


def test_threads_with_their_own_connections_never_share_a_version_number(tmp_path):
    home = tmp_path / "home"
    LocalModelRegistry(home)

    def register_five(_):
        registry = LocalModelRegistry(home)
        return [seed_one(registry) for _ in range(5)]

    def seed_one(registry):
        return registry.create_model_package({"ModelPackageGroupName": GROUP, "InferenceSpecification": {
            "Containers": [{"Image": "sklearn:1.9-0"}]}}).version

    with ThreadPoolExecutor(max_workers=8) as pool:
        handed_out = [v for versions in pool.map(register_five, range(8)) for v in versions]
    assert sorted(handed_out) == list(range(1, 41))
    assert len(LocalModelRegistry(home).pending_events()) == 40


def test_the_database_is_in_wal_mode_with_a_busy_timeout(tmp_path):
    registry = LocalModelRegistry(tmp_path / "home")
    with registry._connect() as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
