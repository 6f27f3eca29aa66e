"""Progressive delivery over the online worlds (issue 22): the same rules on the local endpoint and the local Lambda
front, through their real servers, and on the Lambda on AWS (moto).

GIVEN a local world (tests/support/deploy_env.py) serving v1 and a canary policy with short steps, WHEN v2 is
approved and the engine reconciles (as `greenlight models approve` does locally, following the rollout), THEN
requests reach both versions during the canary, the rollout reaches 100% and ends on v2, the counts the engine
judged are the server's own; and `abort` puts v1 back at once and holds v2 until it is approved again.
"""

from __future__ import annotations

import time

import pytest

from deploy.endpoint.split import read_rollout

# aws-lambda: moto and the test's image invoker (tests/support/lambda_aws.py), which routes by the alias's weights
# and publishes each invocation's CloudWatch metrics, as Lambda does. aws-endpoint is not here: SageMaker runs
# that canary itself (docs/decisions/0052), and moto's stand-in does not split an endpoint's traffic.
ONLINE = [("local", "endpoint"), ("local", "lambda"), ("aws", "lambda")]
online_worlds = pytest.mark.parametrize("deploy_env", ONLINE, ids=[f"{m}-{k}" for m, k in ONLINE], indirect=True)


@pytest.fixture
def canary(monkeypatch, deploy_env):
    section = deploy_env.kind.upper()
    for name, value in (("TRAFFIC", "canary"), ("CANARY_PERCENT", "50"), ("STEP_WAIT_SECONDS", "0.5"),
                        ("BAKE_SECONDS", "0.5"), ("MIN_REQUESTS", "5")):
        monkeypatch.setenv(f"GREENLIGHT_{section}_{name}", value)
    env = deploy_env
    v1, v2 = env.register(), env.register(model="b")
    env.approve(v1)
    assert env.handle(env.event(v1, "Approved"))["ok"] and env.served_version() == v1
    env.approve(v2)
    return env, v1, v2


@online_worlds
def test_a_healthy_canary_shares_the_traffic_then_reaches_v2(canary):
    env, v1, v2 = canary
    reconciler = env.reconciler()
    [first] = reconciler.reconcile().results
    assert first.ok and first.in_progress and first.rollout["weights"] == {f"v{v2}": 50.0, f"v{v1}": 50.0}
    deadline = time.monotonic() + 30
    seen: set = set()
    while seen != {v1, v2} and time.monotonic() < deadline:  # until the share has answered (a bound, not a timing)
        seen.add(env.served_version())
    assert seen == {v1, v2}
    results = []
    while time.monotonic() < deadline:
        [result] = reconciler.reconcile().results
        results.append(result)
        if not result.in_progress:
            break
        env.served_version()
        time.sleep(0.05)
    assert results[-1].ok and "canary rollout complete" in results[-1].message, results[-1]
    phases = [r.rollout["phase"] for r in results if r.rollout]
    assert "baking" in phases and {env.served_version() for _ in range(10)} == {v2}
    counted = max((r.rollout["counts"][f"v{v2}"]["requests"] for r in results if r.rollout), default=0)
    assert counted > 0  # the engine read the server's own counts
    assert read_rollout(env.home, env.group, env.kind) is None


@online_worlds
def test_abort_puts_v1_back_and_holds_v2_until_approved_again(canary):
    env, v1, v2 = canary
    reconciler = env.reconciler()
    assert reconciler.reconcile().results[0].in_progress
    [aborted] = reconciler.abort().results
    assert aborted.rolled_back == "aborted by greenlight deploy --abort"
    assert {env.served_version() for _ in range(20)} == {v1} and read_rollout(env.home, env.group, env.kind) is None
    [held] = reconciler.reconcile().results
    assert held.ok and "not retried: v2 was rolled back" in held.message and env.served_version() == v1
    env.reject(v2)
    env.approve(v2)  # approved again: its LastModifiedTime moved
    assert reconciler.reconcile().results[0].in_progress


@pytest.mark.parametrize("deploy_env", [("local", "lambda")], ids=["local-lambda"], indirect=True)
def test_abort_returns_only_once_no_request_the_split_routed_to_v2_still_runs(canary):
    """GIVEN a canary on the local Lambda front and a Function URL request it routed to v2, still running, WHEN the
    rollout is aborted, THEN the abort returns only after that request answered (/ping reports `split_in_flight`)."""
    import threading

    env, v1, v2 = canary
    reconciler = env.reconciler()
    assert reconciler.reconcile().results[0].in_progress
    front, order = env.endpoint, []
    entered, release = threading.Event(), threading.Event()
    invoke = front.invoke

    def held(version, event):  # the first request routed to v2 waits until the test releases it
        if version.model_version == v2 and not entered.is_set():
            entered.set()
            release.wait(30)
            answer = invoke(version, event)
            order.append("v2 answered")
            return answer
        return invoke(version, event)

    front.invoke = held
    client = threading.Thread(target=lambda: [env.served_version() for _ in range(200) if not entered.is_set()])
    client.start()
    assert entered.wait(30), "no request reached v2's share"
    aborting = threading.Thread(target=lambda: (reconciler.abort(), order.append("abort returned")))
    aborting.start()
    aborting.join(1.0)  # a bound: without the wait, the abort returns at once while v2's request still runs
    release.set()
    aborting.join(30)
    client.join(30)
    assert order == ["v2 answered", "abort returned"]
    assert {env.served_version() for _ in range(20)} == {v1}
