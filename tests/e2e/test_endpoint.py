"""The local serverless endpoint end to end: real models trained by src/train.py, a real HTTP server.

GIVEN model directories written by the training script (two versions that predict differently),
WHEN they are served over HTTP, THEN the SageMaker container protocol holds: round trips in CSV
and JSON, one 4xx per kind of bad payload with the server still healthy, a hot swap under
concurrent load without a failed request, idle drop and cold reload, and `greenlight invoke`.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from deploy.endpoint.loader import load_version
from deploy.endpoint.server import MAX_BODY_BYTES, VERSION_HEADER
from deploy.endpoint.slot import ModelTarget
from deploy.endpoint.sources import FixedModelSource
from tests.support.endpoints import BOUND_SECONDS, OTHER_ROW, ROW, Client, Switch, serving

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"


def _sklearn_predict(model_dir: Path, row: str) -> float:
    import joblib
    import numpy as np

    model = joblib.load(model_dir / "model.joblib")
    return float(model.predict(np.array([[float(v) for v in row.split(",")]]))[0])


def _prediction(data: bytes) -> float:
    doc = json.loads(data)
    preds = doc["predictions"] if isinstance(doc, dict) else doc
    first = preds[0]
    return float(first["score"] if isinstance(first, dict) else first)


# -- round trips -------------------------------------------------------------------------------

def test_csv_and_json_round_trips_match_scikit_learn(models):
    expected = _sklearn_predict(models["a"], ROW)
    with serving(FixedModelSource(models["a"], models["a"].parent / "cache")) as endpoint:
        client = Client(endpoint.url)
        status, response, data = client.invoke(ROW.encode())
        assert status == 200, data
        assert response.getheader("Content-Type").startswith("application/json")
        assert response.getheader(VERSION_HEADER) == endpoint.slot.current.version
        assert _prediction(data) == pytest.approx(expected, rel=1e-6)

        body = json.dumps({"instances": [[float(v) for v in ROW.split(",")]]}).encode()
        status, response, data = client.invoke(body, "application/json", accept="text/csv")
        assert status == 200, data
        assert response.getheader("Content-Type").startswith("text/csv")
        assert float(data.decode().split()[0]) == pytest.approx(expected, rel=1e-6)

        # SageMaker reads a missing Content-Type as JSON and a missing Accept as JSON.
        status, response, data = client.invoke(body, content_type=None)
        assert status == 200, data
        assert response.getheader("Content-Type").startswith("application/json")
        client.close()


def test_model_tar_gz_is_unpacked_into_the_cache(models, tmp_path):
    source = FixedModelSource(models["a_tar"], tmp_path / "cache")
    assert source.target.model_dir.parent == tmp_path / "cache"
    assert source.target.version == FixedModelSource(models["a"], tmp_path / "cache").target.version
    with serving(source) as endpoint:
        status, _, data = Client(endpoint.url).invoke(ROW.encode())
    assert status == 200, data


def test_every_response_names_the_model_version(models):
    with serving(FixedModelSource(models["a"], models["a"].parent / "cache")) as endpoint:
        client = Client(endpoint.url)
        version = endpoint.slot.resolve().version
        for method, path in (("GET", "/ping"), ("GET", "/nowhere"), ("POST", "/nowhere")):
            status, response, _ = client.request(method, path, b"" if method == "POST" else None)
            assert response.getheader(VERSION_HEADER) == version, (method, path, status)
        assert client.request("GET", "/ping")[0] == 200
        assert client.request("GET", "/nowhere")[0] == 404
        client.close()


# -- bad input ---------------------------------------------------------------------------------

BAD_INPUTS = [
    # id, body, content type, accept, expected status
    ("wrong-feature-count", b"1.0,2.0,3.0", "text/csv", None, 400),
    ("non-numeric", ROW.replace("0.0380759", "abc").encode(), "text/csv", None, 400),
    ("empty-body", b"", "text/csv", None, 400),
    ("empty-json", b"", "application/json", None, 400),
    ("malformed-json", b'{"instances": [[1, 2', "application/json", None, 400),
    ("unsupported-content-type", ROW.encode(), "text/plain", None, 415),
    ("unsupported-accept", ROW.encode(), "text/csv", "application/xml", 406),
    ("too-large", (ROW + "\n").encode() * (MAX_BODY_BYTES // len(ROW) + 2), "text/csv", None, 413),
]


@pytest.mark.parametrize("body,content_type,accept,expected", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gets_its_4xx_and_the_server_keeps_answering(models, body, content_type, accept, expected):
    with serving(FixedModelSource(models["a"], models["a"].parent / "cache")) as endpoint:
        client = Client(endpoint.url)
        assert client.invoke(ROW.encode())[0] == 200  # warm
        status, response, data = client.invoke(body, content_type, accept)
        assert status == expected, data
        assert response.getheader("Content-Type").startswith("application/json")
        assert json.loads(data)  # a JSON error body
        assert response.getheader(VERSION_HEADER) == endpoint.slot.current.version
        client.close()
        again = Client(endpoint.url)
        assert again.request("GET", "/ping")[0] == 200
        assert again.invoke(ROW.encode())[0] == 200
        again.close()


def test_no_model_available_is_503_with_a_json_body():
    with serving(Switch(None)) as endpoint:
        client = Client(endpoint.url)
        status, response, data = client.invoke(ROW.encode())
        assert status == 503 and "error" in json.loads(data)
        assert response.getheader(VERSION_HEADER) == "none"
        assert client.request("GET", "/ping")[0] == 503
        client.close()


# -- hot swap ----------------------------------------------------------------------------------

def _load_traffic(url: str, clients: int, stop: threading.Event, log: list, errors: list) -> list[threading.Thread]:
    def run(index: int) -> None:
        client = Client(url)
        body = (ROW if index % 2 else OTHER_ROW).encode()
        try:
            for _ in range(100_000):  # bounded; normally ended by `stop`
                if stop.is_set():
                    break
                status, response, data = client.invoke(body)
                log.append((index, status, response.getheader(VERSION_HEADER), data))
        except Exception as exc:  # a dropped connection is a failed request
            errors.append(repr(exc))
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    return threads


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + BOUND_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


@pytest.mark.slow
def test_hot_swap_under_eight_concurrent_clients_fails_no_request(models):
    cache = models["a"].parent / "cache"
    a, b = FixedModelSource(models["a"], cache).target, FixedModelSource(models["b"], cache).target
    switch = Switch(a)
    with serving(switch, poll_seconds=0.02) as endpoint:
        stop, log, errors = threading.Event(), [], []
        threads = _load_traffic(endpoint.url, 8, stop, log, errors)
        _wait_until(lambda: len(log) >= 200, "traffic on version A")
        switch.target = b  # the watcher loads B fully, then swaps
        _wait_until(lambda: any(v == b.version for _, _, v, _ in log), "the first answer from version B")
        seen = len(log)
        _wait_until(lambda: len(log) >= seen + 200, "traffic on version B")
        stop.set()
        for thread in threads:
            thread.join(BOUND_SECONDS)
        slot = endpoint.slot

    assert errors == []
    assert [entry for entry in log if entry[1] != 200] == []
    assert {v for _, _, v, _ in log} == {a.version, b.version}
    assert slot.swaps == 1 and slot.loads == 2
    for index in range(8):  # each client moves from A to B once and never back
        versions = [v for i, _, v, _ in log if i == index]
        first_b = versions.index(b.version) if b.version in versions else len(versions)
        assert all(v == a.version for v in versions[:first_b]) and all(v == b.version for v in versions[first_b:])
    expected = {(a.version, ROW): _sklearn_predict(models["a"], ROW), (b.version, ROW): _sklearn_predict(models["b"], ROW)}
    for index, _, version, data in log:
        if index % 2:
            assert _prediction(data) == pytest.approx(expected[(version, ROW)], rel=1e-6)


def test_a_version_that_fails_to_load_is_not_swapped_in(models, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(models["b"], broken)
    metadata = json.loads((broken / "metadata.json").read_text())
    metadata["forest_sha256"] = "0" * 64  # the forest no longer matches: model_fn refuses it
    (broken / "metadata.json").write_text(json.dumps(metadata))
    a = FixedModelSource(models["a"], tmp_path / "cache").target
    switch = Switch(a)
    with serving(switch) as endpoint:
        client = Client(endpoint.url)
        assert client.invoke(ROW.encode())[0] == 200
        switch.target = ModelTarget("broken", broken)
        assert endpoint.slot.refresh() is False
        status, response, _ = client.invoke(ROW.encode())
        assert (status, response.getheader(VERSION_HEADER)) == (200, a.version)
        client.close()


def test_two_versions_with_different_code_load_side_by_side(models, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(models["a"], changed)
    with open(changed / "code" / "inference.py", "a") as fh:
        fh.write("\nGREENLIGHT_TEST_MARKER = 2\n")
    old, new = load_version("a", models["a"]), load_version("changed", changed)
    assert old.code is not new.code and old.code.__name__ != new.code.__name__
    assert new.code.GREENLIGHT_TEST_MARKER == 2 and not hasattr(old.code, "GREENLIGHT_TEST_MARKER")
    assert old.finish(old.parse(ROW.encode(), "text/csv"), "application/json") == new.finish(
        new.parse(ROW.encode(), "text/csv"), "application/json")
    assert load_version("a again", models["a"]).code is old.code  # the same directory: one module
    assert load_version("b", models["b"]).code is not old.code  # same code, another version: its own state


def test_deployed_source_serves_the_deployed_version_and_503_once_stopped(models, tmp_path):
    from deploy.endpoint.deployed import DeployedSource, EndpointState

    home = tmp_path / "home"
    source = DeployedSource(home, "endpoint-test")
    with serving(source) as endpoint:
        client = Client(endpoint.url)
        assert client.invoke(ROW.encode())[0] == 503  # nothing deployed yet
        EndpointState(1, str(models["a"])).write(home, "endpoint-test")
        status, response, data = client.invoke(ROW.encode())
        assert (status, response.getheader(VERSION_HEADER)) == (200, "endpoint-test/1")
        EndpointState(2, str(models["b"])).write(home, "endpoint-test")
        assert endpoint.slot.refresh() is True
        status, response, data = client.invoke(ROW.encode())
        assert (status, response.getheader(VERSION_HEADER)) == (200, "endpoint-test/2")
        assert _prediction(data) == pytest.approx(_sklearn_predict(models["b"], ROW), rel=1e-6)
        EndpointState(None).write(home, "endpoint-test")  # stopped: nothing deployed any more
        assert endpoint.slot.refresh() is True
        status, _, data = client.invoke(ROW.encode())
        assert status == 503 and json.loads(data)["error"] == "model_unavailable"
        client.close()


def _tar_bytes(model_dir: Path) -> bytes:
    import io

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return buffer.getvalue()


# -- cold start and idle drop ------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_model_is_dropped_and_reloaded_on_the_next_request(models):
    clock = FakeClock()
    source = FixedModelSource(models["a"], models["a"].parent / "cache")
    with serving(source, idle_seconds=10, clock=clock) as endpoint:
        slot, client = endpoint.slot, Client(endpoint.url)
        assert slot.current is None  # nothing loads before the first request
        assert client.request("GET", "/ping")[0] == 200 and slot.current is None
        assert client.invoke(ROW.encode())[0] == 200 and slot.loads == 1
        _wait_until(lambda: slot.in_flight == 0, "the request to be released")
        clock.now += 5
        assert slot.drop_if_idle() is False
        assert client.invoke(ROW.encode())[0] == 200  # a request restarts the idle clock
        _wait_until(lambda: slot.in_flight == 0, "the request to be released")
        clock.now += 9
        assert slot.drop_if_idle() is False
        clock.now += 2
        assert slot.drop_if_idle() is True and slot.current is None and slot.drops == 1
        status, response, data = client.request("GET", "/ping")
        assert status == 200 and json.loads(data)["loaded"] is False
        assert response.getheader(VERSION_HEADER) == source.target.version
        assert client.invoke(ROW.encode())[0] == 200 and slot.loads == 2  # cold start
        client.close()


@pytest.mark.slow
def test_watcher_thread_drops_an_idle_model(models):
    source = FixedModelSource(models["a"], models["a"].parent / "cache")
    with serving(source, idle_seconds=0.2, poll_seconds=0.05) as endpoint:
        client = Client(endpoint.url)
        assert client.invoke(ROW.encode())[0] == 200
        _wait_until(lambda: endpoint.slot.current is None, "the idle drop")
        assert client.invoke(ROW.encode())[0] == 200 and endpoint.slot.loads == 2
        client.close()


# -- the CLI -----------------------------------------------------------------------------------

def test_greenlight_invoke_prints_the_prediction(models, tmp_path, capsys):
    from greenlight.cli import main

    expected = _sklearn_predict(models["a"], ROW)
    with serving(FixedModelSource(models["a"], tmp_path / "cache")) as endpoint:
        assert main(["invoke", "--endpoint", endpoint.url, "--body", ROW]) == 0
        assert _prediction(capsys.readouterr().out.encode()) == pytest.approx(expected, rel=1e-6)

        payload = tmp_path / "rows.csv"
        payload.write_text(ROW + "\n" + OTHER_ROW + "\n")
        assert main(["invoke", "--endpoint", endpoint.url, "--file", str(payload), "--accept", "text/csv"]) == 0
        assert len(capsys.readouterr().out.split()) == 2

        code = main(["invoke", "--endpoint", endpoint.url, "--body", "1,2,3"])
        err = capsys.readouterr().err
        assert code != 0 and err.startswith("greenlight: error: endpoint answered 400") and err.count("\n") == 1

        assert main(["invoke", "--endpoint", endpoint.url]) == 2  # neither --body nor --file
        assert main(["invoke", "--endpoint", endpoint.url, "--body", ROW, "--file", str(payload)]) == 2


def test_greenlight_invoke_reports_an_unreachable_endpoint(capsys):
    from greenlight.cli import main

    with serving(Switch(None)) as endpoint:
        url = endpoint.url
    assert main(["invoke", "--endpoint", url, "--body", ROW]) == 1
    assert "cannot reach the endpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_endpoint_serve_command_serves_until_terminated(models, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "GREENLIGHT_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenlight.cli", "endpoint", "serve", "--model", str(models["a_tar"]), "--port", "0"],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("greenlight endpoint: serving"):
            lines.append(proc.stderr.readline())
            assert lines[-1] and len(lines) < 50, "".join(lines)  # ended, or never said where it listens
        url = lines[-1].split(" on ")[1].split()[0]
        client = Client(url)
        status, response, data = client.invoke(ROW.encode())
        assert status == 200, data
        assert response.getheader(VERSION_HEADER).startswith("local-")
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=BOUND_SECONDS)[1]
    assert proc.returncode == 0, rest
    assert "loaded model version" in rest  # the cold start is logged


def test_serving_path_imports_neither_pandas_nor_scikit_learn(models):
    script = (
        "import sys; from pathlib import Path\n"
        "from deploy.endpoint.client import invoke\n"
        "from deploy.endpoint.server import Endpoint\n"
        "from deploy.endpoint.slot import ModelSlot\n"
        "from deploy.endpoint.sources import FixedModelSource\n"
        f"slot = ModelSlot(FixedModelSource(Path({str(models['a'])!r}), Path({str(models['a'].parent / 'cache')!r})))\n"
        "with Endpoint(slot, '127.0.0.1', 0) as endpoint:\n"
        f"    assert invoke(endpoint.url, {ROW!r}.encode()).status == 200\n"
        "print(sorted(m for m in ('pandas', 'sklearn', 'scipy', 'joblib') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=BOUND_SECONDS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_failed_cold_load_is_503_and_retried_after_the_retry_delay(models, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(models["a"], broken)
    forest = broken / "forest.json"
    forest.write_bytes(forest.read_bytes() + b"tampered")
    clock = FakeClock()
    switch = Switch(ModelTarget("broken", broken))
    with serving(switch, clock=clock, retry_seconds=30) as endpoint:
        client = Client(endpoint.url)
        status, response, data = client.invoke(ROW.encode())
        body = json.loads(data)
        assert status == 503 and body["error"] == "model_unavailable" and "broken" in body["message"]
        assert response.getheader(VERSION_HEADER) == "broken"
        shutil.copy2(models["a"] / forest.name, forest)  # repaired on disk
        assert client.invoke(ROW.encode())[0] == 503  # still within the retry delay: no new load
        clock.now += 31
        assert client.invoke(ROW.encode())[0] == 200
        client.close()
