"""The Lambda target's local adapter and its front, beyond the shared suites.

GIVEN the local deployment world for the Lambda (tests/support/deploy_env.py: the SQLite registry, the
artifact store, and the local front in a thread, registered as `greenlight lambda serve` registers it)
WHEN versions are approved, rejected and stopped THEN the mirrored state, the front's routes, the hot
swap under load, `greenlight invoke`, the throttle and retention behave as on Lambda.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import types
import urllib.error
import urllib.request

import pytest

from deploy.function.handler import import_handler, load_function
from deploy.function.state import FunctionState, state_path
from tests.support.endpoints import ROW


@pytest.fixture
def env(tmp_path, models, monkeypatch):
    from tests.contract.conftest import only_target
    from tests.support.deploy_env import LocalDeployEnv

    only_target("lambda", monkeypatch)
    world = LocalDeployEnv(tmp_path / "home", models, monkeypatch, kind="lambda")
    try:
        yield world
    finally:
        world.close()


def approve(env, version: int) -> dict:
    env.approve(version)
    return env.handle(env.event(version, "Approved"))


def post(url: str, path: str, body: bytes = b"", method: str = "POST", headers: dict | None = None):
    request = urllib.request.Request(url + path, data=body if method != "GET" else None, method=method,
                                     headers={"Content-Type": "text/csv", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_the_state_mirrors_numbered_versions_and_the_alias(env):
    v1, v2 = env.register(), env.register(model="b")
    first = approve(env, v1)["report"]["results"][0]["message"]
    assert "nothing -> v1 (function version 1; smoke test passed through the local front at" in first
    approve(env, v2)
    env.reject(v2)
    env.handle(env.event(v2, "Rejected"))
    state = FunctionState.read(env.home, env.group, env.group)
    # a rollback publishes no new version: version 1 still holds model v1 with the same configuration
    assert sorted(state.versions) == [1, 2] and (state.live, state.previous) == (1, 2)
    assert {n: v.model_version for n, v in state.versions.items()} == {1: v1, 2: v2}
    assert state.versions[2].description == f"greenlight {env.group} model v2"
    assert state.versions[1].environment == {"GREENLIGHT_PREDICT_THREADS": "1",
                                             "GREENLIGHT_MODEL_VERSION": f"{env.group}/1"}
    raw = json.loads(state_path(env.home, env.group).read_text())
    assert raw["alias"] == {"name": "live", "version": 1, "previous": 2} and raw["last_version"] == 2
    observed = env.target.observe()
    assert (observed.version, observed.active, observed.detail["function_version"]) == (1, True, 1)


def test_the_front_speaks_function_url_and_the_invoke_api(env):
    v1 = env.register()
    approve(env, v1)
    url = env.endpoint.url
    status, headers, body = post(url, "/invocations", ROW.encode())
    assert status == 200 and json.loads(body)["predictions"]
    assert (headers["X-Greenlight-Model-Version"], headers["X-Greenlight-Function-Version"]) == (f"{env.group}/1", "1")
    assert post(url, "/", ROW.encode())[2] == body  # POST / is the same route of the handler
    status, _, health = post(url, "/health", method="GET")
    assert status == 200 and json.loads(health)["status"] == "ok"
    status, _, missing = post(url, "/nope", ROW.encode())
    assert status == 404 and json.loads(missing)["error"] == "not_found"  # the handler's own 404
    assert post(url, "/invocations", b"1,2", headers={"Content-Type": "text/csv"})[0] == 400
    event = {"version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "POST"}},
             "headers": {"content-type": "text/csv"}, "body": ROW}
    invoke = f"/2015-03-31/functions/{env.group}/invocations"
    status, headers, answer = post(url, invoke + "?Qualifier=1", json.dumps(event).encode())
    assert status == 200 and headers["X-Amz-Executed-Version"] == "1"
    assert json.loads(json.loads(answer)["body"]) == json.loads(body)
    assert post(url, invoke + "?Qualifier=live", json.dumps(event).encode())[1]["X-Amz-Executed-Version"] == "1"
    status, headers, _ = post(url, invoke + "?Qualifier=7", json.dumps(event).encode())
    assert (status, headers["x-amzn-ErrorType"]) == (404, "ResourceNotFoundException")
    status, headers, _ = post(url, "/2015-03-31/functions/someone-else/invocations", b"{}")
    assert (status, headers["x-amzn-ErrorType"]) == (404, "ResourceNotFoundException")
    status, headers, _ = post(url, invoke, b"{not json")
    assert (status, headers["x-amzn-ErrorType"]) == (400, "InvalidRequestContentException")


def test_the_front_answers_deep_json_and_events_that_are_not_objects_with_400(env):
    """issue 18 item 7: 10,000-level nested JSON and a list event were a 500 (RecursionError, AttributeError)."""
    approve(env, env.register())
    deep = b"[" * 10_000 + b"]" * 10_000
    status, _, body = post(env.endpoint.url, "/invocations", deep, headers={"Content-Type": "application/json"})
    assert (status, json.loads(body)["error"]) == (400, "malformed_json")
    assert "nest deeper than 64 levels" in json.loads(body)["message"]
    invoke = f"/2015-03-31/functions/{env.group}/invocations?Qualifier=1"
    status, headers, body = post(env.endpoint.url, invoke, deep)
    assert (status, headers["x-amzn-ErrorType"]) == (400, "InvalidRequestContentException"), body
    for event in ([1, 2], "an event", 7, None):  # Lambda hands any JSON to the handler: it answers 400
        status, _, answer = post(env.endpoint.url, invoke, json.dumps(event).encode())
        response = json.loads(answer)
        assert (status, response["statusCode"], json.loads(response["body"])["error"]) == (200, 400, "bad_request")
    assert env.served_version() == 1  # and it goes on serving


def test_nothing_deployed_is_503_and_a_stopped_function_is_429_everywhere(env):
    assert post(env.endpoint.url, "/invocations", ROW.encode())[0] == 503
    v1 = env.register()
    approve(env, v1)
    assert "stopped" in env.target.stop()
    assert (env.target.observe().active, env.served_version()) == (False, None)
    status, _, body = post(env.endpoint.url, "/invocations", ROW.encode())
    assert status == 429 and b"Rate Exceeded" in body
    status, headers, _ = post(env.endpoint.url, f"/2015-03-31/functions/{env.group}/invocations?Qualifier=1", b"{}")
    assert (status, headers["x-amzn-ErrorType"]) == (429, "TooManyRequestsException")
    # a failed deploy while stopped puts the throttle back; a good one removes it
    bad = env.register("disagree", model="b")
    env.approve(bad)
    assert not env.handle(env.event(bad, "Approved"))["ok"]
    assert FunctionState.read(env.home, env.group, env.group).throttled and env.served_version() is None
    env.reject(bad)
    assert env.handle(env.event(bad, "Rejected"))["ok"]
    assert env.served_version() == v1 and not FunctionState.read(env.home, env.group, env.group).throttled


def test_greenlight_invoke_calls_the_front(env, capsys):
    from deploy.endpoint.client import invoke
    from greenlight.cli import main

    v1 = env.register()
    approve(env, v1)
    assert main(["invoke", "--endpoint", env.endpoint.url, "--body", ROW]) == 0
    printed = json.loads(capsys.readouterr().out)
    result = invoke(env.endpoint.url, ROW.encode())  # what `greenlight invoke` sends and reads
    assert printed == json.loads(result.body) and printed["predictions"]
    assert result.model_version == f"{env.group}/1"


def test_no_request_fails_while_the_alias_moves_under_load(env):
    v1, v2 = env.register(), env.register(model="b")
    approve(env, v1)
    host, port = env.endpoint.url.removeprefix("http://").split(":")
    stop, failures, seen = threading.Event(), [], []

    def client(log: list[str]) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        while not stop.is_set():
            try:
                conn.request("POST", "/invocations", body=ROW.encode(), headers={"Content-Type": "text/csv"})
                response = conn.getresponse()
                body = response.read()
                if response.status != 200:
                    failures.append(f"{response.status}: {body[:200]!r}")
                version = response.getheader("X-Greenlight-Model-Version")
                if not log or log[-1] != version:
                    log.append(version)
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.close()

    threads = []
    for _ in range(6):
        seen.append([])
        threads.append(threading.Thread(target=client, args=(seen[-1],), daemon=True))
        threads[-1].start()
    try:
        assert approve(env, v2)["ok"]
        env.reject(v2)
        assert env.handle(env.event(v2, "Rejected"))["ok"]
        stop.wait(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert failures == []
    labels = [f"{env.group}/{v}" for v in (v1, v2, v1)]
    # each client saw 1, then 2, then 1 (or, if it never ran while 2 was live, only 1); never 2 before 1
    assert all(log in (labels, labels[:1]) for log in seen), seen
    assert any(log == labels for log in seen), seen


def test_retention_prunes_old_versions_and_their_unpacked_models(env, monkeypatch):
    monkeypatch.setenv("GREENLIGHT_LAMBDA_RETENTION", "0")
    versions = [env.register(model=m) for m in ("a", "b", "a", "b")]
    for v in versions:
        assert approve(env, v)["ok"]
    state = FunctionState.read(env.home, env.group, env.group)
    # retention 0: the live version (model v4) and the previous one (model v3) are all that is left
    assert sorted(state.versions) == [3, 4] and (state.live, state.previous) == (4, 3)
    cache = env.home / "lambda-cache"
    assert {p.name for p in cache.iterdir()} == {state.versions[n].model_dir.rsplit("/", 1)[1] for n in (3, 4)}
    assert env.served_version() == versions[-1]


def test_each_version_runs_its_own_handler_code_whatever_is_imported(env, models, tmp_path):
    fake = types.ModuleType("inference")
    sys.modules["inference"] = fake  # e.g. src/inference.py imported by bare name elsewhere
    try:
        a = load_function("1", models["a"])
        assert a.module.inference is not fake and a.model is not None
        assert sys.modules["inference"] is fake  # put back as it was
    finally:
        sys.modules.pop("inference", None)
    copy = tmp_path / "b-copy"
    import shutil

    shutil.copytree(models["b"], copy)
    (copy / "code" / "lambda_function.py").write_text(
        (copy / "code" / "lambda_function.py").read_text() + "\nMARK = 'b-copy'\n")
    assert import_handler(copy / "code").MARK == "b-copy"
    assert not hasattr(import_handler(models["b"] / "code"), "MARK")


def test_a_tampered_model_is_the_handlers_503_and_never_goes_live(env):
    v1 = env.register()
    approve(env, v1)
    bad = env.register("broken", model="b")
    result = approve(env, bad)
    [failure] = result["report"]["results"]
    assert not failure["ok"] and "answered 503 (model_unavailable: ModelIntegrityError" in failure["message"]
    assert "v1 still serves" in failure["message"] and env.served_version() == v1


def test_a_changed_memory_is_drift_the_next_reconcile_republishes(env, monkeypatch):
    v1 = env.register()
    approve(env, v1)
    monkeypatch.setenv("GREENLIGHT_LAMBDA_MEMORY_MB", "3538")
    target = env.reconciler().targets[0]
    observed = target.observe()
    assert (observed.version, observed.active) == (v1, False) and observed.detail["configuration_drift"]
    [result] = env.reconciler().reconcile().results
    assert result.ok and result.message.startswith("v1 -> v1 (function version 2;")
    state = FunctionState.read(env.home, env.group, env.group)
    assert state.live == 2 and state.versions[2].environment["GREENLIGHT_PREDICT_THREADS"] == "2"
    writes = env.target_writes()
    [again] = env.reconciler().reconcile().results
    assert again.action.value == "none" and env.target_writes() == writes
