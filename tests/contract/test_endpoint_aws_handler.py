"""The approval Lambda's entry point on AWS, end to end against moto's HTTP server.

`deploy.handler.lambda_handler` runs in a fresh interpreter, configured only by environment variables
(as its stack configures it; AWS_ENDPOINT_URL points at moto), on the canned approval event rewritten
to this test's group, account and region: its cold start builds the aws Workspace, the SageMaker
endpoint target, the DynamoDB lease and status store, and the reconcile deploys the Approved version.
Its import path must stay small: no SageMaker SDK, pandas or scikit-learn in sys.modules afterwards.
moto is extended in this process (tests/support/moto_sagemaker.py): UpdateEndpoint, and an
InvokeEndpoint that answers as the deployed model package would (here: the recorded predictions).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.engine.smoke import SMOKE_KEY
from greenlight.errors import ConfigurationError
from greenlight.registry import ApprovalStatus, SageMakerModelRegistry
from tests.contract.conftest import aws_client
from tests.support.deploy_env import canned_event
from tests.support.deploy_env_aws import ACCOUNT, BUCKET, REGION, TABLE, aws_environment, create_state_table
from tests.support.moto_sagemaker import FAKE

ROOT = Path(__file__).resolve().parents[2]
GROUP = "handler-models"
SMOKE = {"format": "greenlight-smoke/1", "content_type": "text/csv", "body": "0.1,0.2\n0.3,0.4\n",
         "predictions": [151.0, 75.25]}

RUN = r"""
import json, sys, types
import deploy.handler
event = json.loads(sys.argv[1])
context = types.SimpleNamespace(aws_request_id="req-1",
                                invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:approval")
result = deploy.handler.lambda_handler(event, context)
heavy = sorted(m for m in ("sagemaker", "pandas", "sklearn") if m in sys.modules)
print(json.dumps({"result": result, "heavy": heavy}))
"""


@pytest.fixture
def approved(moto_endpoint):
    """v1 of GROUP registered and Approved, its smoke data in S3, the state table; -> (moto URL, v1)."""
    aws_client("s3", moto_endpoint).create_bucket(Bucket=BUCKET)
    aws_client("s3", moto_endpoint).put_object(Bucket=BUCKET, Key="v1/smoke.json", Body=json.dumps(SMOKE).encode())
    create_state_table(aws_client("dynamodb", moto_endpoint))
    registry = SageMakerModelRegistry(aws_client("sagemaker", moto_endpoint))
    v1 = registry.create_model_package({
        "ModelPackageGroupName": GROUP,
        "InferenceSpecification": {"Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": f"s3://{BUCKET}/v1/m.tar.gz"}],
                                   "SupportedContentTypes": ["text/csv"],
                                   "SupportedResponseMIMETypes": ["application/json"]},
        "CustomerMetadataProperties": {SMOKE_KEY: f"s3://{BUCKET}/v1/smoke.json"}})
    registry.update_status(GROUP, v1.version, ApprovalStatus.APPROVED)
    FAKE.answer(v1.arn, json.dumps({"predictions": SMOKE["predictions"]}))
    return moto_endpoint, v1


def lambda_environment(moto_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENLIGHT_"))}
    return {**env, **aws_environment(moto_url), "GREENLIGHT_GROUP": GROUP}


def test_the_lambda_handler_deploys_an_approval_from_a_cold_start_without_heavy_imports(approved, tmp_path):
    moto_url, v1 = approved
    event = canned_event(GROUP, v1.version, "Approved", v1.arn, ACCOUNT, REGION)
    proc = subprocess.run([sys.executable, "-c", RUN, json.dumps(event)], cwd=tmp_path, env=lambda_environment(moto_url),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], f"the handler's import path pulled in {out['heavy']}"
    result = out["result"]
    assert result["status"] == "reconciled" and result["ok"], result
    [endpoint] = result["report"]["results"]
    assert (endpoint["action"], endpoint["desired"], endpoint["ok"]) == ("deploy", 1, True)
    assert ("smoke test passed at verification endpoint handler-models-verify; passed again at endpoint "
            "handler-models after the switch") in endpoint["message"]
    sm = aws_client("sagemaker", moto_url)
    assert sm.describe_endpoint(EndpointName=GROUP)["EndpointStatus"] == "InService"
    status = aws_client("dynamodb", moto_url).get_item(TableName=TABLE, Key={"pk": {"S": f"status#{GROUP}"}})
    assert json.loads(status["Item"]["report"]["S"])["results"][0]["action"] == "deploy"
    logs = [json.loads(line) for line in proc.stdout.splitlines()[:-1] if line.startswith("{")]
    assert logs and all({"level", "message"} <= set(entry) for entry in logs), "the handler logs JSON lines"


def test_the_lambda_handler_hands_a_long_wait_over_within_its_remaining_time(approved, tmp_path, monkeypatch, capsys):
    """GIVEN an invocation with 5 s left (context.get_remaining_time_in_millis) and an endpoint that stays
    Creating WHEN the handler reconciles THEN it returns without sleeping (a 10 s poll would outlast the
    deadline) with the endpoint in progress, its intent kept for the next resync, and the lease released."""
    moto_url, v1 = approved
    FAKE.settle_after(3)
    event = canned_event(GROUP, v1.version, "Approved", v1.arn, ACCOUNT, REGION)
    run = RUN.replace('invoked_function_arn=', 'get_remaining_time_in_millis=lambda: 5000, invoked_function_arn=')
    proc = subprocess.run([sys.executable, "-c", run, json.dumps(event)], cwd=tmp_path, env=lambda_environment(moto_url),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])["result"]
    [endpoint] = result["report"]["results"]
    assert result["ok"] and endpoint["in_progress"], endpoint
    assert endpoint["message"].startswith("in progress: probing v1 on endpoint; previous nothing, waiting for endpoint "
                                          "handler-models-verify to leave Creating")
    dynamodb = aws_client("dynamodb", moto_url)
    intent = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"intent#{GROUP}#endpoint"}})["Item"]
    assert json.loads(intent["intent"]["S"])["waiting"].startswith("endpoint handler-models-verify to leave Creating")
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"lease#{GROUP}"}})
    # greenlight status says so (in progress, not an interrupted deployment)
    from greenlight.cli import main

    for name, value in aws_environment(moto_url).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["status", "--target", "aws", "--group", GROUP]) == 0
    out = capsys.readouterr().out
    assert ("endpoint: in progress (probing v1 on endpoint; previous nothing, waiting for endpoint handler-models-verify "
            "to leave Creating") in out and "interrupted" not in out


def test_an_event_for_another_account_is_ignored_by_the_lambda(approved, tmp_path):
    moto_url, v1 = approved
    event = canned_event(GROUP, v1.version, "Approved", v1.arn, "999999999999", REGION)
    proc = subprocess.run([sys.executable, "-c", RUN, json.dumps(event)], cwd=tmp_path, env=lambda_environment(moto_url),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])["result"]
    assert result["status"] == "ignored" and "999999999999" in result["reason"]
    assert aws_client("sagemaker", moto_url).list_endpoints()["Endpoints"] == []


@pytest.mark.parametrize("unset, named", [("GREENLIGHT_STATE_TABLE", "GREENLIGHT_STATE_TABLE"),
                                          ("GREENLIGHT_ENDPOINT_ROLE_ARN", "GREENLIGHT_ENDPOINT_ROLE_ARN")])
def test_the_aws_composition_needs_a_state_table_and_a_role(moto_endpoint, monkeypatch, unset, named):
    from greenlight.workspace import Workspace

    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(unset)
    ws = Workspace.open("aws")
    with pytest.raises(ConfigurationError, match=named):
        ws.reconciler(ws.deploy_config(group=GROUP))


def test_without_the_endpoint_no_role_is_needed(moto_endpoint, monkeypatch):
    from deploy.engine.aws_state import DynamoLease, DynamoStatusStore
    from greenlight.workspace import Workspace

    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GREENLIGHT_ENDPOINT_ROLE_ARN")
    monkeypatch.setenv("GREENLIGHT_ENDPOINT_ENABLED", "false")
    ws = Workspace.open("aws")
    reconciler = ws.reconciler(ws.deploy_config(group=GROUP))
    assert reconciler.targets == []
    assert isinstance(reconciler._lock, DynamoLease) and isinstance(reconciler.status, DynamoStatusStore)


def test_deploy_and_status_on_aws_through_the_cli(approved, monkeypatch, capsys):
    from greenlight.cli import main

    moto_url, _ = approved
    for name, value in aws_environment(moto_url).items():
        monkeypatch.setenv(name, value)
    assert main(["deploy", "--target", "aws", "--group", GROUP, "--dry-run"]) == 0
    assert "would deploy" in capsys.readouterr().out
    assert aws_client("sagemaker", moto_url).list_endpoints()["Endpoints"] == []
    assert main(["deploy", "--target", "aws", "--group", GROUP]) == 0
    assert "nothing -> v1 (smoke test passed at verification endpoint handler-models-verify; passed again at " \
        "endpoint handler-models after the switch)" in capsys.readouterr().out
    assert main(["status", "--target", "aws", "--group", GROUP, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    [row] = status["targets"]
    assert (row["running"], row["desired"], row["drift"], row["detail"]["status"]) == (1, 1, False, "InService")
    assert status["last_reconcile"] and status["last_failure"] is None
