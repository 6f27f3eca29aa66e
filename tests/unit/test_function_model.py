"""deploy.function.model and deploy.function.events: the Lambda target's pure decisions and conversions."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from deploy.config import ENV_FIELDS, load_config
from deploy.engine.smoke import SmokeTest
from deploy.function.events import function_url_event, http_response, smoke_event, smoke_verdict
from deploy.function.model import (
    MODEL_VERSION_VARIABLE, PREDICT_THREADS_VARIABLE, VersionRecord, describe_version, function_environment,
    held_tags, image_digest, model_tags, predict_threads,
)
from deploy.engine.retention import doomed
from greenlight.errors import ConfigurationError

EVENTS = Path(__file__).resolve().parents[1] / "events"
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


# -- the function's memory decides the prediction threads ----------------------------------------------------

@pytest.mark.parametrize("memory_mb, threads", [(128, 1), (1024, 1), (1768, 1), (1769, 1), (3537, 1), (3538, 2),
                                                (5307, 3), (8845, 5), (10240, 5)])
def test_predict_threads_is_one_below_a_vcpu_and_one_per_1769_mb_above(memory_mb, threads):
    assert predict_threads(memory_mb) == threads


def test_predict_threads_refuses_no_memory():
    with pytest.raises(ValueError):
        predict_threads(0)


def test_the_environment_keeps_the_stacks_variables_and_sets_the_managed_ones():
    env = function_environment({"GREENLIGHT_MAX_PAYLOAD_BYTES": "1000", PREDICT_THREADS_VARIABLE: "8"}, 4096, "g/3")
    assert env == {"GREENLIGHT_MAX_PAYLOAD_BYTES": "1000", PREDICT_THREADS_VARIABLE: "2", MODEL_VERSION_VARIABLE: "g/3"}
    assert function_environment(None, 512, "g/1") == {PREDICT_THREADS_VARIABLE: "1", MODEL_VERSION_VARIABLE: "g/1"}


# -- the lambda section of the deployment configuration ------------------------------------------------------

def test_the_lambda_section_defaults_and_its_variables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={}, home=tmp_path)
    assert (config.lambda_.enabled, config.lambda_.alias, config.lambda_.memory_mb, config.lambda_.architecture) == (
        True, "live", 1024, "x86_64")
    assert config.function_name == config.group and config.lambda_.base_image_tag is None
    lam = {name: path for name, path in ENV_FIELDS.items() if path[0] == "lambda"}
    assert set(lam) == {f"GREENLIGHT_LAMBDA_{f.upper()}" for f in (
        "enabled", "function_name", "alias", "memory_mb", "architecture", "ecr_repository", "base_image_tag",
        "update_timeout_seconds", "retention", "traffic", "canary_percent", "linear_step_percent", "step_wait_seconds",
        "bake_seconds", "max_5xx_percent", "max_p99_ms", "min_requests", "alarms")}
    config = load_config(environ={"GREENLIGHT_LAMBDA_MEMORY_MB": "3538", "GREENLIGHT_LAMBDA_ARCHITECTURE": "arm64",
                                  "GREENLIGHT_LAMBDA_ENABLED": "false"}, home=tmp_path)
    assert (config.lambda_.memory_mb, config.lambda_.architecture, config.lambda_.enabled) == (3538, "arm64", False)
    assert predict_threads(config.lambda_.memory_mb) == 2


def test_the_lambda_section_is_read_from_a_file_as_lambda(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text('[lambda]\nfunction_name = "scorer"\necr_repository = "team/infer"\n'
                                              'base_image_tag = "base-0123"\nretention = 0\n')
    config = load_config(environ={}, home=tmp_path)
    assert (config.function_name, config.lambda_.ecr_repository, config.lambda_.base_image_tag,
            config.lambda_.retention) == ("scorer", "team/infer", "base-0123", 0)


@pytest.mark.parametrize("env, words", [
    ({"GREENLIGHT_LAMBDA_MEMORY_MB": "127"}, "lambda.memory_mb = '127' (GREENLIGHT_LAMBDA_MEMORY_MB): must be "
                                             "128-10240 MB (Lambda's memory limits)"),
    ({"GREENLIGHT_LAMBDA_MEMORY_MB": "10241"}, "must be 128-10240 MB"),
    ({"GREENLIGHT_LAMBDA_ARCHITECTURE": "sparc"}, "lambda.architecture = 'sparc' (GREENLIGHT_LAMBDA_ARCHITECTURE): "
                                                  "Input should be 'x86_64' or 'arm64'"),
    ({"GREENLIGHT_LAMBDA_ALIAS": "7"}, "lambda.alias = '7' (GREENLIGHT_LAMBDA_ALIAS): must be 1-128 letters"),
    ({"GREENLIGHT_LAMBDA_FUNCTION_NAME": "my function"}, "Lambda's function name rule"),
    ({"GREENLIGHT_LAMBDA_ECR_REPOSITORY": "Team/Infer"}, "must be an ECR repository name"),
    ({"GREENLIGHT_LAMBDA_BASE_IMAGE_TAG": "-base"}, "must be an image tag"),
    ({"GREENLIGHT_LAMBDA_UPDATE_TIMEOUT_SECONDS": "3600"}, "lambda.update_timeout_seconds = '3600'"),
    ({"GREENLIGHT_LAMBDA_RETENTION": "-1"}, "lambda.retention = '-1'"),
])
def test_a_bad_lambda_value_names_the_field_its_limit_and_its_source(tmp_path, monkeypatch, env, words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as err:
        load_config(environ=env, home=tmp_path)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_an_unknown_lambda_setting_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text("[lambda]\nmemory = 512\n")
    with pytest.raises(ConfigurationError, match=r"lambda.memory .*not a setting Greenlight knows"):
        load_config(environ={}, home=tmp_path)


# -- what a published version records ----------------------------------------------------------------------

def test_a_description_round_trips_and_foreign_ones_are_not_ours():
    text = describe_version("fraud-models", 12, DIGEST)
    assert len(text) <= 256  # Lambda's Description limit
    assert VersionRecord.parse(text) == VersionRecord("fraud-models", 12, DIGEST)
    assert VersionRecord.parse(describe_version("g", 3)) == VersionRecord("g", 3, None)
    for foreign in (None, "", "deployed by hand", "greenlight g model v0", "greenlight g model v1 image sha256:xyz"):
        assert VersionRecord.parse(foreign) is None


def test_image_digest_reads_by_digest_uris_only():
    assert image_digest(f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/greenlight-inference@{DIGEST}") == DIGEST
    assert image_digest(f"127.0.0.1:5000/repo@{DIGEST}") == DIGEST
    assert image_digest("127.0.0.1:5000/repo:g-v1") is None and image_digest(None) is None


# -- retention ---------------------------------------------------------------------------------------------

def _versions_to_prune(published: dict[int, int], protected, keep, retention: int) -> list[int]:
    """Function versions the AWS and local adapters delete: retention.doomed over version -> model version."""
    return [int(n) for n in doomed({str(n): m for n, m in published.items()}, {str(p) for p in protected}, keep,
                                   retention)]


def test_versions_to_prune_never_touch_live_previous_kept_models_or_the_newest_retained():
    published = {n: n for n in range(1, 11)}  # function version n holds model version n
    assert _versions_to_prune(published, (10, 9), {10, 9}, retention=3) == [1, 2, 3, 4, 5]
    assert _versions_to_prune(published, (4, 3), {4}, retention=2) == [1, 2, 5, 6, 7, 8]
    assert _versions_to_prune(published, (10, None), set(), retention=0) == list(range(1, 10))
    assert _versions_to_prune({1: 1, 2: 1, 3: 2}, (3, 2), {2, 1}, retention=0) == []  # model v1 runs on 2 and 1
    assert _versions_to_prune({}, (None, None), set(), retention=0) == []


def _tags_to_prune(tags: dict[str, str], group: str, running: set[str], keep: set[int], retention: int) -> list[str]:
    return doomed(model_tags(tags, group), held_tags(tags, group, running), keep, retention)


def test_tags_to_prune_never_delete_the_last_tag_of_a_running_image_nor_other_tags():
    tags = {f"g-v{n}": f"sha256:{n:064x}" for n in range(1, 8)}
    tags.update({"base-0123": "sha256:" + "ee" * 32, "other-v1": "sha256:" + "ff" * 32, "g-v2-extra": OTHER})
    assert model_tags(tags, "g") == {f"g-v{n}": n for n in range(1, 8)}  # the base image's and others' never
    running = {tags["g-v7"], tags["g-v6"], tags["g-v2"]}  # g-v2's image still runs on a kept function version
    # held: g-v7, g-v6, g-v2 (running images); kept: v7; retention 1 of the others: v5
    assert _tags_to_prune(tags, "g", running, {7}, retention=1) == ["g-v1", "g-v3", "g-v4"]
    assert _tags_to_prune(tags, "g", set(), set(), retention=10) == []
    # two tags on one running image: the older tag may go, the image stays under the newer one
    shared = {"g-v1": DIGEST, "g-v2": OTHER, "g-v3": DIGEST, "g-v4": OTHER}
    assert _tags_to_prune(shared, "g", {DIGEST, OTHER}, {4}, retention=0) == ["g-v1", "g-v2"]
    # ... unless the other tag is going too: then the newest of them is spared
    assert _tags_to_prune(shared, "g", {DIGEST}, set(), retention=0) == ["g-v1", "g-v2", "g-v4"]


# -- Function URL events and responses ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["lambda_url_health.json", "lambda_url_predict_json.json",
                                  "lambda_url_not_found.json", "lambda_url_wrong_method.json"])
def test_a_request_becomes_the_event_a_function_url_sends(name):
    canned = json.loads((EVENTS / name).read_text())
    context = canned["requestContext"]
    raw = canned.get("body", "")
    body = base64.b64decode(raw) if canned["isBase64Encoded"] else raw.encode()
    event = function_url_event(context["http"]["method"], canned["rawPath"], canned["rawQueryString"],
                               canned["headers"], body, source_ip=context["http"]["sourceIp"],
                               domain=context["domainName"], now=context["timeEpoch"] / 1000,
                               request_id=context["requestId"])
    # the canned events' `time` and `timeEpoch` disagree (two days apart); ours agree with each other
    ours = event["requestContext"]
    assert ours.pop("timeEpoch") == context.pop("timeEpoch")
    assert ours.pop("time") == "26/Nov/2026:17:00:00 +0000" and context.pop("time").endswith("/Nov/2026:17:00:00 +0000")
    assert event == canned


def test_a_binary_body_is_base64_and_text_is_not():
    npy = b"\x93NUMPY\x01\x00" + bytes(range(200, 256))
    event = function_url_event("POST", "/", "a=1&a=2&b=", [("Content-Type", "application/x-npy"),
                                                          ("X-Thing", "1"), ("x-thing", "2")], npy)
    assert event["isBase64Encoded"] and base64.b64decode(event["body"]) == npy
    assert event["headers"]["x-thing"] == "1,2" and event["queryStringParameters"] == {"a": "1,2", "b": ""}
    csv = function_url_event("POST", "/invocations", "", {"content-type": "text/csv"}, b"1,2,3")
    assert (csv["isBase64Encoded"], csv["body"], csv["rawPath"]) == (False, "1,2,3", "/invocations")
    assert "body" not in function_url_event("GET", "/health", "", {}, b"")


def test_responses_become_http_as_a_function_url_answers():
    assert http_response({"statusCode": 201, "headers": {"content-type": "text/csv"}, "body": "1\n"}) == (
        201, {"content-type": "text/csv"}, b"1\n")
    assert http_response({"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(),
                          "isBase64Encoded": True}) == (200, {"content-type": "application/json"}, b"\x00\x01")
    assert http_response({"predictions": [1.5]}) == (200, {"content-type": "application/json"},
                                                     b'{"predictions": [1.5]}')
    with pytest.raises(ValueError):
        http_response({"statusCode": 99})


def test_the_smoke_verdict_compares_exactly_and_names_an_error_answer():
    smoke = SmokeTest("1,2\n3,4\n", (1.5, 2.25))
    event = smoke_event(smoke)
    assert (event["body"], event["headers"]["content-type"], event["requestContext"]["http"]["method"]) == (
        "1,2\n3,4\n", "text/csv", "POST")
    ok = {"statusCode": 200, "body": json.dumps({"predictions": [1.5, 2.25]})}
    assert smoke_verdict(ok, smoke) is None
    off = {"statusCode": 200, "body": json.dumps({"predictions": [1.5, 2.2500000000000004]})}
    assert "1 of 2 smoke predictions differ" in smoke_verdict(off, smoke)
    down = {"statusCode": 503, "body": json.dumps({"error": "model_unavailable", "message": "ModelIntegrityError: x"})}
    assert smoke_verdict(down, smoke) == "it answered 503 (model_unavailable: ModelIntegrityError: x)"
    assert "malformed" in smoke_verdict({"statusCode": "x"}, smoke)


def test_the_aws_adapter_imports_nothing_heavy_for_the_approval_lambda():
    # the approval Lambda builds this target at its cold start: no numpy, pandas, scikit-learn, SageMaker SDK,
    # boto3 (imported when a client is built), nor the local front's HTTP server
    import subprocess
    import sys

    code = ("import sys, deploy.function.aws; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'numpy', 'pandas', 'sklearn', 'sagemaker', 'boto3', 'http'}), 'deploy.function.front' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["['http']", "False"]  # http.client: the registry client's transport
