"""One serving error contract: the SageMaker entry point, the Lambda handler and the local endpoint
answer the same bad request with the same status and the same JSON body (src/serving_contract.py); boto3's
invoke_endpoint against the local endpoint gets it as ModelError's OriginalStatusCode and OriginalMessage.

GIVEN one trained model served three ways (transform_fn with the serving toolkit's Response faked to
its signature, the Lambda handler on a Function URL event, the local endpoint over real HTTP) and
the same body limit everywhere, WHEN each bad request of the table is sent to all three, THEN the
three answers are identical, status and body.
"""

from __future__ import annotations

import base64
import json
import sys
import types

import boto3
import pytest

from deploy.endpoint.loader import load_version
from deploy.endpoint.runtime_api import RuntimeIdentity
from deploy.endpoint.sources import FixedModelSource
from tests.conftest import imported_src_modules
from tests.support.endpoints import ROW, Client, Switch, serving

LIMIT = 4096  # the body limit given to all three fronts
TOO_BIG = ("1," * 3000).encode()

# (name, body, content type, accept, expected status, expected error code)
BAD_REQUESTS = [
    ("wrong feature count", b"1,2,3", "text/csv", "application/json", 400, "wrong_feature_count"),
    ("not a number", ROW.replace("0.0380759", "abc").encode(), "text/csv", "application/json", 400, "non_numeric"),
    ("ragged rows", (ROW + "\n1,2\n").encode(), "text/csv", "application/json", 400, "wrong_feature_count"),
    ("malformed JSON", b'{"instances": [1, 2', "application/json", "application/json", 400, "malformed_json"),
    ("empty body", b"", "text/csv", "application/json", 400, "empty_body"),
    ("unsupported content type", ROW.encode(), "application/xml", "application/json", 415,
     "unsupported_content_type"),
    ("unsupported accept", ROW.encode(), "text/csv", "image/png", 406, "unsupported_accept"),
    ("over the body limit", TOO_BIG, "text/csv", "application/json", 413, "payload_too_large"),
    ("nested 2,000 levels deep", b"[" * 2000 + b"]" * 2000, "application/json", "application/json", 400,
     "malformed_json"),
    ("a row nested 65 levels deep among rows", b"[[" + ROW.encode() + b"]," + b"[" * 64 + b"1" + b"]" * 65,
     "application/json", "application/json", 400, "malformed_json"),
]


@pytest.fixture(scope="module")
def fronts(models, tmp_path_factory):
    """Three callables (body, content type, accept) -> (status, JSON body) over one model version."""
    source = FixedModelSource(models["a"], tmp_path_factory.mktemp("cache"))
    loaded = load_version(source.target.version, source.target.model_dir)
    with imported_src_modules(("lambda_function", "sagemaker_entry", "inference")) as src:
        def lambda_front(body, content_type, accept):
            event = {"rawPath": "/invocations", "requestContext": {"http": {"method": "POST", "path": "/invocations"}},
                     "headers": {"content-type": content_type, "accept": accept},
                     "body": base64.b64encode(body).decode(), "isBase64Encoded": True}
            response = src.lambda_function.handle(event, src.inference.model_fn(str(models["a"])), max_bytes=LIMIT)
            return response["statusCode"], json.loads(response["body"])

        def sagemaker_front(body, content_type, accept):
            response = src.sagemaker_entry.transform_fn(loaded.model, body, content_type, accept)
            return response.status, json.loads(response.response)

        with serving(Switch(source.target)) as endpoint:
            endpoint.httpd.max_body_bytes = LIMIT
            endpoint.httpd.runtime = RuntimeIdentity(frozenset({"greenlight-models"}))
            client = Client(endpoint.url)
            runtime = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=endpoint.url,
                                   aws_access_key_id="testing", aws_secret_access_key="testing")

            def endpoint_front(body, content_type, accept):
                status, _, data = client.invoke(body, content_type, accept)
                return status, json.loads(data)

            def runtime_front(body, content_type, accept):
                """boto3's invoke_endpoint: the container's answer as ModelError's original status and message."""
                try:
                    runtime.invoke_endpoint(EndpointName="greenlight-models", Body=body, ContentType=content_type,
                                            Accept=accept)
                except runtime.exceptions.ModelError as exc:
                    return exc.response["OriginalStatusCode"], json.loads(exc.response["OriginalMessage"])
                raise AssertionError("invoke_endpoint answered a bad request")

            yield {"lambda": lambda_front, "sagemaker": sagemaker_front, "endpoint": endpoint_front,
                   "runtime": runtime_front}
            client.close()


@pytest.fixture
def serving_toolkit(monkeypatch):
    """sagemaker_containers' worker.Response, faked with its signature (the real one needs Flask 1.1)."""
    class Response:
        def __init__(self, response=None, accept=None, status=200, headers=None, mimetype=None):
            self.response, self.status, self.mimetype = response, status, mimetype

    worker = types.ModuleType("sagemaker_containers.beta.framework.worker")
    worker.Response = Response
    framework = types.ModuleType("sagemaker_containers.beta.framework")
    framework.worker = worker
    for name, module in {"sagemaker_containers": types.ModuleType("sagemaker_containers"),
                         "sagemaker_containers.beta": types.ModuleType("sagemaker_containers.beta"),
                         "sagemaker_containers.beta.framework": framework,
                         "sagemaker_containers.beta.framework.worker": worker}.items():
        monkeypatch.setitem(sys.modules, name, module)


@pytest.mark.parametrize("name, body, content_type, accept, status, code", BAD_REQUESTS,
                         ids=[r[0] for r in BAD_REQUESTS])
def test_the_same_bad_request_gets_the_same_answer_everywhere(fronts, serving_toolkit, monkeypatch,
                                                              name, body, content_type, accept, status, code):
    monkeypatch.setenv("GREENLIGHT_MAX_PAYLOAD_BYTES", str(LIMIT))  # what the SageMaker container reads
    answers = {front: call(body, content_type, accept) for front, call in fronts.items()}
    assert answers["endpoint"][0] == status and answers["endpoint"][1]["error"] == code
    assert set(answers["endpoint"][1]) == {"error", "message", "row", "column"}
    assert answers["lambda"] == answers["endpoint"], name
    assert answers["sagemaker"] == answers["endpoint"], name
    assert answers["runtime"] == answers["endpoint"], name


def test_unknown_routes_and_no_model_have_the_same_shape_and_codes(models, tmp_path):
    with imported_src_modules(("lambda_function",)) as src:
        def lambda_answer(path, model):
            event = {"rawPath": path, "requestContext": {"http": {"method": "POST", "path": path}}, "body": ROW}
            response = src.lambda_function.handle(event, model, load_error="no model loaded")
            return response["statusCode"], json.loads(response["body"])

        with serving(Switch(None)) as endpoint:
            client = Client(endpoint.url)
            status, _, data = client.request("POST", "/nowhere", ROW.encode())
            assert (status, json.loads(data)["error"]) == lambda_answer("/nowhere", None)[:1] + ("not_found",)
            status, _, data = client.invoke(ROW.encode())
            lambda_status, lambda_body = lambda_answer("/invocations", None)
            assert (status, json.loads(data)["error"]) == (lambda_status, lambda_body["error"]) == (
                503, "model_unavailable")
            assert set(json.loads(data)) == set(lambda_body) == {"error", "message", "row", "column"}
            client.close()


def test_the_endpoint_body_limit_flag_wins_over_the_serving_codes_default(models, tmp_path):
    # GIVEN an endpoint whose body limit is raised above the serving code's 4 MiB default
    big_rows = ((ROW + "\n") * (5 * 1024 * 1024 // (len(ROW) + 1) + 1)).encode()
    assert len(big_rows) > 5 * 1024 * 1024
    source = FixedModelSource(models["a"], tmp_path / "cache")
    with serving(Switch(source.target)) as endpoint:
        endpoint.httpd.max_body_bytes = 16 * 1024 * 1024
        client = Client(endpoint.url)
        # WHEN a 5 MiB body arrives THEN it is served, not refused with 413
        status, _, data = client.invoke(big_rows, "text/csv", "application/json")
        assert status == 200, data[:300]
        assert len(json.loads(data)["predictions"]) == big_rows.count(b"\n")
        client.close()


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_json_is_a_400_on_the_local_endpoint(models, tmp_path, depth):
    """issue 18 must-show: 10,000-level nested JSON to the local endpoint answers 4xx (it was a 500, RecursionError),
    and the endpoint goes on serving."""
    source = FixedModelSource(models["a"], tmp_path / "cache")
    with serving(Switch(source.target)) as endpoint:
        client = Client(endpoint.url)
        for body in (b"[" * depth + b"]" * depth, b"[1," * depth + b"1" + b"]" * depth, b"[" * depth):
            status, _, data = client.invoke(body, "application/json", "application/json")
            assert (status, json.loads(data)["error"]) == (400, "malformed_json"), data[:300]
        assert client.invoke(ROW.encode(), "text/csv", "application/json")[0] == 200
        client.close()


def test_deeply_nested_json_is_a_400_in_the_lambda_and_sagemaker_entry_points(models, serving_toolkit, monkeypatch):
    """The same 10,000-level body through the Lambda handler and SageMaker's transform_fn, at their default limits."""
    monkeypatch.delenv("GREENLIGHT_MAX_PAYLOAD_BYTES", raising=False)
    deep = b"[" * 10_000 + b"]" * 10_000
    with imported_src_modules(("lambda_function", "sagemaker_entry", "inference")) as src:
        model = src.inference.model_fn(str(models["a"]))
        event = {"rawPath": "/invocations", "requestContext": {"http": {"method": "POST", "path": "/invocations"}},
                 "headers": {"content-type": "application/json"}, "body": deep.decode()}
        response = src.lambda_function.handle(event, model)
        assert (response["statusCode"], json.loads(response["body"])["error"]) == (400, "malformed_json")
        answer = src.sagemaker_entry.transform_fn(model, deep, "application/json", "application/json")
        assert (answer.status, json.loads(answer.response)["error"]) == (400, "malformed_json")
