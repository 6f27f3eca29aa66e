"""A full disk ends in one line naming it, reads keep working, and the deployment converges once space is back.

GIVEN GREENLIGHT_HOME on a 40 MB tmpfs holding a registered version 1 (real CLI processes throughout)
WHEN the filesystem is filled to its last byte
THEN `models list` and `status` still answer, each with exactly one stderr line naming the space problem,
     and `models approve 1` fails with one line naming it, changing nothing;
WHEN only a little space is given back (enough for the registry, not for the model)
THEN `models approve 1` records the approval and fails naming the space problem (no internal error);
WHEN the space is freed
THEN `greenlight deploy` brings every target to version 1.

The second test holds what per-target isolation adds (every target attempted, each failure naming the
space problem, the last failure recorded).

Runs as root only (a tmpfs mount); CI runs as root and fails on a skip (tests/support/disks.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.disks import fill, free, tmpfs

GROUP = "greenlight-models"


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"GREENLIGHT_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "greenlight.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def register(home: Path, models: dict[str, Path]) -> None:
    """Version 1 of GROUP: the test model and its smoke rows in the local store, PendingManualApproval."""
    from deploy.engine.smoke import SMOKE_KEY
    from greenlight.workspace import Workspace

    ws = Workspace.open("local", home=home)
    prefix = f"s3://greenlight-test/{GROUP}/v1"
    ws.store.put_bytes(f"{prefix}/model.tar.gz", models["a_tar"].read_bytes())
    ws.store.put_bytes(f"{prefix}/smoke.json", models["a_smoke"].read_bytes())
    ws.local_registry.create_model_package({
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {"Containers": [{"Image": "sagemaker-scikit-learn:1.9-0-cpu-py3",
                                                   "ModelDataUrl": f"{prefix}/model.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"],
                                   "SupportedResponseMIMETypes": ["application/json"]},
        "CustomerMetadataProperties": {SMOKE_KEY: f"{prefix}/smoke.json"},
    })


def one_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    err = proc.stderr
    assert err.count("\n") == 1, f"expected one line on stderr, got:\n{err}"
    assert "internal error" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, err
    return err


def approved(home: Path) -> list[int]:
    return [v["version"] for v in json.loads(cli(home, "models", "list", "--status", "Approved", "--json").stdout)]


@pytest.mark.slow
def test_a_full_disk_is_named_in_one_line_and_the_deployment_converges_after(tmp_path, models):
    with tmpfs(tmp_path / "disk", "40m") as disk:
        home = disk / "home"
        register(home, models)
        filler = fill(disk)
        space = f"no space left on {disk}"

        listed = cli(home, "models", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [v["version"] for v in json.loads(listed.stdout)] == [1]
        one_line(listed, "greenlight: warning:", space)

        status = cli(home, "status", "--json")
        one_line(status, space)
        assert status.returncode in (0, 1)
        if status.returncode == 0:
            assert all(t.get("running") is None for t in json.loads(status.stdout)["targets"])

        approve = cli(home, "models", "approve", "1")
        assert approve.returncode == 1, approve.stdout + approve.stderr
        one_line(approve, "greenlight: error:", space, "while writing the model registry")
        assert approved(home) == [], "a failed approval changed the registry"

        free(filler, 256 * 1024)  # room for the registry's write, not for the model
        approve = cli(home, "models", "approve", "1")
        assert approve.returncode == 1, approve.stdout + approve.stderr
        assert "internal error" not in approve.stderr and "Traceback" not in approve.stderr, approve.stderr
        assert "space left on" in approve.stdout + approve.stderr, approve.stdout + approve.stderr
        assert approved(home) == [1]

        free(filler)
        deployed = cli(home, "deploy")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert deployed.stderr == "", deployed.stderr
        after = json.loads(cli(home, "status", "--json").stdout)
        assert {t["target"]: t.get("running") for t in after["targets"]} == {"endpoint": 1, "lambda": 1, "batch": 1}
        assert not any(t["drift"] for t in after["targets"]), after


@pytest.mark.slow
def test_on_a_full_disk_every_target_fails_on_its_own_and_the_failure_is_recorded(tmp_path, models):
    with tmpfs(tmp_path / "disk", "40m") as disk:
        home = disk / "home"
        register(home, models)
        filler = fill(disk)
        free(filler, 256 * 1024)  # room for the registry's write, not for the model
        approve = cli(home, "models", "approve", "1")
        assert approve.returncode == 1, approve.stdout + approve.stderr
        assert "Approved version 1" in approve.stdout, approve.stdout + approve.stderr
        failed = [line for line in approve.stdout.splitlines() if "FAILED" in line]
        assert {line.split(":")[0].strip() for line in failed} == {"endpoint", "lambda", "batch"}, approve.stdout
        assert all("space left on" in line for line in failed), approve.stdout
        free(filler)
        status = json.loads(cli(home, "status", "--json").stdout)
        assert "space left on" in json.dumps(status["last_failure"]), status
        assert all(t.get("running") is None for t in status["targets"]), status  # nothing half-deployed
