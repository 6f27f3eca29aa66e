"""src/lambda_function.py on canned Function URL / HTTP API (payload 2.0) events from tests/events/."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import imported_src_modules
from sklearn.datasets import load_diabetes

from greenlight.data import default_dataset_csv

SRC = Path(__file__).resolve().parents[2] / "src"
EVENTS = Path(__file__).resolve().parents[1] / "events"
SERVING = ("inference", "payload", "compact_forest", "lambda_function", "train")


@pytest.fixture(scope="module")
def mods():
    with imported_src_modules(SERVING) as modules:
        yield modules


@pytest.fixture(scope="module")
def model_dir(mods, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lambda")
    lines = default_dataset_csv().decode().splitlines()
    (tmp / "train.csv").write_text("\n".join(",".join([ln.split(",")[-1], *ln.split(",")[:-1]]) for ln in lines))
    assert mods.train.main(["--train", str(tmp / "train.csv"), "--model-dir", str(tmp / "model"),
                            "--n_estimators", "20", "--n_jobs", "1", "--code-dir", str(SRC)]) == 0
    return tmp / "model"


@pytest.fixture
def lam(mods, model_dir, monkeypatch):
    """The handler module with a fresh execution environment pointed at the test model."""
    monkeypatch.setenv("GREENLIGHT_MODEL_DIR", str(model_dir))
    monkeypatch.delenv("GREENLIGHT_MAX_PAYLOAD_BYTES", raising=False)
    mods.lambda_function._loaded.clear()
    yield mods.lambda_function
    mods.lambda_function._loaded.clear()


@pytest.fixture(scope="module")
def expected(model_dir):
    import joblib

    sk = joblib.load(model_dir / "model.joblib")
    return sk.predict(load_diabetes().data[:2])


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def invoke(lam, name: str) -> tuple[int, str, object]:
    response = lam.lambda_handler(event(name), None)
    assert set(response) == {"statusCode", "headers", "body", "isBase64Encoded"}
    assert response["isBase64Encoded"] is False
    body = response["body"]
    ctype = response["headers"]["content-type"]
    return response["statusCode"], ctype, json.loads(body) if ctype == "application/json" else body


def test_health_route_reports_the_model(lam, model_dir):
    status, _, body = invoke(lam, "lambda_url_health.json")
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert status == 200
    assert body["status"] == "ok" and body["predictor"] == "greenlight-forest/2"
    assert body["model_sha256"] == meta["model_sha256"] and body["forest_sha256"] == meta["forest_sha256"]
    assert body["feature_names"] == meta["feature_names"]


def test_json_body(lam, expected):
    status, _, body = invoke(lam, "lambda_url_predict_json.json")
    assert status == 200
    assert body == {"predictions": expected[:1].tolist()}


def test_base64_csv_body_answers_csv(lam, expected):
    status, ctype, body = invoke(lam, "lambda_url_predict_csv_base64.json")
    assert (status, ctype) == (200, "text/csv")
    assert [float(v) for v in body.splitlines()] == expected.tolist()


def test_http_api_base64_npy_body(lam, expected):
    status, _, body = invoke(lam, "http_api_predict_npy_base64.json")
    assert status == 200
    assert body["predictions"] == expected.tolist()


@pytest.mark.parametrize("name,status,error", [
    ("lambda_url_predict_wrong_feature_count.json", 400, "wrong_feature_count"),
    ("lambda_url_predict_bad_base64.json", 400, "bad_encoding"),
    ("lambda_url_predict_unsupported_type.json", 415, "unsupported_content_type"),
    ("lambda_url_not_found.json", 404, "not_found"),
    ("lambda_url_wrong_method.json", 405, "method_not_allowed"),
])
def test_client_errors_are_4xx_json(lam, name, status, error):
    got, ctype, body = invoke(lam, name)
    assert (got, ctype, body["error"]) == (status, "application/json", error)
    assert set(body) == {"error", "message", "row", "column"}


def test_body_limit_is_6_mib_unless_configured(lam, monkeypatch):
    ev = event("lambda_url_predict_json.json")
    row = json.loads(ev["body"])["instances"][0]
    line = ",".join(repr(v) for v in row) + "\n"
    ev["headers"]["content-type"] = "text/csv"
    ev["body"] = line * (5 * 1024 * 1024 // len(line))  # about 5 MiB: over SageMaker's 4, under Lambda's 6
    assert lam.lambda_handler(ev, None)["statusCode"] == 200
    monkeypatch.setenv("GREENLIGHT_MAX_PAYLOAD_BYTES", "1048576")
    response = lam.lambda_handler(ev, None)
    assert response["statusCode"] == 413 and json.loads(response["body"])["error"] == "payload_too_large"


def test_model_loads_once_per_execution_environment(lam, mods, monkeypatch):
    calls = []
    real = mods.inference.model_fn
    monkeypatch.setattr(mods.inference, "model_fn", lambda d: calls.append(d) or real(d))
    for _ in range(3):
        assert lam.lambda_handler(event("lambda_url_predict_json.json"), None)["statusCode"] == 200
    assert len(calls) == 1


def test_a_fault_of_ours_is_500_and_serving_continues(lam, mods, monkeypatch):
    def broken(data, model):
        raise RuntimeError("boom")

    real = mods.inference.predict_fn
    monkeypatch.setattr(mods.inference, "predict_fn", broken)
    status, _, body = invoke(lam, "lambda_url_predict_json.json")
    assert (status, body["error"]) == (500, "internal_error")
    monkeypatch.setattr(mods.inference, "predict_fn", real)
    assert invoke(lam, "lambda_url_predict_json.json")[0] == 200


def test_tampered_model_is_503_with_the_reason(lam, model_dir, tmp_path, monkeypatch):
    import shutil

    bad = tmp_path / "model"
    shutil.copytree(model_dir, bad)
    data = bytearray((bad / "forest.value.npy").read_bytes())
    data[100] ^= 0xFF
    (bad / "forest.value.npy").write_bytes(bytes(data))
    monkeypatch.setenv("GREENLIGHT_MODEL_DIR", str(bad))
    for name in ("lambda_url_health.json", "lambda_url_predict_json.json"):
        status, _, body = invoke(lam, name)
        assert (status, body["error"]) == (503, "model_unavailable")
        assert "refusing forest.value.npy" in body["message"]


def test_model_dir_resolution(lam, tmp_path):
    assert lam.model_dir({"GREENLIGHT_MODEL_DIR": "/m"}) == Path("/m")
    if not Path("/opt/ml/model").is_dir():
        assert lam.model_dir({"LAMBDA_TASK_ROOT": "/var/task"}) == Path("/var/task/model")
        assert lam.model_dir({}) == Path("/opt/ml/model")


def test_binary_body_without_base64_flag_is_text(lam):
    ev = event("lambda_url_predict_csv_base64.json")
    ev["body"] = base64.b64decode(ev["body"]).decode()
    ev["isBase64Encoded"] = False
    assert lam.lambda_handler(ev, None)["statusCode"] == 200


def test_events_are_payload_v2(lam):
    for path in sorted(EVENTS.glob("*.json")):
        ev = json.loads(path.read_text())
        if ev.get("version") != "2.0":
            continue  # other components' fixtures
        assert {"rawPath", "headers", "requestContext", "isBase64Encoded"} <= ev.keys(), path.name
        assert ev["requestContext"]["http"]["method"] in {"GET", "POST"}
        assert np.all([k == k.lower() for k in ev["headers"]])
