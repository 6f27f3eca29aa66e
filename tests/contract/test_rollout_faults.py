"""Faults during a progressive rollout on the local endpoint (issue 22): a SIGKILL of the reconcile at random
instants leaves only the old version or the verified new one serving, at the weights the status records (or,
killed between the record and the shift, at the step before, which the next reconcile repairs), and the
rollout still ends.

GIVEN the local endpoint world (tests/support/deploy_env.py, a real server with its traffic split) serving v1,
v2 approved and a linear policy with short steps, WHEN reconciles in a subprocess are killed at seeded random
instants (tests/support/approval_worker.py pauses at every step boundary), THEN after each kill and after the
next in-process reconcile the rules hold.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from deploy.endpoint.split import read_rollout

ENDPOINT = [("local", "endpoint")]
STEPS = (25.0, 50.0, 75.0, 100.0)


def _split(env) -> float:
    """The new version's share the server routes by now (0 without a rollout record)."""
    record = read_rollout(env.home, env.group, "endpoint")
    return 0.0 if record is None else float(record["percent"])


def _recorded(env, v2: int) -> float | None:
    """The new version's share the status store's intent records (None: no rollout in progress)."""
    intent = env.reconciler().status.load_intent(env.target.name)
    if not intent or not intent.get("rollout"):
        return None
    return float(intent["rollout"]["weights"].get(f"v{v2}", 0.0))


@pytest.mark.parametrize("deploy_env", ENDPOINT, ids=["local-endpoint"], indirect=True)
def test_sigkill_mid_rollout_serves_only_verified_versions_at_the_recorded_weights(deploy_env, monkeypatch):
    for name, value in (("TRAFFIC", "linear"), ("LINEAR_STEP_PERCENT", "25"), ("STEP_WAIT_SECONDS", "0.3"),
                        ("BAKE_SECONDS", "0.3"), ("MIN_REQUESTS", "10000")):
        monkeypatch.setenv(f"GREENLIGHT_ENDPOINT_{name}", value)  # the worker processes inherit them
    env = deploy_env
    v1, v2 = env.register(), env.register(model="b")
    env.approve(v1)
    assert env.handle(env.event(v1, "Approved"))["ok"] and env.served_version() == v1  # nothing before: at once
    env.approve(v2)
    rng = random.Random(22)
    kills, probed = [], False
    for _ in range(8):
        worker = subprocess.Popen([sys.executable, "-m", "tests.support.approval_worker",
                                   json.dumps({**env.worker_spec(), "pause": 0.1})],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
        time.sleep(rng.uniform(0.0, 0.5))
        worker.send_signal(signal.SIGKILL)
        out, _ = worker.communicate(timeout=60)
        steps = [line.split()[1] for line in out.splitlines() if line.startswith("step ")]
        kills.append(steps[-1] if steps else "before the first step")
        probed = probed or "probed" in steps
        served = {env.served_version() for _ in range(20)}
        assert served <= {v1, v2}, (kills, served)
        if v2 in served:  # only a version that passed its probe ever takes a share
            assert probed, (kills, served)
        recorded = _recorded(env, v2)
        if recorded is not None and recorded < 100.0:  # shifting: the record's share, or the step before it
            before = ([0.0, *STEPS])[STEPS.index(recorded)]
            assert _split(env) in (recorded, before), (kills, recorded, _split(env))
        report = env.reconciler().reconcile()  # takes the rollout up (or undoes a half-done stage) and repairs
        assert all(r.ok for r in report.results), report.to_dict()
        recorded = _recorded(env, v2)
        probed = probed or recorded is not None  # a rollout is recorded only after its version's probe passed
        if recorded is not None and recorded < 100.0:
            assert _split(env) == recorded, (kills, recorded, _split(env))
        time.sleep(0.3)  # the step's time passes
    deadline = time.monotonic() + 60
    while _recorded(env, v2) is not None and time.monotonic() < deadline:
        env.reconciler().reconcile()
        time.sleep(0.1)
    assert _recorded(env, v2) is None and _split(env) == 0.0 and env.served_version() == v2, kills
    assert len(set(kills)) > 1, f"every kill landed at the same step: {kills}"
