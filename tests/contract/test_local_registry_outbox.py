"""The local registry's outbox: every status change and its EventBridge-shaped event commit together."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenlight.errors import NotFoundError
from greenlight.registry import ApprovalStatus, LocalModelRegistry
from greenlight.registry import local as local_module

EVENTS = Path(__file__).resolve().parents[1] / "events"
GROUP = "greenlight-models"


def request(**overrides) -> dict:
    req = {
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {
            "Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": "s3://b/train/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        "MetadataProperties": {"GeneratedBy": "arn:aws:sagemaker:local:000000000000:pipeline/p/execution/e1"},
        "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                         "S3Uri": "s3://b/evaluate/evaluation.json"}}},
        "CustomerMetadataProperties": {"sklearn_version": "1.9.0"},
    }
    req.update(overrides)
    return req


@pytest.fixture
def registry(tmp_path) -> LocalModelRegistry:
    return LocalModelRegistry(tmp_path / "home")


def statuses(events: list[dict]) -> list[tuple[int, str]]:
    return [(e["detail"]["ModelPackageVersion"], e["detail"]["ModelApprovalStatus"]) for e in events]


def test_creation_and_every_status_change_write_one_event_each(registry):
    registry.create_model_package(request())
    registry.create_model_package(request())
    registry.update_status(GROUP, 2, ApprovalStatus.APPROVED, "good")
    registry.update_status(GROUP, 2, ApprovalStatus.APPROVED, "again")  # no-op: no event
    registry.update_status(GROUP, 1, ApprovalStatus.REJECTED)
    registry.update_status(GROUP, 1, ApprovalStatus.APPROVED)  # Rejected -> Approved is allowed
    events = registry.pending_events()
    assert statuses(events) == [(1, "PendingManualApproval"), (2, "PendingManualApproval"),
                                (2, "Approved"), (1, "Rejected"), (1, "Approved")]
    assert events[2]["detail"]["ApprovalDescription"] == "good"
    assert len({e["id"] for e in events}) == len(events)


def test_events_survive_the_process_and_leave_the_outbox_when_delivered(registry, tmp_path):
    registry.create_model_package(request())
    registry.update_status(GROUP, 1, ApprovalStatus.APPROVED)
    reopened = LocalModelRegistry(tmp_path / "home")  # as a new process would see it
    events = reopened.pending_events()
    assert statuses(events) == [(1, "PendingManualApproval"), (1, "Approved")]
    reopened.mark_delivered(events[0]["id"])
    reopened.mark_delivered(events[0]["id"])  # at-least-once delivery: marking twice is harmless
    assert [e["id"] for e in registry.pending_events()] == [events[1]["id"]]
    with pytest.raises(NotFoundError):
        registry.mark_delivered("no-such-event")


def test_a_failure_while_writing_the_event_rolls_back_the_status_change(registry, monkeypatch):
    registry.create_model_package(request())
    before = registry.pending_events()

    def broken(*args, **kwargs):
        raise RuntimeError("crash between the status change and its event")

    monkeypatch.setattr(local_module, "state_change_event", broken)
    with pytest.raises(RuntimeError):
        registry.update_status(GROUP, 1, ApprovalStatus.APPROVED)
    with pytest.raises(RuntimeError):
        registry.create_model_package(request())
    monkeypatch.undo()
    assert registry.get(GROUP, 1).status is ApprovalStatus.PENDING
    assert [v.version for v in registry.list_versions(GROUP)] == [1]
    assert registry.pending_events() == before
    assert registry.create_model_package(request()).version == 2  # no number was used up


def shape(value):
    """The keys and JSON types of a document, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


@pytest.mark.parametrize("fixture, status, description", [
    ("model_package_state_change_pending.json", None, None),
    ("model_package_state_change_approved.json", ApprovalStatus.APPROVED, "looks good"),
    ("model_package_state_change_rejected.json", ApprovalStatus.REJECTED, "too slow"),
])
def test_local_events_have_the_shape_of_aws_events(registry, fixture, status, description):
    aws = json.loads((EVENTS / fixture).read_text(encoding="utf-8"))
    registry.create_model_package(request())
    if status is not None:
        registry.update_status(GROUP, 1, status, description)
    local = registry.pending_events()[-1]

    # The one known difference: SageMaker adds the ImageDigest it resolved; locally there is none.
    aws_container = aws["detail"]["InferenceSpecification"]["Containers"][0]
    local_container = local["detail"]["InferenceSpecification"]["Containers"][0]
    assert set(local_container) == set(aws_container) - {"ImageDigest"}
    del aws_container["ImageDigest"]

    assert shape(local) == shape(aws)
    assert local["detail"]["ModelApprovalStatus"] == aws["detail"]["ModelApprovalStatus"]
    assert local["resources"] == [local["detail"]["ModelPackageArn"]]
    assert local["time"].endswith("Z") and local["detail"]["CreationTime"].endswith("Z")
    assert local["time"] == local["detail"]["LastModifiedTime"]


def test_a_lifecycle_change_writes_its_event_and_the_same_again_writes_none(registry):
    from greenlight.registry.model import ModelLifeCycle

    registry.create_model_package(request())
    registry.update_status(GROUP, 1, ApprovalStatus.APPROVED)
    registry.update_lifecycle(GROUP, 1, ModelLifeCycle("production", "Approved", "looked fine in staging"))
    registry.update_lifecycle(GROUP, 1, ModelLifeCycle("production", "Approved", "looked fine in staging"))
    events = registry.pending_events()
    assert len(events) == 3
    assert events[-1]["detail"]["ModelLifeCycle"] == {"Stage": "production", "StageStatus": "Approved",
                                                      "StageDescription": "looked fine in staging"}
    assert events[-1]["detail"]["ModelApprovalStatus"] == "Approved"


def test_a_store_written_before_lifecycles_is_migrated_and_keeps_its_versions(tmp_path):
    import sqlite3

    # GIVEN a registry file with the schema before issue 21 (no lifecycle column, user_version 0)
    home = tmp_path / "home"
    home.mkdir()
    old_schema = local_module._SCHEMA.replace("    lifecycle             TEXT,              -- schema version 1 "
                                              "(_MIGRATIONS)\n", "")
    assert "lifecycle" not in old_schema
    conn = sqlite3.connect(home / "registry.sqlite3")
    conn.executescript(old_schema)
    conn.close()
    old = LocalModelRegistry.__new__(LocalModelRegistry)  # write a version through the old table
    old.__dict__.update(path=home / "registry.sqlite3", region="local", account="000000000000", _ready=True,
                        _setup_error=None)
    old.create_model_package(request())
    # WHEN this code opens it THEN the column is added once, the version reads, a lifecycle can be set
    from greenlight.registry.model import ModelLifeCycle

    registry = LocalModelRegistry(home)
    assert registry.get(GROUP, 1).lifecycle is None
    assert registry.update_lifecycle(GROUP, 1, ModelLifeCycle("staging", "Approved")).lifecycle.stage == "staging"
    assert LocalModelRegistry(home).get(GROUP, 1).lifecycle.stage == "staging"  # reopening migrates nothing twice
    with sqlite3.connect(home / "registry.sqlite3") as check:
        assert check.execute("PRAGMA user_version").fetchone() == (1,)
