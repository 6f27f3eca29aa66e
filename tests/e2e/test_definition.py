"""`greenlight pipeline definition`: offline, reproducible, the pipeline the issue asks for, and the
committed snapshot (tests/snapshots/pipeline-definition.json) byte for byte."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.snapshots import DEFINITION, REGENERATE, build_definition, definition_diff, offline_env


@pytest.fixture(scope="module")
def first_build(tmp_path_factory):
    """One offline build: what `make test` checks (the snapshot, no socket, the steps)."""
    tmp = tmp_path_factory.mktemp("definition")
    return tmp, build_definition(tmp)


@pytest.fixture(scope="module")
def two_builds(first_build):
    """A second build beside the first, for reproducibility (slow: another SDK start-up)."""
    tmp, first = first_build
    return tmp, first, build_definition(tmp)


def test_definition_builds_offline_with_no_socket_opened(first_build):
    tmp, first = first_build
    assert first.returncode == 0, first.stderr
    log = tmp / "sockets.log"
    assert not log.exists() or log.read_text() == "", f"sockets were attempted:\n{log.read_text()}"


def test_socket_guard_really_blocks(tmp_path):
    # GIVEN the guard WHEN a process opens a TCP connection THEN it fails and is logged.
    code = "import socket; socket.create_connection(('127.0.0.1', 9), timeout=1)"
    proc = subprocess.run([sys.executable, "-c", code], env=offline_env(tmp_path), capture_output=True, text=True)
    assert proc.returncode != 0 and "blocked by test guard" in proc.stderr
    assert "127.0.0.1" in (tmp_path / "sockets.log").read_text()


@pytest.mark.slow
def test_two_builds_are_byte_identical(two_builds):
    _, first, second = two_builds
    assert first.returncode == 0 and second.returncode == 0
    assert first.stdout == second.stdout
    assert first.stdout.endswith("\n") and json.loads(first.stdout)


def test_definition_matches_the_committed_snapshot_byte_for_byte(first_build):
    # GIVEN the first offline build WHEN it differs from the committed snapshot THEN the failure says
    # how to regenerate it and shows what changed, so a definition change is reviewed as a diff.
    _, first = first_build
    assert first.returncode == 0, first.stderr
    if first.stdout.encode("utf-8") != DEFINITION.read_bytes():
        pytest.fail(f"the pipeline definition differs from its committed snapshot {DEFINITION.name}; if the "
                    f"change is intended, run `{REGENERATE}` and commit the file.\n{definition_diff(first.stdout)}",
                    pytrace=False)


def test_snapshot_failure_message_shows_a_short_unified_diff():
    committed = DEFINITION.read_text(encoding="utf-8")
    changed = committed.replace('"RmseThreshold"', '"RmseLimit"', 1)
    diff = definition_diff(changed)
    assert diff.startswith("--- tests/snapshots/pipeline-definition.json (committed)\n+++ pipeline definition")
    assert '-      "Name": "RmseThreshold",\n+      "Name": "RmseLimit",\n' in diff
    assert definition_diff(committed.replace("\n", "\r\n")).startswith("(they differ only in line endings")
    everything = definition_diff("")
    assert len(everything.splitlines()) == 61 and everything.endswith("more diff lines\n")


def _refs(node) -> set[str]:
    """Every `Steps.<name>` a JSON fragment refers to through Get expressions."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Get" and isinstance(value, str) and value.startswith("Steps."):
                found.add(value.split(".")[1])
            found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _all_steps(steps):
    for step in steps:
        yield step
        yield from _all_steps(step.get("Arguments", {}).get("IfSteps", []))
        yield from _all_steps(step.get("Arguments", {}).get("ElseSteps", []))


def test_definition_has_the_five_step_kinds_wired_by_data(first_build):
    _, first = first_build
    definition = json.loads(first.stdout)
    steps = {s["Name"]: s for s in _all_steps(definition["Steps"])}
    assert {s["Type"] for s in steps.values()} == {"Processing", "Training", "Condition", "RegisterModel", "Fail"}
    assert sorted(s["Type"] for s in steps.values()).count("Processing") == 2
    # Data dependencies, not DependsOn.
    assert not any(s.get("DependsOn") for s in steps.values())
    assert _refs(steps["Train"]["Arguments"]) == {"Preprocess"}
    assert _refs(steps["Evaluate"]["Arguments"]) == {"Preprocess", "Train"}
    assert _refs(steps["CheckRmse"]["Arguments"]["Conditions"]) == {"Evaluate"}
    assert _refs(steps["Register"]["Arguments"]) == {"Train", "Evaluate"}
    assert _refs(steps["RmseTooHigh"]["Arguments"]) == {"Evaluate"}
    assert [s["Name"] for s in steps["CheckRmse"]["Arguments"]["IfSteps"]] == ["Register"]
    assert [s["Name"] for s in steps["CheckRmse"]["Arguments"]["ElseSteps"]] == ["RmseTooHigh"]
    # Pinned scikit-learn images everywhere a container runs.
    images = [steps["Preprocess"]["Arguments"]["AppSpecification"]["ImageUri"],
              steps["Evaluate"]["Arguments"]["AppSpecification"]["ImageUri"],
              steps["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"],
              *[c["Image"] for c in steps["Register"]["Arguments"]["InferenceSpecification"]["Containers"]]]
    assert all(i.endswith("/sagemaker-scikit-learn:1.9-0-cpu-py3") for i in images), images
    register = steps["Register"]["Arguments"]
    assert register["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv", "application/json"]
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    container_env = register["InferenceSpecification"]["Containers"][0]["Environment"]
    assert container_env["SAGEMAKER_PROGRAM"] == "sagemaker_entry.py", "the entry that can answer 4xx"
    assert container_env["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    params = {p["Name"]: p for p in definition["Parameters"]}
    assert params["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"
    for name in ("InputDataUrl", "ProcessingInstanceType", "TrainingInstanceType", "NEstimators", "MaxDepth",
                 "MinSamplesLeaf", "MaxFeatures", "RandomState", "NJobs", "RmseThreshold", "ModelPackageGroupName"):
        assert name in params
    # Caching on the three jobs, so identical inputs reuse earlier results.
    assert all(steps[n]["CacheConfig"]["Enabled"] for n in ("Preprocess", "Train", "Evaluate"))


@pytest.mark.slow
def test_project_variables_name_the_pipeline_and_group(tmp_path):
    env = offline_env(tmp_path) | {"SAGEMAKER_PROJECT_NAME": "churn", "SAGEMAKER_PROJECT_ID": "p-123",
                                   "ARTIFACT_BUCKET": "proj-bucket",
                                   "SAGEMAKER_PIPELINE_ROLE_ARN": "arn:aws:iam::111122223333:role/r"}
    proc = subprocess.run([sys.executable, "-m", "greenlight.cli", "pipeline", "definition"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "arn:aws:iam::111122223333:role/r" in text and "s3://proj-bucket/churn-p-123/data/diabetes.csv" in text
    params = {p["Name"]: p for p in json.loads(text)["Parameters"]}
    assert params["ModelPackageGroupName"]["DefaultValue"] == "churn-p-123"


def test_code_digest_follows_the_code(tmp_path):
    from pipelines.definition import code_digest

    (tmp_path / "train.py").write_text("print(1)\n")
    first = code_digest(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert code_digest(tmp_path) == first, "bytecode must not change the digest"
    (tmp_path / "train.py").write_text("print(2)\n")
    assert code_digest(tmp_path) != first, "changed code must change the upload path (no stale cache hits)"
