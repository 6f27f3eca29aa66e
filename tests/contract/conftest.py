"""Contract-test fixtures: one moto HTTP server per session, reset before every test that uses it."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """The base URL of moto's real HTTP server on loopback (an ephemeral port)."""
    from moto.server import ThreadedMotoServer

    from tests.support.lambda_aws import install as install_lambda
    from tests.support.moto_sagemaker import install

    install()  # UpdateEndpoint and friends, before the server starts (tests/support/moto_sagemaker.py)
    from tests.support import moto_cloudformation

    moto_cloudformation.install()  # CloudFormation models and rollback moto lacks (tests/support/moto_cloudformation.py)
    install_lambda()  # PublishVersion's shared code fixed, failing image updates (tests/support/lambda_aws.py)
    from tests.support.moto_batch import install as install_batch

    install_batch()  # transform jobs that run the model, failing schedule updates (tests/support/moto_batch.py)
    from tests.support.moto_cloudwatch import install as install_cloudwatch

    install_cloudwatch()  # percentiles in GetMetricData (tests/support/moto_cloudwatch.py)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_endpoint(moto_server: str) -> str:
    """The moto server's URL, after wiping every resource the previous test left there."""
    from tests.support.lambda_aws import FAKE_LAMBDA
    from tests.support.moto_batch import FAKE_BATCH
    from tests.support.moto_sagemaker import FAKE

    FAKE.reset()
    FAKE_LAMBDA.reset()
    FAKE_BATCH.reset()
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    return moto_server


def aws_client(service: str, endpoint: str):
    """A boto3 client for moto: fake credentials, no retries (moto answers 500 for what it lacks)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def sagemaker_client(moto_endpoint: str):
    return aws_client("sagemaker", moto_endpoint)


@pytest.fixture(scope="session")
def lambda_registry(tmp_path_factory):
    """A real OCI registry on loopback (docker-registry) standing in for ECR's registry API, for the Lambda
    target's AWS adapter (moto serves ECR's API, not the registry's)."""
    from tests.support.registry import require_tools, running_registry

    require_tools()
    with running_registry(tmp_path_factory.mktemp("lambda-registry")) as registry:
        yield registry


# (mode, target kind): every deploy target adapter runs the endpoint contract and the scenario suites
DEPLOY_WORLDS = [("local", "endpoint"), ("aws", "endpoint"), ("local", "lambda"), ("aws", "lambda"),
                 ("local", "batch"), ("aws", "batch"),
                 ("local-staged", "endpoint"), ("aws-staged", "endpoint")]
# the staged worlds: production of [stages] staging (approval), production (promotion); issue 21
# "aws-staged-lambda": each stage's Lambda (0053); "aws-cross-account-lambda": production's in another account (0056)
STAGED_WORLDS = ["local-staged", "aws-staged", "aws-staged-lambda", "aws-cross-account-lambda"]


def only_target(kind: str, monkeypatch) -> None:
    """Enable the target `kind` alone: GREENLIGHT_<KIND>_ENABLED for every target section of the config
    (the environment, so worker processes of the concurrency scenario inherit it)."""
    from deploy.config import ENV_FIELDS

    for variable, path in ENV_FIELDS.items():
        if path[-1] == "enabled":
            monkeypatch.setenv(variable, "true" if path[0] == kind else "false")


@pytest.fixture(params=DEPLOY_WORLDS, ids=[f"{mode}-{kind}" for mode, kind in DEPLOY_WORLDS])
def deploy_env(request, tmp_path, models, monkeypatch):
    """One deployment world per adapter (tests/support/deploy_env.py); the same suites run on each."""
    from tests.support.deploy_env import LocalDeployEnv

    mode, kind = request.param
    only_target(kind, monkeypatch)
    if (mode, kind) == ("local", "batch"):
        from tests.support.deploy_env_batch import LocalBatchDeployEnv

        env = LocalBatchDeployEnv(tmp_path / "home", models, monkeypatch)
    elif (mode, kind) == ("aws", "batch"):
        from tests.support.deploy_env import GROUP
        from tests.support.deploy_env_batch import AwsBatchDeployEnv

        env = AwsBatchDeployEnv(request.getfixturevalue("moto_endpoint"), tmp_path / "home", models, monkeypatch, GROUP)
    elif mode == "local":
        env = LocalDeployEnv(tmp_path / "home", models, monkeypatch, kind=kind)
    elif mode == "local-staged":
        from tests.support.deploy_env_staged import LocalStagedDeployEnv

        env = LocalStagedDeployEnv(tmp_path / "home", models, monkeypatch)
    elif mode == "aws-staged":
        from tests.support.deploy_env import GROUP
        from tests.support.deploy_env_staged import AwsStagedDeployEnv

        env = AwsStagedDeployEnv(request.getfixturevalue("moto_endpoint"), tmp_path / "home", models, monkeypatch, GROUP)
    elif (mode, kind) == ("aws", "lambda"):
        from tests.support.deploy_env import GROUP
        from tests.support.deploy_env_lambda import AwsLambdaDeployEnv

        env = AwsLambdaDeployEnv(request.getfixturevalue("moto_endpoint"), request.getfixturevalue("lambda_registry").url,
                                 tmp_path / "home", models, monkeypatch, GROUP)
    elif mode == "aws":
        from tests.support.deploy_env import GROUP
        from tests.support.deploy_env_aws import AwsDeployEnv

        env = AwsDeployEnv(request.getfixturevalue("moto_endpoint"), tmp_path / "home", models, monkeypatch, GROUP,
                           kind=kind)
    else:
        raise ValueError(request.param)
    try:
        yield env
    finally:
        env.close()


@pytest.fixture(params=STAGED_WORLDS)
def staged_env(request, tmp_path, models, monkeypatch):
    """The staged worlds alone (tests/support/deploy_env_staged.py), for the scenarios that span stages."""
    only_target("lambda" if request.param.endswith("-lambda") else "endpoint", monkeypatch)
    if request.param == "local-staged":
        from tests.support.deploy_env_staged import LocalStagedDeployEnv

        env = LocalStagedDeployEnv(tmp_path / "home", models, monkeypatch)
    elif request.param == "aws-staged-lambda":
        from tests.support.deploy_env import GROUP
        from tests.support.deploy_env_staged import AwsStagedLambdaDeployEnv

        env = AwsStagedLambdaDeployEnv(request.getfixturevalue("moto_endpoint"),
                                       request.getfixturevalue("lambda_registry").url, tmp_path / "home", models,
                                       monkeypatch, GROUP)
    elif request.param == "aws-cross-account-lambda":
        from tests.support.deploy_env import GROUP
        from tests.support.deploy_env_cross_account import AwsCrossAccountLambdaDeployEnv

        env = AwsCrossAccountLambdaDeployEnv(request.getfixturevalue("moto_endpoint"),
                                             request.getfixturevalue("lambda_registry").url, tmp_path / "home",
                                             models, monkeypatch, GROUP)
    else:
        from tests.support.deploy_env import GROUP
        from tests.support.deploy_env_staged import AwsStagedDeployEnv

        env = AwsStagedDeployEnv(request.getfixturevalue("moto_endpoint"), tmp_path / "home", models, monkeypatch, GROUP)
    try:
        yield env
    finally:
        env.close()
