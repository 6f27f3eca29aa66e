"""One contract for every endpoint target adapter (deploy.engine.protocol.DeployTarget), each mode.

GIVEN a deployment world (tests/support/deploy_env.py: local adapters with a real endpoint over
HTTP, or the AWS adapter against moto's HTTP server) WHEN the target is driven directly THEN
observe, deploy (smoke-tested), a failed update, a disagreeing smoke test and stop behave the same.
"""

from __future__ import annotations

import pytest

from deploy.engine.model import Release
from deploy.engine.smoke import SMOKE_KEY, SmokeTest
from greenlight.errors import DeploymentFailed
from tests.support.deploy_env import deploy


def release(env, version: int) -> Release:
    return Release.from_version(env.registry.get(env.group, version), SMOKE_KEY)


def smoke(env, version: int) -> SmokeTest:
    rel = release(env, version)
    return SmokeTest.from_json(env.ws.store.get_bytes(rel.smoke_uri) if env.mode == "local"
                               else env.read(rel.smoke_uri), rel.smoke_uri)


def test_a_fresh_target_runs_nothing(deploy_env):
    observed = deploy_env.target.observe()
    assert observed.version is None and not observed.active
    assert deploy_env.served_version() is None


def test_deploy_serves_the_version_and_observe_reports_it(deploy_env):
    v1 = deploy_env.register()
    message = deploy(deploy_env.target, release(deploy_env, v1), smoke(deploy_env, v1))
    assert "v1" in message and "smoke test passed" in message
    assert deploy_env.target.observe().version == v1
    assert deploy_env.served_version() == v1
    v2 = deploy_env.register(model="b")
    deploy(deploy_env.target, release(deploy_env, v2), smoke(deploy_env, v2))
    assert (deploy_env.target.observe().version, deploy_env.served_version()) == (v2, v2)


def test_observe_makes_no_write_call(deploy_env):
    v1 = deploy_env.register()
    deploy(deploy_env.target, release(deploy_env, v1), smoke(deploy_env, v1))
    before = deploy_env.target_writes()
    for _ in range(3):
        deploy_env.target.observe()
    assert deploy_env.target_writes() == before


@pytest.mark.parametrize("kind, words", [("broken", r"(?i)load|update|fail"), ("disagree", "smoke")])
def test_a_failed_update_keeps_the_previous_version_serving(deploy_env, kind, words):
    v1 = deploy_env.register()
    deploy(deploy_env.target, release(deploy_env, v1), smoke(deploy_env, v1))
    bad = deploy_env.register(kind, model="b")
    with pytest.raises(DeploymentFailed, match=words) as failed:
        deploy(deploy_env.target, release(deploy_env, bad), smoke(deploy_env, bad))
    assert "v1 still serves" in str(failed.value)
    assert deploy_env.target.observe().version == v1
    assert deploy_env.served_version() == v1


def test_a_failed_first_deployment_leaves_nothing_deployed(deploy_env):
    bad = deploy_env.register("disagree")
    with pytest.raises(DeploymentFailed, match="smoke"):
        deploy(deploy_env.target, release(deploy_env, bad), smoke(deploy_env, bad))
    assert deploy_env.target.observe().version is None
    assert deploy_env.served_version() is None


def test_stop_takes_the_version_down(deploy_env):
    v1 = deploy_env.register()
    deploy(deploy_env.target, release(deploy_env, v1), smoke(deploy_env, v1))
    assert "stopped" in deploy_env.target.stop()
    observed = deploy_env.target.observe()
    assert observed.version is None or not observed.active
    assert deploy_env.served_version() is None


def test_prune_never_removes_the_live_or_previous_version(deploy_env):
    versions = [deploy_env.register(model=m) for m in ("a", "b", "a", "b")]
    for v in versions:
        deploy(deploy_env.target, release(deploy_env, v), smoke(deploy_env, v))
    deploy_env.target.prune(frozenset({versions[-1], versions[-2]}))
    assert deploy_env.target.observe().version == versions[-1]
    assert deploy_env.served_version() == versions[-1]
    # the previous version can still be deployed again (rollback) after pruning
    deploy(deploy_env.target, release(deploy_env, versions[-2]), smoke(deploy_env, versions[-2]))
    assert deploy_env.served_version() == versions[-2]
