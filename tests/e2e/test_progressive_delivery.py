"""Progressive delivery end to end (issue 22's Must show), through the real CLI in separate processes.

GIVEN two versions trained by `greenlight run` (once for the module; each test copies the home),
`greenlight endpoint serve` running v1, `[endpoint] traffic = "canary"`, `canary_percent = 20` and short
steps in greenlight.toml, and clients sending requests all along, WHEN v2 is approved (`greenlight models
approve 2`, which follows the rollout to its end locally), THEN:

- a healthy v2: the clients see both versions during the canary, then only v2, and no request fails;
  `status --json` during the rollout names the phase and the weights;
- a v2 that answers 500 on live rows (one-row requests; its smoke test sends its five rows in one request,
  so it passes) is rolled back automatically: the clients end on v1, the failed requests are v2's and stay
  within the canary's share, `status --json` records the reason, and `greenlight deploy` does not retry it;
- a v2 that is slow on live rows is rolled back on its p99 latency, and no request fails;
- `greenlight deploy --abort` during a canary puts v1 back, and the following command stops following.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tests.support.cli_processes import BOUND_SECONDS, greenlight, registered_url
from tests.support.endpoints import ROW

GROUP = "greenlight-models"
V1, V2 = f"{GROUP}/1", f"{GROUP}/2"
SETTINGS = ('[endpoint]\ntraffic = "canary"\ncanary_percent = 20\nstep_wait_seconds = 3\nbake_seconds = 2\n'
            'min_requests = 20\n{extra}[lambda]\nenabled = false\n[batch]\nenabled = false\n')
# appended to v2's own code/inference.py (code is not covered by the model's digests: the model files are)
FAILS_ON_LIVE_ROWS = '''
_tested_predict_fn = predict_fn


def predict_fn(data, model):
    if getattr(data, "row", None) is not None:  # one row: a live request; the smoke test sends its rows together
        raise RuntimeError("injected by tests/e2e/test_progressive_delivery.py: fails on live rows")
    return _tested_predict_fn(data, model)
'''
SLOW_ON_LIVE_ROWS = '''
_tested_predict_fn = predict_fn


def predict_fn(data, model):
    if getattr(data, "row", None) is not None:
        import time
        time.sleep(0.06)
    return _tested_predict_fn(data, model)
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("progressive") / "home"
    greenlight(home, "run")
    greenlight(home, "run", "--param", "NEstimators=40", "--param", "RandomState=7")
    return home


class World:
    def __init__(self, home: Path):
        self.home = home
        self.serve: subprocess.Popen | None = None
        self.stop = threading.Event()
        self.answers: list[tuple[float, int, str | None]] = []  # (when, status, X-Greenlight-Model-Version)
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.serve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "endpoint", "serve", "--port", "0",
                                       "--poll-seconds", "0.1"], env=os.environ | {"GREENLIGHT_HOME": str(self.home)},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.url = registered_url(self.home / "deployments" / GROUP / "endpoint.serving.json", self.serve,
                                  "endpoint serve")
        assert "endpoint: nothing -> v1" in greenlight(self.home, "models", "approve", "1").stdout

    def clients(self, count: int = 3) -> None:
        host, port = self.url.removeprefix("http://").split(":")

        def loop() -> None:
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            while not self.stop.is_set():
                try:
                    conn.request("POST", "/invocations", body=ROW.encode(), headers={"Content-Type": "text/csv"})
                    response = conn.getresponse()
                    response.read()
                    self.answers.append((time.monotonic(), response.status,
                                         response.getheader("X-Greenlight-Model-Version")))
                except (OSError, http.client.HTTPException) as exc:
                    self.answers.append((time.monotonic(), 0, repr(exc)))
                    conn.close()
                    conn = http.client.HTTPConnection(host, int(port), timeout=30)
                time.sleep(0.005)
            conn.close()

        for _ in range(count):
            thread = threading.Thread(target=loop, daemon=True)
            thread.start()
            self.threads.append(thread)

    def approve_v2(self) -> tuple[subprocess.Popen, list[dict]]:
        """`models approve 2` in its own process, and the `status --json` documents read while it ran."""
        approve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "models", "approve", "2"],
                                   env=os.environ | {"GREENLIGHT_HOME": str(self.home)}, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        statuses = []
        deadline = time.monotonic() + BOUND_SECONDS
        while approve.poll() is None and time.monotonic() < deadline:
            statuses.append(json.loads(greenlight(self.home, "status", "--json").stdout))
        approve.wait(timeout=BOUND_SECONDS)
        return approve, statuses

    def settle(self) -> float:
        """Let the clients run on briefly after the rollout ended; the instant it ended."""
        ended = time.monotonic()
        time.sleep(1.0)
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=BOUND_SECONDS)
        return ended

    def close(self) -> None:
        self.stop.set()
        if self.serve is not None:
            self.serve.terminate()
            self.serve.communicate(timeout=BOUND_SECONDS)


@pytest.fixture
def world(trained, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(trained, home)
    made = World(home)
    yield made
    made.close()


def _configure(home: Path, extra: str = "") -> None:
    (home / "greenlight.toml").write_text(SETTINGS.format(extra=extra))


def _patch_v2(home: Path, code: str) -> None:
    """Repack v2's model.tar.gz (in the local artifact store) with `code` appended to its code/inference.py."""
    url = json.loads(greenlight(home, "models", "show", "2", "--json").stdout)["model_data_url"]
    archive = home / "s3" / url.removeprefix("s3://")
    unpacked = home.parent / "v2-unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    with open(unpacked / "code" / "inference.py", "a") as fh:
        fh.write(code)
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(unpacked.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(unpacked)), recursive=False)


def _rollout_seen(statuses: list[dict]) -> list[dict]:
    return [row["rollout"] for doc in statuses for row in doc["targets"] if row.get("rollout")]


def test_a_healthy_canary_serves_both_versions_then_only_v2_and_fails_no_request(world):
    _configure(world.home)
    world.start()
    world.clients()
    time.sleep(0.3)
    begun = time.monotonic()
    approve, statuses = world.approve_v2()
    out = approve.stdout.read() if approve.stdout else ""
    ended = world.settle()
    assert approve.returncode == 0, (out, approve.stderr.read() if approve.stderr else "")
    assert "endpoint: v1 -> v2 (canary rollout complete" in out, out
    assert [a for a in world.answers if a[1] != 200] == []
    during = {version for at, _, version in world.answers if begun <= at <= ended}
    after = {version for at, _, version in world.answers if at > ended}
    assert during == {V1, V2} and after == {V2}, (during, after)
    first_v2 = min(at for at, _, version in world.answers if version == V2)
    shared = sum(1 for at, _, version in world.answers if version == V1 and first_v2 < at <= ended)
    assert shared >= 20, f"only {shared} answers from v1 after v2's first: the versions did not share the canary"
    rollouts = _rollout_seen(statuses)
    assert any(r["phase"] == "shifting" and r["weights"] == {"v2": 20.0, "v1": 80.0} for r in rollouts), statuses[-3:]
    assert any(r["phase"] == "baking" and r["weights"] == {"v2": 100.0} for r in rollouts), rollouts
    final = json.loads(greenlight(world.home, "status", "--json").stdout)["targets"][0]
    assert (final["running"], final["rollout"], final["rolled_back"]) == (2, None, None)


def test_a_v2_failing_on_live_rows_is_rolled_back_within_the_canary_share(world):
    _configure(world.home)
    _patch_v2(world.home, FAILS_ON_LIVE_ROWS)
    world.start()
    world.clients()
    time.sleep(0.3)
    begun = time.monotonic()
    approve, statuses = world.approve_v2()
    out = approve.stdout.read() if approve.stdout else ""
    ended = world.settle()
    assert approve.returncode == 1, out
    assert "rolled back: canary v2: 5xx 100% > 1% over" in out, out
    failed = [a for a in world.answers if a[1] != 200]
    during = [a for a in world.answers if begun <= a[0] <= ended]
    assert failed and {(status, version) for _, status, version in failed} == {(500, V2)}
    share = len(failed) / len(during)
    assert share <= 0.20 + 3 * math.sqrt(0.2 * 0.8 / len(during)), (len(failed), len(during))
    assert {version for at, _, version in world.answers if at > ended} == {V1}
    doc = json.loads(greenlight(world.home, "status", "--json").stdout)
    row = doc["targets"][0]
    assert row["running"] == 1 and row["rolled_back"]["reason"].startswith("canary v2: 5xx 100% > 1% over ")
    assert row["rolled_back"]["reason"] in doc["last_failure"]["targets"]["endpoint"]
    again = greenlight(world.home, "deploy").stdout  # not retried until approved again
    assert "not retried: v2 was rolled back" in again, again


def test_a_slow_v2_is_rolled_back_on_its_p99_and_no_request_fails(world):
    _configure(world.home, "max_p99_ms = 30\n")
    _patch_v2(world.home, SLOW_ON_LIVE_ROWS)
    world.start()
    world.clients()
    time.sleep(0.3)
    approve, _ = world.approve_v2()
    out = approve.stdout.read() if approve.stdout else ""
    ended = world.settle()
    assert approve.returncode == 1 and "rolled back: canary v2: p99 " in out and "> 30 ms over" in out, out
    assert [a for a in world.answers if a[1] != 200] == []
    assert {version for at, _, version in world.answers if at > ended} == {V1}


def test_deploy_abort_rolls_a_canary_back_from_another_process(world):
    _configure(world.home)
    (world.home / "greenlight.toml").write_text(SETTINGS.format(extra="").replace("step_wait_seconds = 3",
                                                                                  "step_wait_seconds = 600"))
    world.start()
    world.clients()
    approve = subprocess.Popen([sys.executable, "-m", "greenlight.cli", "models", "approve", "2"],
                               env=os.environ | {"GREENLIGHT_HOME": str(world.home)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + BOUND_SECONDS
    while time.monotonic() < deadline and not any(v == V2 for _, _, v in world.answers[-200:]):
        time.sleep(0.1)  # until the canary takes its share
    out = greenlight(world.home, "deploy", "--abort").stdout
    assert "endpoint: rolled back: aborted by greenlight deploy --abort; v1 still serves" in out, out
    followed, _ = approve.communicate(timeout=BOUND_SECONDS)
    ended = world.settle()
    assert "not retried: v2 was rolled back" in followed, followed
    assert [a for a in world.answers if a[1] != 200] == []
    assert {version for at, _, version in world.answers if at > ended} == {V1}
    row = json.loads(greenlight(world.home, "status", "--json").stdout)["targets"][0]
    assert row["rolled_back"]["reason"] == "aborted by greenlight deploy --abort" and row["rollout"] is None
    assert "nothing to abort" in greenlight(world.home, "deploy", "--abort").stdout
