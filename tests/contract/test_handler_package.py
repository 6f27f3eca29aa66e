"""The handler package `greenlight stack deploy` builds runs from a clean directory against moto's HTTP server.

The package (deploy/package.py, built here for this interpreter's Python and platform, since the Lambda
build targets python3.12) is unzipped into an empty folder; boto3 and its dependencies, which the Lambda
runtime provides, are copied into another; a child `python -I -S` with only those two folders on
sys.path handles the canned approval event (tests/events/), configured by the environment the stack
gives it, and deploys the Approved version. Every module it loaded comes from those folders or the
standard library. moto is extended in this process (tests/support/moto_sagemaker.py): UpdateEndpoint,
and an InvokeEndpoint that answers as the model package would.
"""

from __future__ import annotations

import json
import subprocess
import sysconfig

import pytest

from tests.contract.conftest import aws_client
from tests.contract.test_endpoint_aws_handler import GROUP, approved, lambda_environment  # noqa: F401 (fixture)
from tests.support.deploy_env import canned_event
from tests.support.deploy_env_aws import ACCOUNT, REGION
from tests.support.handler_package import clean_handler, isolated_command

# The module's fixture builds the package with pip and each test runs it in a clean interpreter: make test-slow.
pytestmark = pytest.mark.slow

RUN = r"""
import json, sys, types
import deploy.handler
event = json.loads(sys.argv[1])
context = types.SimpleNamespace(aws_request_id="req-1",
                                invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:approval")
result = deploy.handler.lambda_handler(event, context)
files = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
print(json.dumps({"result": result, "files": files, "path": sys.path}))
"""


@pytest.fixture(scope="module")
def handler(tmp_path_factory):
    return clean_handler(tmp_path_factory.mktemp("handler"))


def test_the_package_holds_the_handler_and_its_dependencies_but_not_boto3(handler):
    top = {p.name for p in handler.code.iterdir()}
    assert {"deploy", "greenlight", "src", "pydantic", "aws_lambda_powertools"} <= top
    assert not top & {"boto3", "botocore", "sagemaker", "pandas", "sklearn", "numpy"}, top
    assert (handler.code / "deploy" / "handler.py").is_file()


def test_the_package_handles_an_approval_from_a_clean_directory(handler, approved, tmp_path):  # noqa: F811
    moto_url, v1 = approved
    event = canned_event(GROUP, v1.version, "Approved", v1.arn, ACCOUNT, REGION)
    proc = subprocess.run(isolated_command(handler, RUN, json.dumps(event)), cwd=tmp_path,
                          env=lambda_environment(moto_url), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["result"]["status"] == "reconciled" and out["result"]["ok"], out["result"]
    [endpoint] = out["result"]["report"]["results"]
    assert (endpoint["action"], endpoint["desired"], endpoint["ok"]) == ("deploy", 1, True)
    assert aws_client("sagemaker", moto_url).describe_endpoint(EndpointName=GROUP)["EndpointStatus"] == "InService"
    stdlib = sysconfig.get_paths()["stdlib"]
    allowed = (str(handler.code), str(handler.runtime), stdlib)
    strays = [f for f in out["files"] if not f.startswith(allowed)]
    assert strays == [], f"modules loaded from outside the package, boto3's folder and the stdlib: {strays[:5]}"
    assert any(f.startswith(str(handler.code) + "/pydantic") for f in out["files"])
    assert "site-packages" not in " ".join(out["path"])


def test_the_package_keeps_the_batch_schedule_from_a_clean_directory(handler, approved, tmp_path):  # noqa: F811
    # The batch target's import path (the schedule, the request check with the runtime's botocore) from the
    # package alone. This version's model is not a real one, so the smoke transform job is off here
    # (tests/contract/test_batch_target.py runs it); the Model and the job request are still checked.
    from tests.support.deploy_env_batch import aws_batch_environment

    moto_url, v1 = approved
    event = canned_event(GROUP, v1.version, "Approved", v1.arn, ACCOUNT, REGION)
    env = {**lambda_environment(moto_url), **aws_batch_environment(), "GREENLIGHT_BATCH_ENABLED": "true",
           "GREENLIGHT_BATCH_SMOKE_TRANSFORM": "false"}
    proc = subprocess.run(isolated_command(handler, RUN, json.dumps(event)), cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["result"]["ok"], out["result"]
    assert [(r["target"], r["action"], r["ok"]) for r in out["result"]["report"]["results"]] == [
        ("endpoint", "deploy", True), ("batch", "deploy", True)]
    schedule = aws_client("scheduler", moto_url).get_schedule(Name=f"{GROUP}-batch")
    assert schedule["State"] == "ENABLED" and json.loads(schedule["Target"]["Input"])["ModelName"].startswith(
        f"{GROUP}-v1-m")
    allowed = (str(handler.code), str(handler.runtime), sysconfig.get_paths()["stdlib"])
    assert [f for f in out["files"] if not f.startswith(allowed)] == []
