"""Issue 23's sequence through the real CLI: an unmodified boto3 application against `endpoint serve`, and the
deployment history of approve 1, approve 2, reject 2.

GIVEN two versions trained by `greenlight run` and `greenlight endpoint serve` running, WHEN the application's
boto3 `sagemaker-runtime` client is pointed at the server only by the AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME line
the server printed, THEN it gets v1's prediction once v1 is approved, ModelError (OriginalStatusCode 400) for a
wrong-width row and ValidationError for an unknown endpoint name; and after approve 1, approve 2, reject 2,
`greenlight history --json` lists nothing -> 1, 1 -> 2, 2 -> 1 for every target with their triggers, and
`history --at` an instant between the approvals answers v1 for every target.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from tests.support.endpoints import ROW

GROUP = "greenlight-models"
BOUND_SECONDS = 120


def cli(home: Path, *args: str) -> str:
    env = os.environ | {"GREENLIGHT_HOME": str(home)}
    proc = subprocess.run([sys.executable, "-m", "greenlight.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"greenlight {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def application_client(monkeypatch, line: str):
    """What an application builds, unchanged: only the exported variable points it at the local endpoint."""
    name, _, url = line.partition("=")
    assert name == "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME" and url.startswith("http://127.0.0.1:"), line
    for key, value in {name: url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return boto3.client("sagemaker-runtime")


@pytest.mark.slow
def test_boto3_against_local_mode_and_the_history_of_approve_approve_reject(tmp_path, monkeypatch):
    home = tmp_path / "home"
    cli(home, "run")
    cli(home, "run", "--param", "NEstimators=40", "--param", "RandomState=7")
    serve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "endpoint", "serve", "--port", "0",
                              "--poll-seconds", "0.2"], env=os.environ | {"GREENLIGHT_HOME": str(home)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = serve.stdout.readline().strip()  # the server prints it once it listens, then only logs to stderr
        assert line, f"endpoint serve printed no line: {serve.stderr.read() if serve.poll() is not None else ''}"
        runtime = application_client(monkeypatch, line)
        record = home / "deployments" / GROUP / "endpoint.serving.json"
        deadline = time.monotonic() + BOUND_SECONDS
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

        assert "endpoint: nothing -> v1" in cli(home, "models", "approve", "1")
        between = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        time.sleep(0.01)  # the next record is at least a millisecond later

        answer = runtime.invoke_endpoint(EndpointName=GROUP, Body=ROW.encode(), ContentType="text/csv")
        assert answer["ResponseMetadata"]["HTTPHeaders"]["x-greenlight-model-version"] == f"{GROUP}/1"
        assert answer["InvokedProductionVariant"] == "AllTraffic"
        prediction = json.loads(answer["Body"].read())
        assert prediction == json.loads(cli(home, "invoke", "--endpoint", line.partition("=")[2], "--body", ROW))
        with pytest.raises(runtime.exceptions.ModelError) as wrong_width:
            runtime.invoke_endpoint(EndpointName=GROUP, Body=b"1,2,3", ContentType="text/csv")
        assert wrong_width.value.response["OriginalStatusCode"] == 400
        with pytest.raises(runtime.exceptions.ValidationError, match="Endpoint no-such-endpoint of account"):
            runtime.invoke_endpoint(EndpointName="no-such-endpoint", Body=ROW.encode(), ContentType="text/csv")

        assert "endpoint: v1 -> v2" in cli(home, "models", "approve", "2")
        assert "endpoint: v2 -> v1" in cli(home, "models", "reject", "2")
    finally:
        serve.terminate()
        serve.communicate(timeout=BOUND_SECONDS)

    events = json.loads(cli(home, "history", "--json"))["events"]
    targets = sorted({e["target"] for e in events})
    assert "endpoint" in targets and len(targets) >= 2, events
    for target in targets:
        mine = [(e["from_version"], e["to_version"], e["trigger"], e["ok"]) for e in events if e["target"] == target]
        assert mine == [(2, 1, "rejection", True), (1, 2, "approval", True), (None, 1, "approval", True)], target
    assert all(e["event_id"] and e["smoke"] == "passed" and e["stage"] == "default" for e in events), events
    served = json.loads(cli(home, "history", "--at", between, "--json"))["targets"]
    assert {name: row["version"] for name, row in served.items()} == {target: 1 for target in targets}
    endpoint_only = json.loads(cli(home, "history", "--target", "endpoint", "--since", between, "--json"))["events"]
    assert [(e["from_version"], e["to_version"]) for e in endpoint_only] == [(2, 1), (1, 2)]
    text = cli(home, "history")
    assert "endpoint: v2 -> v1 (rejection" in text and "smoke passed" in text, text
