"""Issue 18's must-show: an interrupted approval of a bad version never reaches a client.

GIVEN `greenlight endpoint serve` serving v1 to a loop of clients, and v2 a version whose model loads
slowly (its model_fn sleeps) and predicts other numbers than its smoke-test data records, WHEN
`greenlight models approve 2` is interrupted (SIGINT and SIGKILL, at several instants: during the
CLI's start, while the server loads v2 beside v1, while it is probed) and then `greenlight deploy`
runs to the end, THEN every response of the loop came from v1 (X-Greenlight-Model-Version), and
`greenlight status --json` shows the endpoint running v1 with the failure recorded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deploy.engine.smoke import SMOKE_KEY
from greenlight.registry.model import ApprovalStatus
from tests.e2e.test_approval_deploys import GROUP, _clients, _serving_url
from tests.support.models import pack

SLOW_SECONDS = 3.0
# (signal, seconds after the deployment recorded its intent): while the server loads v2 beside v1 (3 s), as the
# load ends, during the probe and its undo; and one SIGKILL while the CLI is still starting (None)
INTERRUPTS = [(signal.SIGKILL, None), (signal.SIGINT, 0.0), (signal.SIGKILL, 1.0), (signal.SIGINT, 2.0),
              (signal.SIGKILL, 3.2)]


def _environment(home: Path) -> dict[str, str]:
    return os.environ | {"GREENLIGHT_HOME": str(home), "GREENLIGHT_LAMBDA_ENABLED": "false",
                         "GREENLIGHT_BATCH_ENABLED": "false"}


def _cli(home: Path, *args: str, check: int | None = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "greenlight.cli", *args], env=_environment(home),
                          capture_output=True, text=True, timeout=600)
    if check is not None:
        assert proc.returncode == check, f"greenlight {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _slow_and_wrong(models: dict[str, Path], work: Path) -> tuple[Path, bytes]:
    """v2: model b whose model_fn sleeps, and smoke data recording predictions it does not give."""
    model = work / "slow-b"
    shutil.copytree(models["b"], model)
    with open(model / "code" / "inference.py", "a", encoding="utf-8") as fh:
        fh.write(f"\n\n_fast_model_fn = model_fn\n\n\ndef model_fn(model_dir):\n    import time\n\n"
                 f"    time.sleep({SLOW_SECONDS})\n    return _fast_model_fn(model_dir)\n")
    smoke = json.loads(models["b_smoke"].read_text())
    smoke["predictions"] = [p + 1.0 for p in smoke["predictions"]]
    return pack(model, work / "slow-b.tar.gz"), json.dumps(smoke).encode()


def _register(home: Path, archive: Path, smoke: bytes) -> int:
    from greenlight.workspace import Workspace

    ws = Workspace.open("local", home=home)
    registry = ws.local_registry
    n = len(registry.list_versions(GROUP)) + 1 if GROUP in registry.list_groups() else 1
    base = f"s3://greenlight-test/{GROUP}/v{n}"
    ws.store.put_bytes(f"{base}/model.tar.gz", archive.read_bytes())
    ws.store.put_bytes(f"{base}/smoke.json", smoke)
    return registry.create_model_package({
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {"Containers": [{"Image": "sagemaker-scikit-learn:1.9-0-cpu-py3",
                                                   "ModelDataUrl": f"{base}/model.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"],
                                   "SupportedResponseMIMETypes": ["application/json"]},
        "CustomerMetadataProperties": {SMOKE_KEY: f"{base}/smoke.json"},
        "ModelApprovalStatus": ApprovalStatus.PENDING.value}).version


def _wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Until `proc`'s deployment recorded its intent (a killed one's record may still be there)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            if json.loads(path.read_text())["holder"].startswith(f"pid {proc.pid} "):
                return
        except (OSError, ValueError, KeyError):
            pass
        assert proc.poll() is None, f"the approval ended before its deployment began: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no intent of pid {proc.pid} in {path} after 120 s"
        time.sleep(0.01)


@pytest.mark.slow
def test_interrupted_approvals_of_a_slow_wrong_version_never_serve_it_and_deploy_then_records_the_failure(
        models, tmp_path):
    home = tmp_path / "home"
    assert _register(home, models["a_tar"], models["a_smoke"].read_bytes()) == 1
    assert _register(home, *_slow_and_wrong(models, tmp_path)) == 2
    serve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "endpoint", "serve", "--port", "0",
                              "--poll-seconds", "0.2"], env=_environment(home), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    stop, seen, failures = threading.Event(), [], []
    threads = []
    try:
        url = _serving_url(home, serve)
        assert "endpoint: nothing -> v1 (smoke test passed at" in _cli(home, "models", "approve", "1").stdout
        threads = _clients(url, 3, stop, seen, failures)
        intent = home / "deployments" / GROUP / "endpoint.intent.json"
        for sig, after in INTERRUPTS:
            _cli(home, "models", "reject", "2")  # so that approving it again is a change, with its event
            approve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "models", "approve", "2"],
                                       env=_environment(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
            if after is None:
                time.sleep(0.3)
            else:
                _wait_for(intent, approve)
                time.sleep(after)
            approve.send_signal(sig)
            out, err = approve.communicate(timeout=120)
            assert "internal error" not in err and "Traceback" not in err, err
            if sig is signal.SIGINT and approve.returncode not in (0, 1):  # 0/1: it had finished (and failed)
                assert approve.returncode == 130, (approve.returncode, out, err)
        deployed = _cli(home, "deploy", check=1)  # v2 fails its smoke test beside v1
        assert "endpoint: FAILED deploy failed: smoke test at" in deployed.stdout, deployed.stdout
        assert "v1 still serves" in deployed.stdout, deployed.stdout
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        status = json.loads(_cli(home, "status", "--json").stdout)
    finally:
        stop.set()
        serve.send_signal(signal.SIGINT)
        serve.communicate(timeout=120)
    assert failures == [] and seen and all(log == [f"{GROUP}/1"] for log in seen), (failures, seen)
    [endpoint] = status["targets"]
    assert (status["desired"], endpoint["target"], endpoint["running"], endpoint["drift"]) == (2, "endpoint", 1, True)
    failure = status["last_failure"]["targets"]["endpoint"]
    assert "smoke" in failure and "predictions differ" in failure and failure.endswith("v1 still serves"), failure
    assert not (home / "deployments" / GROUP / "endpoint.intent.json").exists()
