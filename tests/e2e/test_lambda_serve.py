"""`greenlight lambda serve` as its own process, found by the deployer, called by `greenlight invoke`.

GIVEN a local registry holding one trained version and `greenlight lambda serve` running (a separate
process, which registers its URL) WHEN the version is approved through the real CLI THEN the deployer
smoke-tests the new function version through that front before moving the alias, `greenlight invoke
--endpoint URL` gets the prediction, `greenlight status` shows the Lambda on v1, and SIGTERM stops the
front and removes its record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deploy.engine.smoke import SMOKE_KEY
from greenlight.workspace import Workspace
from tests.support.cli_processes import registered_url
from tests.support.endpoints import ROW

GROUP = "greenlight-models"
BOUND_SECONDS = 60


def cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"GREENLIGHT_HOME": str(home), "GREENLIGHT_ENDPOINT_ENABLED": "false",
                         "GREENLIGHT_BATCH_ENABLED": "false"}
    return subprocess.run([sys.executable, "-m", "greenlight.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def _register(home: Path, models: dict[str, Path]) -> None:
    ws = Workspace.open("local", home=home)
    bucket = f"s3://greenlight-e2e/{GROUP}/v1"
    ws.store.put_bytes(f"{bucket}/model.tar.gz", models["a_tar"].read_bytes())
    ws.store.put_bytes(f"{bucket}/smoke.json", models["a_smoke"].read_bytes())
    ws.local_registry.create_model_package({
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {"Containers": [{"Image": "sagemaker-scikit-learn:1.9-0-cpu-py3",
                                                   "ModelDataUrl": f"{bucket}/model.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"],
                                   "SupportedResponseMIMETypes": ["application/json"]},
        "CustomerMetadataProperties": {SMOKE_KEY: f"{bucket}/smoke.json"}})


def _wait_for_url(record: Path, proc: subprocess.Popen) -> str:
    return registered_url(record, proc, "lambda serve", BOUND_SECONDS)


def test_lambda_serve_is_smoke_tested_by_the_deployer_and_answers_invoke(tmp_path, models):
    home = tmp_path / "home"
    _register(home, models)
    serve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "lambda", "serve", "--port", "0"],
                             env=os.environ | {"GREENLIGHT_HOME": str(home)}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    record = home / "deployments" / GROUP / "lambda.serving.json"
    try:
        url = _wait_for_url(record, serve)
        with pytest.raises(urllib.error.HTTPError) as nothing:
            urllib.request.urlopen(url + "/health", timeout=30)
        assert nothing.value.code == 503
        approved = cli(home, "models", "approve", "1")
        assert approved.returncode == 0, approved.stderr
        assert f"lambda: nothing -> v1 (function version 1; smoke test passed through the local front at {url}" \
            in approved.stdout, approved.stdout
        invoked = cli(home, "invoke", "--endpoint", url, "--body", ROW)
        assert invoked.returncode == 0 and json.loads(invoked.stdout)["predictions"], invoked.stderr
        status = json.loads(cli(home, "status", "--json").stdout)
        [lam] = status["targets"]
        assert (lam["target"], lam["running"], lam["drift"], lam["detail"]["serving_url"]) == ("lambda", 1, False, url)
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=BOUND_SECONDS)
    assert serve.returncode == 0, err
    assert "greenlight lambda: stopped" in err and not record.exists()


@pytest.mark.parametrize("command", ["endpoint", "lambda"])
def test_serving_a_group_that_does_not_exist_warns_naming_the_known_ones(tmp_path, models, command):
    """issue 18 item 7: a typo in --group served 503 forever without a word; now one warning line on stderr."""
    home = tmp_path / "home"
    _register(home, models)
    serve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", command, "serve", "--port", "0", "--group",
                              "greenlight-modles"], env=os.environ | {"GREENLIGHT_HOME": str(home)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_url(home / "deployments" / "greenlight-modles" / f"{command}.serving.json", serve)
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=BOUND_SECONDS)
    warnings = [line for line in err.splitlines() if line.startswith("greenlight: warning:")]
    assert warnings == ["greenlight: warning: no such model package group 'greenlight-modles'; known: "
                        "greenlight-models (nothing is served or deployed for it until a version is registered "
                        "there)"], err
    assert serve.returncode == 0 and "Traceback" not in err, err
