"""Serving registrations (deploy.endpoint.deployed) and the local clients' failure paths through an in-memory
transport (deploy.endpoint.client.MockTransport): no server, no model.

A registration belongs to the process that wrote it (pid and start time): a second server of the same
group is refused naming the first, unless it replaces it; only the owner removes it; a record whose pid
now belongs to another process is stale. The local endpoint target speaks to the server's token-guarded
side channel, and the Lambda front's invoker to its Invoke API; every failure the server can give is one
DeploymentFailed/GreenlightError line naming the server.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.endpoint.client import HttpResponse, MockTransport, TransportError
from deploy.endpoint.deployed import (EndpointState, ServingConflict, read_serving, register_serving,
                                      unregister_serving)
from deploy.endpoint.server import STAGED_PATH, TOKEN_HEADER
from deploy.endpoint.target import LocalEndpointTarget
from deploy.engine.local_state import deployment_dir, write_json
from deploy.engine.model import Release
from deploy.engine.protocol import Artifact, Staged
from deploy.engine.smoke import SmokeTest
from deploy.function.invoke import FrontInvoker
from greenlight.errors import DeploymentFailed, GreenlightError
from greenlight.processes import process_start_time

GROUP = "g"
URL = "http://endpoint.test:8080"
SMOKE = SmokeTest("1,2\n", (0.5,))


@pytest.fixture
def other_process():
    """Another live process (what a second `endpoint serve` would be)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def _record_of(home: Path, proc, url: str = "http://127.0.0.1:9999", target: str = "endpoint") -> Path:
    path = deployment_dir(home, GROUP) / f"{target}.serving.json"
    write_json(path, {"url": url, "pid": proc.pid, "started": process_start_time(proc.pid), "token": "theirs",
                      "since": "2026-12-01T00:00:00+00:00"})
    return path


def test_a_second_server_is_refused_naming_the_running_one_unless_it_replaces_it(tmp_path, other_process):
    path = _record_of(tmp_path, other_process)
    with pytest.raises(ServingConflict) as refused:
        register_serving(tmp_path, GROUP, URL)
    assert str(refused.value) == (f"greenlight endpoint serve pid {other_process.pid} (since 2026-12-01T00:00:00+00:00) "
                                  f"at http://127.0.0.1:9999 already serves group {GROUP}; stop it, or pass --replace "
                                  "to take over its registration")
    assert refused.value.exit_code == 2
    mine = register_serving(tmp_path, GROUP, URL, replace=True)
    assert read_serving(tmp_path, GROUP) == mine and mine.pid == os.getpid() and mine.token
    assert oct(path.stat().st_mode & 0o777) == "0o600"  # the token opens the side channel: owner-only


def test_only_the_owner_removes_a_registration(tmp_path, other_process):
    path = _record_of(tmp_path, other_process, target="lambda")
    unregister_serving(tmp_path, GROUP, "lambda")  # this process is not its owner
    assert path.exists() and read_serving(tmp_path, GROUP, "lambda").pid == other_process.pid
    mine = register_serving(tmp_path, GROUP, URL, "lambda", replace=True)
    unregister_serving(tmp_path, GROUP, "lambda", record=dataclasses.replace(mine, token="not mine"))
    assert path.exists()  # the same pid, but another registration (a --replace by this process's twin)
    unregister_serving(tmp_path, GROUP, "lambda", record=mine)
    assert not path.exists()


def test_a_record_whose_pid_now_names_another_process_is_stale_and_a_corrupt_one_is_ignored(tmp_path):
    path = deployment_dir(tmp_path, GROUP) / "endpoint.serving.json"
    write_json(path, {"url": URL, "pid": os.getpid(), "started": 1, "token": "t"})  # this pid, another start time
    assert read_serving(tmp_path, GROUP) is None
    register_serving(tmp_path, GROUP, URL)  # not refused: the recorded process is gone
    path.write_text('{"url": "http://x", "pid": ')  # truncated by hand
    assert read_serving(tmp_path, GROUP) is None
    assert register_serving(tmp_path, GROUP, URL).url == URL


# -- the local endpoint target's side channel, through an in-memory transport ----------------------------

def _target(tmp_path: Path, answers: dict[tuple[str, str], HttpResponse | Exception]):
    def handle(request):
        answer = answers[(request.method, request.url.removeprefix(URL))]
        if isinstance(answer, Exception):
            raise answer
        return answer

    transport = MockTransport(handle)
    return LocalEndpointTarget(tmp_path, GROUP, lambda uri: Path(uri), transport=transport, smoke_timeout=1.0,
                               poll=0.001), transport


def _json(status: int, body: dict, version: str = "none") -> HttpResponse:
    return HttpResponse(status, {"x-greenlight-model-version": version}, json.dumps(body).encode())


RELEASE = Release(GROUP, 2, f"arn:aws:sagemaker:local:0:model-package/{GROUP}/2", "/models/two.tar.gz", "img")
ARTIFACT = Artifact(2, RELEASE.model_data_url, Path("/cache/two"), "sha256:2")


def test_staging_sends_the_token_and_a_refusal_is_one_line_naming_the_server(tmp_path):
    record = register_serving(tmp_path, GROUP, URL)
    target, transport = _target(tmp_path, {("POST", STAGED_PATH): _json(503, {
        "error": "model_unavailable", "message": "cannot load model version g/2: ModelIntegrityError: sha256"})})
    with pytest.raises(DeploymentFailed) as failed:
        target.stage(RELEASE, ARTIFACT)
    assert str(failed.value) == (f"the endpoint at {URL} cannot stage g/2: 503 model_unavailable: cannot load model "
                                 "version g/2: ModelIntegrityError: sha256")
    [request] = transport.requests
    assert request.headers[TOKEN_HEADER] == record.token
    assert json.loads(request.body) == {"version": "g/2", "model_dir": "/cache/two", "digest": "sha256:2"}


@pytest.mark.parametrize("answer, words", [
    (_json(200, {"predictions": [0.5]}, "g/1"), "answered 200 from version g/1"),
    (_json(200, {"predictions": [0.75]}, "g/2"), "1 of 1 smoke predictions differ"),
    (_json(503, {"error": "model_unavailable", "message": "no model version is staged"}), "answered 503"),
    (TransportError(f"cannot reach {URL}: Connection refused"), f"cannot reach the endpoint at {URL}"),
], ids=["another-version", "wrong-predictions", "nothing-staged", "unreachable"])
def test_a_probe_passes_only_on_the_staged_version_s_exact_answer(tmp_path, answer, words):
    register_serving(tmp_path, GROUP, URL)
    target, _ = _target(tmp_path, {("POST", f"{STAGED_PATH}/invocations"): answer})
    staged = Staged("endpoint", 2, {"label": "g/2", "model_dir": "/cache/two", "digest": "sha256:2", "server": URL})
    with pytest.raises(DeploymentFailed, match=words):
        target.probe(staged, SMOKE)
    assert not (tmp_path / "deployments" / GROUP / "endpoint.json").exists()  # never switched


def test_unstage_after_a_switch_puts_the_previous_record_back_and_drops_the_staged_model(tmp_path):
    register_serving(tmp_path, GROUP, URL)
    EndpointState(1, "/cache/one", digest="sha256:1").write(tmp_path, GROUP)
    previous = EndpointState.read(tmp_path, GROUP).summary()
    target, transport = _target(tmp_path, {("DELETE", STAGED_PATH): _json(200, {"dropped": True}),
                                           ("GET", "/ping"): _json(200, {"model_version": "g/1"})})
    staged = Staged("endpoint", 2, {"label": "g/2", "model_dir": "/cache/two", "digest": "sha256:2", "server": URL,
                                    "previous": previous})
    target.switch(staged)
    assert EndpointState.read(tmp_path, GROUP).version == 2
    target.unstage(staged)
    assert (EndpointState.read(tmp_path, GROUP).version, EndpointState.read(tmp_path, GROUP).digest) == (1, "sha256:1")
    # first until the server splits no traffic, then the staged model dropped, then until v1 serves again
    assert [(r.method, r.url.removeprefix(URL)) for r in transport.requests] == [("GET", "/ping"),
                                                                                 ("DELETE", STAGED_PATH),
                                                                                 ("GET", "/ping")]


def test_a_corrupt_deployment_record_is_observed_as_nothing_serving_and_rewritten_by_the_next_switch(tmp_path):
    path = deployment_dir(tmp_path, GROUP) / "endpoint.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"version": "seven", "model_dir": 3}')
    target, _ = _target(tmp_path, {})
    observed = target.observe()
    assert (observed.version, observed.active) == (None, False) and "wrong type" in observed.detail["unreadable"]
    target.switch(Staged("endpoint", 2, {"label": "g/2", "model_dir": "/cache/two", "digest": "sha256:2",
                                         "server": None, "previous": None}))
    assert target.observe().version == 2


# -- the Lambda front's Invoke API, through an in-memory transport ---------------------------------------

@pytest.mark.parametrize("answer, words", [
    (HttpResponse(429, {"x-amzn-errortype": "TooManyRequestsException"}, b'{"message": "Rate Exceeded."}'),
     "answered 429 TooManyRequestsException"),
    (HttpResponse(404, {"x-amzn-errortype": "ResourceNotFoundException"}, b"{}"), "404 ResourceNotFoundException"),
    (HttpResponse(200, {}, b"<html>"), "answered something that is not JSON"),
    (TransportError("cannot reach http://front.test: timed out"), "cannot invoke fn:3 at http://front.test: timed out"),
], ids=["throttled", "unknown-version", "not-json", "unreachable"])
def test_the_front_invoker_names_every_failure_in_one_line(answer, words):
    def handle(request):
        assert request.url == "http://front.test/2015-03-31/functions/fn/invocations?Qualifier=3"
        if isinstance(answer, Exception):
            raise answer
        return answer

    with pytest.raises(GreenlightError, match=words) as failed:
        FrontInvoker("http://front.test", transport=MockTransport(handle)).invoke("fn", "3", {"body": "x"})
    assert "\n" not in str(failed.value)
