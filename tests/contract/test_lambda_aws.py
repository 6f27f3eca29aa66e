"""The Lambda target's AWS adapter (deploy.function.aws) against moto's HTTP server and a real registry.

moto serves Lambda (container-image functions, versions, aliases, reserved concurrency), ECR's API, S3
and IAM. It is extended in this process (tests/support/lambda_aws.py, installed by the `moto_server`
fixture): its PublishVersion shared the code of every version with $LATEST (fixed), and its
UpdateFunctionCode always succeeds (an image can be made to end `Failed` with a reason code). moto
cannot invoke an image function, so the smoke test's Invoke is done in this process by an injected
invoker that pulls the version's image by digest from the loopback registry and runs the image's own
handler (src/lambda_function.handle) on the image's model. The OCI pushes go to a real docker-registry
on loopback standing in for ECR's registry API (moto does not serve it), each tagged manifest mirrored
into moto's ECR. Waits use a fake clock and a sleep that does not sleep; every Lambda and ECR call the
target makes is recorded, so "no write call" is checked, not assumed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.engine.model import Release
from deploy.engine.smoke import SmokeTest
from deploy.function.model import VersionRecord, image_digest
from greenlight.errors import ConfigurationError, DeploymentFailed, NotFoundError
from tests.contract.conftest import aws_client
from tests.support.lambda_aws import FAKE_LAMBDA
from tests.support.lambda_world import BASE, STACK_VARIABLE, LambdaAwsWorld
from tests.support.deploy_env import deploy

GROUP = "scenario-models"


@pytest.fixture
def world(moto_endpoint, lambda_registry, tmp_path):
    w = LambdaAwsWorld(moto_endpoint, lambda_registry.url, tmp_path, memory_mb=3538)
    try:
        yield w
    finally:
        w.close()


def release(world: LambdaAwsWorld, models, version: int, model: str = "a", *, broken: bool = False,
            uri: str | None = None) -> Release:
    key = f"{GROUP}/v{version}/model.tar.gz"
    if uri is None:
        uri = (world.upload_broken(models[f"{model}_tar"], key, f"v{version}") if broken
               else world.upload(key, models[f"{model}_tar"].read_bytes()))
    return Release(GROUP, version, f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/{version}",
                   uri, "sklearn:1.9-0")


def smoke(models, model: str = "a", off: float = 0.0) -> SmokeTest:
    test = SmokeTest.from_json(models[f"{model}_smoke"].read_text(), "smoke.json")
    return SmokeTest(test.body, tuple(p + off for p in test.predictions))


def test_a_first_deploy_publishes_by_digest_smoke_tests_that_version_then_creates_the_alias(world, models):
    target = world.target()
    message = deploy(target, release(world, models, 1), smoke(models))
    assert message.startswith("nothing -> v1 (function version 1, image sha256:") and "alias live moved" in message
    version = world.lam.get_function(FunctionName=world.function, Qualifier="1")
    digest = image_digest(version["Code"]["ImageUri"])
    assert version["Code"]["ImageUri"] == f"{world.registry_url.removeprefix('http://')}/{world.repository}@{digest}"
    config = version["Configuration"]
    assert VersionRecord.parse(config["Description"]) == VersionRecord(GROUP, 1, digest)
    assert config["MemorySize"] == 3538 and config["Environment"]["Variables"] == {
        **STACK_VARIABLE, "GREENLIGHT_PREDICT_THREADS": "2", "GREENLIGHT_MODEL_VERSION": f"{GROUP}/1"}
    assert world.tags()[f"{GROUP}-v1"] == digest and BASE in world.tags()
    # the order of writes: code, configuration, publish, then (after the smoke invoke of "1") the alias
    assert world.writes() == ["UpdateFunctionCode", "UpdateFunctionConfiguration", "PublishVersion", "CreateAlias"]
    assert world.invoker.executed == "1"
    assert world.alias()["FunctionVersion"] == "1"
    observed = target.observe()
    assert (observed.version, observed.active, observed.detail["image_digest"]) == (1, True, digest)
    assert json.loads(world.served()["body"])["predictions"]


def test_observe_and_a_replayed_deploy_of_what_runs_write_nothing_new(world, models):
    target = world.target()
    rel = release(world, models, 1)
    deploy(target, rel, smoke(models))
    world.calls.clear()
    pushed = world.registry_writes()
    for _ in range(3):
        target.observe()
    assert world.writes() == [] and world.registry_writes() == pushed
    # deploying the same version again finds its image and its version: only the alias is set again
    deploy(target, rel, smoke(models))
    assert world.writes() == ["UpdateAlias"] and world.registry_writes() == pushed


def test_a_failed_update_names_its_reason_code_and_never_publishes_or_moves_the_alias(world, models):
    target = world.target()
    deploy(target, release(world, models, 1), smoke(models))
    world.calls.clear()
    with pytest.raises(DeploymentFailed) as failed:
        deploy(target, release(world, models, 2, "b", broken=True), smoke(models, "b"))
    text = str(failed.value)
    assert "UpdateFunctionCode of scenario-models failed: LastUpdateStatus Failed (InvalidImage:" in text
    assert text.endswith("v1 still serves")
    assert "PublishVersion" not in world.writes() and world.alias()["FunctionVersion"] == "1"
    assert target.observe().version == 1
    # the next deploy of a good version updates the code again and succeeds
    assert "v1 -> v3" in deploy(target, release(world, models, 3, "b"), smoke(models, "b"))


def test_the_update_wait_is_bounded(world, models, monkeypatch):
    target = world.target(update_timeout=20.0)
    real = world.lam.get_function_configuration

    def in_progress(**kwargs):
        return {**real(**kwargs), "LastUpdateStatus": "InProgress"}

    monkeypatch.setattr(world.lam, "get_function_configuration", in_progress)
    with pytest.raises(DeploymentFailed, match=r"UpdateFunctionCode of scenario-models did not finish within 20 s "
                                               r"\(LastUpdateStatus InProgress\); nothing was deployed before"):
        deploy(target, release(world, models, 1), smoke(models))
    assert world.time.sleeps == [5.0] * 4  # polls every 5 s, never sleeps for real
    assert "CreateAlias" not in world.writes()


def test_a_disagreeing_smoke_test_keeps_the_alias_and_a_retry_reuses_the_version(world, models):
    target = world.target()
    deploy(target, release(world, models, 1), smoke(models))
    rel = release(world, models, 2, "b")
    for _ in range(2):
        world.calls.clear()
        with pytest.raises(DeploymentFailed, match=r"smoke test of scenario-models version 2 \(model v2\) failed: "
                                                   r"5 of 5 smoke predictions differ.*; v1 still serves"):
            deploy(target, rel, smoke(models, "b", off=1.0))
        assert world.alias()["FunctionVersion"] == "1"
    assert world.writes() == []  # the second try found version 2 published: no update, no publish
    assert target.observe().version == 1


def test_a_rollback_points_the_alias_back_at_the_version_that_holds_the_model(world, models):
    target = world.target()
    deploy(target, release(world, models, 1), smoke(models))
    deploy(target, release(world, models, 2, "b"), smoke(models, "b"))
    world.calls.clear()
    message = deploy(target, release(world, models, 1, uri=f"s3://greenlight-lambda-test/{GROUP}/v1/model.tar.gz"),
                            smoke(models))
    assert message.startswith("v2 -> v1 (function version 1,")
    assert world.writes() == ["UpdateAlias"]
    alias = world.alias()
    assert (alias["FunctionVersion"], alias["Description"]) == ("1", "greenlight: previous version 2")


def test_stop_throttles_and_a_deploy_removes_the_throttle_or_puts_it_back(world, models):
    target = world.target()
    deploy(target, release(world, models, 1), smoke(models))
    assert "v1 -> stopped (scenario-models throttled: reserved concurrency 0" in target.stop()
    observed = target.observe()
    assert (observed.version, observed.active, observed.detail["throttled"]) == (1, False, True)
    with pytest.raises(Exception, match="TooManyRequestsException"):
        world.served()
    with pytest.raises(DeploymentFailed, match="; it stays on v1, not serving$"):
        deploy(target, release(world, models, 2, "b"), smoke(models, "b", off=1.0))
    assert target.observe().detail["throttled"]
    assert "v1 -> v1" in deploy(target, release(world, models, 1, uri=f"s3://greenlight-lambda-test/{GROUP}/v1/"
                                                                 "model.tar.gz"), smoke(models))
    assert target.observe().active and world.served()["statusCode"] == 200


def test_retention_keeps_live_previous_kept_and_the_newest_and_their_images(world, models):
    target = world.target(retention=1)
    for v in range(1, 6):
        deploy(target, release(world, models, v, "ab"[v % 2]), smoke(models, "ab"[v % 2]))
    before = world.tags()
    pruned = target.prune(frozenset({5, 4}))
    assert pruned[:2] == ["function version 1 (model v1)", "function version 2 (model v2)"]
    versions = {v["Version"] for v in world.lam.list_versions_by_function(FunctionName=world.function)["Versions"]}
    assert versions == {"$LATEST", "3", "4", "5"}
    # model tags of v1 and v2 go; their images stay, because kept versions run them under other tags (two
    # models alternate: v1, v3, v5 are one image, v2 and v4 another); the base image's tag is never touched
    after = world.tags()
    assert set(after) == {BASE, f"{GROUP}-v3", f"{GROUP}-v4", f"{GROUP}-v5"}
    assert set(after.values()) == set(before.values())
    assert pruned[2:] == [f"model image tag {world.repository}:{GROUP}-v{v}" for v in (1, 2)]
    assert target.prune(frozenset({5, 4})) == []  # nothing more: no write
    assert world.served()["statusCode"] == 200 and world.alias()["FunctionVersion"] == "5"
    # the previous version (4) can still take the alias back (its image is there)
    assert deploy(target, release(world, models, 4, uri=f"s3://greenlight-lambda-test/{GROUP}/v4/model.tar.gz"),
                         smoke(models, "a")).startswith("v5 -> v4 (function version 4,")


def test_a_missing_function_or_model_is_one_clear_error(world, models, moto_endpoint, tmp_path):
    target = world.target()
    with pytest.raises(DeploymentFailed, match=r"cannot fetch v1's model s3://greenlight-lambda-test/nope.tar.gz: "
                                               r"no model at .*; nothing was deployed before"):
        deploy(target, release(world, models, 1, uri="s3://greenlight-lambda-test/nope.tar.gz"), smoke(models))
    world.lam.delete_function(FunctionName=world.function)
    with pytest.raises(NotFoundError, match="Lambda function scenario-models does not exist: the deploy stack "
                                            "creates it"):
        target.observe()


def test_an_image_for_another_architecture_is_refused_before_any_lambda_write(world, models):
    target = world.target(architecture="arm64")
    with pytest.raises(DeploymentFailed, match=r"cannot build v1's image on greenlight-inference/\w+:base-.*arm64"):
        deploy(target, release(world, models, 1), smoke(models))
    assert world.writes() == []


def test_the_composition_root_builds_the_target_from_the_configuration(moto_endpoint, monkeypatch, tmp_path):
    from deploy.image import base_tag
    from greenlight.stage_composition import _aws_lambda
    from greenlight.workspace import Workspace

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    ws = Workspace.open("aws", home=tmp_path, region="us-east-1")
    with pytest.raises(ConfigurationError, match=r"needs the ECR repository of its base image: set "
                                                 r"lambda.ecr_repository \(GREENLIGHT_LAMBDA_ECR_REPOSITORY\)"):
        _aws_lambda(ws, ws.deploy_config(), "greenlight-models", ws.client)
    monkeypatch.setenv("GREENLIGHT_LAMBDA_ECR_REPOSITORY", "greenlight-inference")
    monkeypatch.setenv("GREENLIGHT_LAMBDA_ARCHITECTURE", "arm64")
    monkeypatch.setenv("GREENLIGHT_LAMBDA_MEMORY_MB", "8845")
    target = _aws_lambda(ws, ws.deploy_config(group="fraud"), "fraud", ws.client)  # the implicit stage's key
    root = Path(__file__).resolve().parents[2]
    assert (target.function, target.alias, target.repository, target.memory_mb) == (
        "fraud", "live", "greenlight-inference", 8845)
    assert target.base_tag == base_tag(root, "linux/arm64") != base_tag(root, "linux/amd64")
    monkeypatch.setenv("GREENLIGHT_LAMBDA_BASE_IMAGE_TAG", "base-pinned")
    assert _aws_lambda(ws, ws.deploy_config(), "greenlight-models", ws.client).base_tag == "base-pinned"
    assert aws_client("lambda", moto_endpoint).list_functions()["Functions"] == []  # building it called nothing


def test_a_changed_memory_publishes_the_same_model_again_with_its_threads(world, models):
    deploy(world.target(), release(world, models, 1), smoke(models))
    smaller = world.target(memory_mb=1024)
    observed = smaller.observe()
    assert (observed.version, observed.active) == (1, False)
    assert "its memory is 3538 MB and GREENLIGHT_PREDICT_THREADS differ" in observed.detail["configuration_drift"]
    world.calls.clear()
    message = deploy(smaller, release(world, models, 1, uri=f"s3://greenlight-lambda-test/{GROUP}/v1/model.tar.gz"),
                             smoke(models))
    assert message.startswith("v1 -> v1 (function version 2,")
    assert world.writes() == ["UpdateFunctionConfiguration", "PublishVersion", "UpdateAlias"]  # same image: no code
    config = world.lam.get_function(FunctionName=world.function, Qualifier="2")["Configuration"]
    assert (config["MemorySize"], config["Environment"]["Variables"]["GREENLIGHT_PREDICT_THREADS"]) == (1024, "1")
    assert smaller.observe().active


# -- function states (Lambda function states; moto extended: tests/support/lambda_aws.py) ----------------

def test_a_rollback_to_an_inactive_version_wakes_it_then_smoke_tests_and_moves_the_alias(world, models):
    target = world.target()
    deploy(target, release(world, models, 1), smoke(models))
    deploy(target, release(world, models, 2, "b"), smoke(models, "b"))
    FAKE_LAMBDA.inactive(world.function, "1", wake=3)  # weeks idle: its next invoke fails, then it goes Pending
    world.calls.clear()
    message = deploy(target, release(world, models, 1, uri=f"s3://greenlight-lambda-test/{GROUP}/v1/model.tar.gz"),
                     smoke(models))
    assert message.startswith("v2 -> v1 (function version 1,")
    assert "smoke test passed (version 1 was Inactive, then Pending; Active after 15 s)" in message
    assert world.writes() == ["UpdateAlias"] and world.alias()["FunctionVersion"] == "1"
    assert world.time.sleeps == [5.0] * 3  # bounded polls on the fake clock
    assert world.served()["statusCode"] == 200 and target.observe().active


def test_a_published_version_still_pending_is_waited_for_before_its_smoke_test(world, models):
    FAKE_LAMBDA.publish_pending = 2
    message = deploy(world.target(), release(world, models, 1), smoke(models))
    assert "smoke test passed (version 1 was Pending; Active after" in message
    assert world.alias()["FunctionVersion"] == "1" and world.invoker.executed == "1"


def test_a_version_stuck_pending_fails_in_one_line_and_the_last_good_stays_live(world, models):
    target = world.target(update_timeout=20.0)
    deploy(target, release(world, models, 1), smoke(models))
    FAKE_LAMBDA.publish_pending = 10**9
    world.calls.clear()
    with pytest.raises(DeploymentFailed) as failed:
        deploy(target, release(world, models, 2, "b"), smoke(models, "b"))
    assert str(failed.value) == ("scenario-models version 2 did not become Active within 20 s (State Pending: Creating: "
                                 "The function version is Pending (made so by the test).); v1 still serves")
    assert "UpdateAlias" not in world.writes() and world.alias()["FunctionVersion"] == "1"
    assert world.served()["statusCode"] == 200


def test_a_failed_version_names_its_state_reason(world, models):
    target = world.target()
    deploy(target, release(world, models, 1), smoke(models))
    deploy(target, release(world, models, 2, "b"), smoke(models, "b"))
    FAKE_LAMBDA.failed(world.function, "1", "ImageDeleted", "The image of this version was deleted.")
    with pytest.raises(DeploymentFailed, match=r"^scenario-models version 1 cannot start: State Failed \(ImageDeleted: "
                                               r"The image of this version was deleted.\); v2 still serves$"):
        deploy(target, release(world, models, 1, uri=f"s3://greenlight-lambda-test/{GROUP}/v1/model.tar.gz"),
               smoke(models))
    assert world.alias()["FunctionVersion"] == "2"


def test_a_stuck_version_fails_only_its_target_in_a_reconcile(world, models):
    """GIVEN the Lambda target and another target WHEN v2's function version never leaves Pending THEN the
    report fails the Lambda target with the reason, `live` stays on v1, and the other target moves to v2."""
    import contextlib
    from dataclasses import replace as with_

    from deploy.engine.model import NothingApproved
    from deploy.engine.reconciler import Reconciler
    from greenlight.registry.model import ApprovalStatus
    from tests.unit.test_reconciler import FakeRegistry, FakeTarget, MemoryStatus, version

    target = world.target(update_timeout=20.0)
    other = FakeTarget("endpoint", serving=1)
    uris = {v: release(world, models, v, "ab"[v - 1]).model_data_url for v in (1, 2)}
    data = {f"s3://b/{v}/smoke.json": models[f"{'ab'[v - 1]}_smoke"].read_bytes() for v in (1, 2)}
    registry = FakeRegistry(with_(version(1), model_data_url=uris[1]))
    status = MemoryStatus()

    def reconcile():
        return Reconciler(GROUP, registry, [target, other], lock=contextlib.nullcontext, status=status,
                          read=data.__getitem__, policy=NothingApproved.KEEP).reconcile(trigger="test")

    assert reconcile().ok and world.alias()["FunctionVersion"] == "1"
    registry.versions.append(with_(version(2, ApprovalStatus.APPROVED), model_data_url=uris[2]))
    FAKE_LAMBDA.publish_pending = 10**9
    results = {r.target: r for r in reconcile().results}
    assert results["endpoint"].ok and other.serving == 2
    assert not results["lambda"].ok and results["lambda"].message == (
        "deploy failed: scenario-models version 2 did not become Active within 20 s (State Pending: Creating: "
        "The function version is Pending (made so by the test).); v1 still serves")
    assert world.alias()["FunctionVersion"] == "1" and world.served()["statusCode"] == 200


def test_under_a_deadline_a_pending_version_is_handed_over_and_continued_by_the_next_reconcile(world, models):
    from deploy.engine.deadline import Deadline, within
    from deploy.engine.transaction import DeploymentInProgress, Intent, MemoryIntents, Transaction

    target = world.target(update_timeout=300.0)
    deploy(target, release(world, models, 1), smoke(models))
    FAKE_LAMBDA.publish_pending = 10**9
    intents = MemoryIntents()
    rel = release(world, models, 2, "b")
    with within(Deadline.after(30, clock=world.time.clock)), pytest.raises(DeploymentInProgress) as handed:
        Transaction(intents).deploy(target, rel, smoke(models, "b"))
    assert str(handed.value) == ("in progress: probing v2 on lambda; previous v1, waiting for scenario-models version 2 "
                                 "to become Active (State Pending); v1 still serves; the next reconcile continues it")
    assert world.time.sleeps[-5:] == [5.0] * 5 and world.alias()["FunctionVersion"] == "1"
    FAKE_LAMBDA.pending(world.function, "2", 1)  # Lambda finishes creating it
    world.calls.clear()
    resumed = Intent.from_dict(intents.load_intent("lambda"))
    message = Transaction(intents).deploy(target, rel, smoke(models, "b"), resume=resumed)
    assert message.startswith("v1 -> v2 (function version 2,") and "continued from an earlier reconcile" in message
    assert world.writes() == ["UpdateAlias"]  # no second update or publish: continued at the probe
    assert world.alias()["FunctionVersion"] == "2" and intents.load_intent("lambda") is None
