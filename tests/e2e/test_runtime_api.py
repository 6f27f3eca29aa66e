"""The SageMaker Runtime API on the local endpoint, through an unmodified boto3 `sagemaker-runtime` client.

GIVEN a local endpoint serving model version a under the endpoint name the engine derives for its group,
WHEN boto3's own client calls invoke_endpoint with `endpoint_url` set to the server, THEN the prediction is
the container route's, and every error comes back as the exception class and fields botocore builds from
SageMaker's answers: ModelError (OriginalStatusCode, OriginalMessage) for the model's 4xx, ValidationError
for an unknown name or variant, ModelNotReadyException while nothing is deployed.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.config import Config

from deploy.endpoint.runtime_api import RuntimeIdentity
from deploy.endpoint.server import Endpoint
from deploy.endpoint.slot import ModelSlot
from deploy.endpoint.sources import FixedModelSource
from tests.support.endpoints import ROW, Client, Switch

NAME = "greenlight-models"
IDENTITY = RuntimeIdentity(frozenset({NAME}), "000000000000", "local")


def runtime_client(url: str, **config):
    """boto3's client as an application builds it; only the endpoint URL points at the local server."""
    return boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=url,
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(**config) if config else None)


@pytest.fixture(scope="module")
def endpoint(models, tmp_path_factory):
    source = FixedModelSource(models["a"], tmp_path_factory.mktemp("cache"))
    with Endpoint(ModelSlot(Switch(source.target)), "127.0.0.1", 0, poll_seconds=3600.0,
                  runtime=IDENTITY) as served:
        yield served


def test_invoke_endpoint_answers_what_the_container_route_answers(endpoint):
    answer = runtime_client(endpoint.url).invoke_endpoint(EndpointName=NAME, Body=ROW.encode(), ContentType="text/csv",
                                                          Accept="application/json", CustomAttributes="trace=1")
    client = Client(endpoint.url)
    status, _, container = client.invoke(ROW.encode(), "text/csv", "application/json")
    client.close()
    assert status == 200
    assert answer["Body"].read() == container
    assert answer["ContentType"] == "application/json"
    assert answer["InvokedProductionVariant"] == "AllTraffic"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_a_wrong_width_row_is_a_model_error_with_the_containers_400(endpoint):
    client = runtime_client(endpoint.url)
    with pytest.raises(client.exceptions.ModelError) as raised:
        client.invoke_endpoint(EndpointName=NAME, Body=b"1,2,3", ContentType="text/csv")
    response = raised.value.response
    assert response["Error"]["Code"] == "ModelError"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert response["OriginalStatusCode"] == 400
    assert json.loads(response["OriginalMessage"])["error"] == "wrong_feature_count"
    assert response["Error"]["Message"].startswith("Received client error (400) from primary with message")
    assert response["LogStreamArn"].endswith(f"/aws/sagemaker/Endpoints/{NAME}")


def test_an_unknown_endpoint_name_is_a_validation_error(endpoint):
    client = runtime_client(endpoint.url)
    with pytest.raises(client.exceptions.ValidationError) as raised:
        client.invoke_endpoint(EndpointName="no-such-endpoint", Body=ROW.encode(), ContentType="text/csv")
    assert raised.value.response["Error"]["Message"] == "Endpoint no-such-endpoint of account 000000000000 not found."
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_variant_the_endpoint_lacks_is_a_validation_error(endpoint):
    client = runtime_client(endpoint.url)
    with pytest.raises(client.exceptions.ValidationError, match="variant named Blue"):
        client.invoke_endpoint(EndpointName=NAME, Body=ROW.encode(), ContentType="text/csv", TargetVariant="Blue")
    answer = client.invoke_endpoint(EndpointName=NAME, Body=ROW.encode(), ContentType="text/csv",
                                    TargetVariant="AllTraffic")
    assert answer["InvokedProductionVariant"] == "AllTraffic"


def test_nothing_deployed_is_model_not_ready_and_the_container_route_is_unchanged():
    with Endpoint(ModelSlot(Switch(None)), "127.0.0.1", 0, poll_seconds=3600.0, runtime=IDENTITY) as served:
        client = runtime_client(served.url)
        with pytest.raises(client.exceptions.ModelNotReadyException) as raised:
            client.invoke_endpoint(EndpointName=NAME, Body=ROW.encode(), ContentType="text/csv")
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert raised.value.response["Error"]["Message"].startswith(
            f"Endpoint {NAME} of account 000000000000 is not in service: ")
        http = Client(served.url)
        status, _, body = http.invoke(ROW.encode())
        http.close()
        assert (status, json.loads(body)["error"]) == (503, "model_unavailable")
