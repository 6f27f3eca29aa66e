"""The SageMaker Serverless endpoint target (deploy.endpoint.aws) against moto's HTTP server.

moto is extended in this process before its server starts (tests/support/moto_sagemaker.py, installed
by the `moto_server` fixture): it lacks UpdateEndpoint, which is added with a way to make an update or
a creation fail with a FailureReason (per model package, or per endpoint name), and its InvokeEndpoint
answers canned results, which these tests post to moto's `/moto-api/static/sagemaker/endpoint-results`
(agreeing and disagreeing smoke answers, one per invocation: the verification endpoint's probe first,
then the live endpoint's confirmation). Waits use an injected clock and a sleep that does not sleep;
every call the target makes is recorded through botocore's event system, so "no write call" is
checked, not assumed. docs/decisions/*-verify-before-switch.md says why a version is probed on a
verification endpoint before UpdateEndpoint.
"""

from __future__ import annotations

import json

import pytest

from deploy.config import EndpointConfig
from deploy.endpoint.aws import CONFIG_TAG, PREVIOUS_TAG, SageMakerEndpointTarget
from deploy.endpoint.aws_names import config_name, model_name
from deploy.engine.model import Release
from deploy.engine.smoke import SmokeTest
from greenlight.errors import DeploymentFailed
from greenlight.registry import SageMakerModelRegistry
from tests.contract.conftest import REGION, aws_client
from tests.support.moto_sagemaker import FAKE, post_results
from tests.support.deploy_env import deploy

GROUP = "churn"
ROLE = "arn:aws:iam::123456789012:role/greenlight-endpoint"
SMOKE = SmokeTest("1,2\n3,4\n", (1.5, 2.5))
AGREE = {"Body": json.dumps({"predictions": [1.5, 2.5]}), "ContentType": "application/json"}
DISAGREE = {"Body": json.dumps({"predictions": [1.5, 2.75]}), "ContentType": "application/json"}
READS = ("Describe", "List", "Get", "Search")


class FakeTime:
    """A monotonic clock that moves only when the code under test sleeps."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


class World:
    def __init__(self, url: str):
        self.url = url
        self.sm, self.runtime = aws_client("sagemaker", url), aws_client("sagemaker-runtime", url)
        self.registry = SageMakerModelRegistry(aws_client("sagemaker", url))  # not the target's client
        self.time = FakeTime()
        self.calls: list[str] = []
        for client, service in ((self.sm, "sagemaker"), (self.runtime, "sagemaker-runtime")):
            client.meta.events.register(f"before-call.{service}.*", lambda model, **_: self.calls.append(model.name))

    def target(self, group: str = GROUP, **settings) -> SageMakerEndpointTarget:
        settings.setdefault("update_timeout_seconds", 30)
        return SageMakerEndpointTarget(self.sm, self.runtime, EndpointConfig(**settings), group, ROLE, poll=10,
                                       sleep=self.time.sleep, clock=self.time.clock)

    def release(self, group: str = GROUP) -> Release:
        version = self.registry.create_model_package({
            "ModelPackageGroupName": group,
            "InferenceSpecification": {"Containers": [{"Image": "sklearn:1.9-0", "ModelDataUrl": "s3://b/m.tar.gz"}],
                                       "SupportedContentTypes": ["text/csv"],
                                       "SupportedResponseMIMETypes": ["application/json"]}})
        return Release(group, version.version, version.arn, version.model_data_url, version.image)

    def answer(self, *results: dict) -> None:
        post_results(self.url, list(results), REGION)

    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(READS)]

    def endpoint(self, name: str = GROUP) -> dict:
        return self.sm.describe_endpoint(EndpointName=name)

    def tags(self, arn: str) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in self.sm.list_tags(ResourceArn=arn)["Tags"]}

    def deployed(self, target: SageMakerEndpointTarget, *releases: Release) -> None:
        for release in releases:
            self.answer(AGREE, AGREE)  # the probe on the verification endpoint, the confirmation after the switch
            deploy(target, release, SMOKE)

    def endpoints(self) -> set[str]:
        return {e["EndpointName"] for e in self.sm.list_endpoints()["Endpoints"]}


@pytest.fixture
def world(moto_endpoint) -> World:
    return World(moto_endpoint)


DONE = "smoke test passed at verification endpoint churn-verify; passed again at endpoint churn after the switch"


def test_deploy_probes_a_verification_endpoint_then_creates_the_tagged_serverless_endpoint(world):
    target = world.target(memory_mb=3072, max_concurrency=7, provisioned_concurrency=2)
    v1 = world.release()
    world.answer(AGREE, AGREE)
    message = deploy(target, v1, SMOKE)

    assert message == f"nothing -> v1 ({DONE})"
    endpoint = world.endpoint()
    assert endpoint["EndpointStatus"] == "InService"
    serverless = {"MemorySizeInMB": 3072, "MaxConcurrency": 7, "ProvisionedConcurrency": 2}
    assert endpoint["ProductionVariants"][0]["CurrentServerlessConfig"] == serverless
    config = world.sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert config["ProductionVariants"][0]["ServerlessConfig"] == serverless
    model = world.sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    assert model["Containers"] == [{"ModelPackageName": v1.package_arn}] and model["ExecutionRoleArn"] == ROLE
    for arn in (model["ModelArn"], config["EndpointConfigArn"]):
        assert world.tags(arn) == {"greenlight:group": GROUP, "greenlight:model-version": "1"}
    assert world.tags(endpoint["EndpointArn"]) == {"greenlight:group": GROUP, "greenlight:model-version": "1",
                                                   CONFIG_TAG: endpoint["EndpointConfigName"]}
    # the version answers on its own endpoint (same config) before the live endpoint exists; then the
    # verification endpoint goes
    assert world.writes() == ["CreateModel", "CreateEndpointConfig", "CreateEndpoint", "InvokeEndpoint",
                              "CreateEndpoint", "InvokeEndpoint", "DeleteEndpoint", "AddTags"]
    assert world.endpoints() == {GROUP}
    observed = target.observe()
    assert (observed.version, observed.active) == (1, True)
    assert observed.detail["serverless"] == serverless and observed.detail["status"] == "InService"


def test_an_update_moves_the_endpoint_and_records_the_previous_config(world):
    target = world.target()
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    first = world.endpoint()["EndpointConfigName"]
    world.answer(AGREE, AGREE)
    assert deploy(target, v2, SMOKE) == f"v1 -> v2 ({DONE})"
    endpoint = world.endpoint()
    assert endpoint["EndpointConfigName"] != first and FAKE.updates == 1
    assert world.tags(endpoint["EndpointArn"])[PREVIOUS_TAG] == first
    assert target.observe().version == 2 and world.endpoints() == {GROUP}


def test_observe_makes_only_reads_and_a_converged_replay_writes_nothing(world):
    target = world.target()
    world.deployed(target, world.release())
    world.calls.clear()
    for _ in range(3):
        assert target.observe().version == 1
    target.prune(frozenset({1}))
    assert world.calls and world.writes() == []


def test_deploying_the_same_version_again_finds_what_exists(world):
    target = world.target()
    v1 = world.release()
    world.deployed(target, v1)
    world.calls.clear()
    world.deployed(target, v1)  # e.g. a reconcile that died before tagging, replayed
    assert world.writes() == ["CreateEndpoint", "InvokeEndpoint", "InvokeEndpoint", "DeleteEndpoint", "AddTags"], \
        "a replay created or updated the live endpoint, a model or a config again"
    assert len(world.sm.list_models()["Models"]) == 1
    assert len(world.sm.list_endpoint_configs()["EndpointConfigs"]) == 1


def test_changed_serverless_settings_make_a_new_config_for_the_same_model(world):
    v1 = world.release()
    world.deployed(world.target(), v1)
    world.calls.clear()
    world.deployed(world.target(memory_mb=4096), v1)
    assert world.writes() == ["CreateEndpointConfig", "CreateEndpoint", "InvokeEndpoint", "UpdateEndpoint",
                              "InvokeEndpoint", "DeleteEndpoint", "AddTags"]
    assert world.endpoint()["ProductionVariants"][0]["CurrentServerlessConfig"]["MemorySizeInMB"] == 4096


def test_a_version_that_cannot_start_fails_on_the_verification_endpoint_and_never_reaches_the_live_one(world):
    target = world.target()
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    before = world.endpoint()["EndpointConfigName"]
    world.calls.clear()
    FAKE.fail(v2.package_arn, "CannotStartContainerError: the model server did not answer /ping")
    with pytest.raises(DeploymentFailed) as failed:
        deploy(target, v2, SMOKE)
    message = str(failed.value)
    assert message.startswith("v2 (churn-v2-") and "did not start on verification endpoint churn-verify: " \
        "CannotStartContainerError: the model server did not answer /ping (status Failed); v1 still serves" in message
    endpoint = world.endpoint()
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", before)
    assert FAKE.updates == 0 and "InvokeEndpoint" not in world.calls, "the live endpoint was touched"
    assert (target.observe().version, target.observe().active) == (1, True) and world.endpoints() == {GROUP}


def test_a_disagreeing_probe_never_touches_the_live_endpoint(world):
    target = world.target()
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    before = world.endpoint()["EndpointConfigName"]
    world.answer(DISAGREE)
    with pytest.raises(DeploymentFailed, match=r"^smoke test at endpoint churn-verify: 1 of 2 smoke predictions "
                                               r"differ.*row 1: got 2\.75, recorded 2\.5; v1 still serves$"):
        deploy(target, v2, SMOKE)
    endpoint = world.endpoint()
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", before)
    assert FAKE.updates == 0 and world.tags(endpoint["EndpointArn"])[CONFIG_TAG] == before
    assert target.observe().version == 1 and world.endpoints() == {GROUP}


def test_a_failed_update_leaves_the_previous_config_serving_and_names_the_reason(world):
    target = world.target()
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    before = world.endpoint()["EndpointConfigName"]
    FAKE.fail_endpoint(GROUP, "capacity: no serverless capacity for AllTraffic")  # SageMaker keeps the old config
    world.answer(AGREE)
    with pytest.raises(DeploymentFailed, match=r"the update of endpoint churn to v2 .* failed: capacity: no "
                                               r"serverless capacity for AllTraffic \(status InService on churn-v1-.*; "
                                               r"v1 still serves$"):
        deploy(target, v2, SMOKE)
    endpoint = world.endpoint()
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", before)
    assert (target.observe().version, target.observe().active) == (1, True)


def test_an_update_ending_update_rollback_failed_is_returned_to_the_previous_config(world):
    target = world.target()
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    before = world.endpoint()["EndpointConfigName"]
    FAKE.fail_endpoint(GROUP, "rollback of AllTraffic failed", status="UpdateRollbackFailed")
    world.answer(AGREE)
    with pytest.raises(DeploymentFailed, match="rollback of AllTraffic failed.*UpdateRollbackFailed.*; v1 still serves"):
        deploy(target, v2, SMOKE)
    assert world.endpoint()["EndpointConfigName"] == before and FAKE.updates == 2


def test_an_update_ending_failed_reports_that_the_return_failed_too(world):
    target = world.target()
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    FAKE.fail_endpoint(GROUP, "capacity unavailable", status="Failed")
    world.answer(AGREE)
    # SageMaker left it Failed on the v1 config: nothing to return to, and the error says it serves nothing
    with pytest.raises(DeploymentFailed, match=r"capacity unavailable \(status Failed on churn-v1-\w+\); it stays on "
                                               r"v1, not serving$"):
        deploy(target, v2, SMOKE)
    observed = target.observe()  # an odd state, reported: it serves nothing
    assert (observed.version, observed.active, observed.detail["status"]) == (1, False, "Failed")
    assert observed.detail["failure_reason"] == "capacity unavailable"
    FAKE.failing_endpoints.clear()
    world.deployed(target, v1)  # the next deployment replaces the failed endpoint
    assert (target.observe().version, target.observe().active) == (1, True)


def test_a_disagreeing_confirmation_after_the_switch_returns_the_endpoint_to_the_previous_config(world):
    target = world.target()
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    before = world.endpoint()["EndpointConfigName"]
    world.answer(AGREE, DISAGREE)  # the verification endpoint agreed; the live one, after the switch, did not
    with pytest.raises(DeploymentFailed, match=r"smoke test at endpoint churn after the switch: 1 of 2 smoke "
                                               r"predictions differ.*; v1 still serves$"):
        deploy(target, v2, SMOKE)
    endpoint = world.endpoint()
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == ("InService", before)
    assert FAKE.updates == 2  # to v2, and back
    assert world.tags(endpoint["EndpointArn"])[CONFIG_TAG] == before
    assert target.observe().version == 1 and world.endpoints() == {GROUP}


def test_a_failed_first_deployment_leaves_no_endpoint(world):
    target = world.target()
    world.answer(DISAGREE)
    with pytest.raises(DeploymentFailed, match="nothing was deployed before, so nothing is"):
        deploy(target, world.release(), SMOKE)
    assert target.observe().version is None and target.observe().detail["status"] == "absent"
    assert world.endpoints() == set()


def test_a_failed_creation_is_deleted_and_reported(world):
    target = world.target()
    v1 = world.release()
    FAKE.fail_endpoint(GROUP, "image not found")
    world.answer(AGREE)
    with pytest.raises(DeploymentFailed, match=r"image not found \(status Failed on churn-v1-.*; nothing was deployed "
                                               "before"):
        deploy(target, v1, SMOKE)
    assert target.observe().detail["status"] == "absent" and world.endpoints() == set()


def test_waits_are_bounded_by_the_update_timeout(world):
    target = world.target(update_timeout_seconds=30)
    v1, v2 = world.release(), world.release()
    FAKE.settle_after(2)
    world.deployed(target, v1)  # the verification endpoint, then the endpoint: Creating for two polls each
    assert world.time.sleeps == [10, 10, 10, 10]
    world.time.sleeps.clear()
    FAKE.settle_after(100)
    with pytest.raises(DeploymentFailed, match="churn-verify is still Creating after 30 s"):
        deploy(target, v2, SMOKE)
    assert world.time.sleeps == [10, 10, 10]
    assert "InvokeEndpoint" not in world.calls[-5:] and FAKE.updates == 0


def test_an_endpoint_left_on_an_unverified_config_is_returned_when_its_probe_fails(world):
    target = world.target()
    v1, v2 = world.release(), world.release()
    world.deployed(target, v1)
    # GIVEN a reconcile that died between UpdateEndpoint and its confirmation
    unverified = config_name(GROUP, 2, target.aws.ensure_model(v2, ROLE), target.config)
    target.aws.ensure_config(v2, model_name(GROUP, 2, v2.package_arn, ROLE), target.config)
    world.sm.update_endpoint(EndpointName=GROUP, EndpointConfigName=unverified)
    observed = target.observe()
    assert (observed.version, observed.active, observed.detail["verified"]) == (2, False, False)
    # WHEN it is deployed again and the probe disagrees THEN it returns to the last verified config
    world.answer(DISAGREE)
    with pytest.raises(DeploymentFailed, match="; v1 serves$"):
        deploy(target, v2, SMOKE)
    assert target.observe().version == 1 and target.observe().active


def test_observe_refuses_an_endpoint_greenlight_did_not_make(world):
    world.sm.create_model(ModelName="their-model", ExecutionRoleArn=ROLE, Containers=[{"Image": "x"}])
    world.sm.create_endpoint_config(EndpointConfigName="their-config", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "their-model",
        "ServerlessConfig": {"MemorySizeInMB": 1024, "MaxConcurrency": 1}}])
    world.sm.create_endpoint(EndpointName=GROUP, EndpointConfigName="their-config")
    with pytest.raises(DeploymentFailed, match="not a Greenlight deployment of churn"):
        world.target().observe()


def test_observe_falls_back_to_the_name_when_the_model_has_no_tags(world):
    target = world.target()
    v1 = world.release()
    world.deployed(target, v1)
    model = model_name(GROUP, 1, v1.package_arn, ROLE)
    world.sm.delete_tags(ResourceArn=world.sm.describe_model(ModelName=model)["ModelArn"],
                         TagKeys=["greenlight:model-version"])
    assert target.observe().version == 1


def test_stop_deletes_the_endpoint_and_keeps_models_and_configs(world):
    target = world.target()
    world.deployed(target, world.release())
    assert target.stop() == "v1 -> stopped (endpoint churn deleted; its models and configs are kept)"
    assert target.observe().version is None and not target.observe().active
    assert len(world.sm.list_models()["Models"]) == 1
    assert target.stop() == "nothing to stop: no endpoint"


def _names(world, group: str = GROUP) -> tuple[set[int], set[int]]:
    from deploy.endpoint.aws_names import parse_name

    configs = {parse_name(group, c["EndpointConfigName"]) for c in world.sm.list_endpoint_configs()["EndpointConfigs"]}
    models = {parse_name(group, m["ModelName"]) for m in world.sm.list_models()["Models"]}
    return {p[0] for p in configs if p}, {p[0] for p in models if p}


def test_retention_keeps_live_previous_kept_and_the_newest_others(world):
    target = world.target(retention=1)
    releases = [world.release() for _ in range(5)]
    world.deployed(target, *releases)  # v5 live, v4 previous
    theirs = world.target(group="churn-eu")  # another group whose names start alike
    world.deployed(theirs, world.release("churn-eu"))
    world.calls.clear()

    pruned = target.prune(frozenset({5}))

    assert sorted(p.split()[-1] for p in pruned) == ["(v1)", "(v1)", "(v2)", "(v2)"]
    assert _names(world) == ({3, 4, 5}, {3, 4, 5})
    assert _names(world, "churn-eu") == ({1}, {1})
    assert sorted(w for w in world.writes()) == ["DeleteEndpointConfig"] * 2 + ["DeleteModel"] * 2
    assert target.prune(frozenset({5})) == []
    # the previous version is kept even with no retention and nothing in keep, and can be deployed again
    assert world.target(retention=0).prune(frozenset()) == [
        f"endpoint config {config_name(GROUP, 3, model_name(GROUP, 3, releases[2].package_arn, ROLE), target.config)} (v3)",
        f"model {model_name(GROUP, 3, releases[2].package_arn, ROLE)} (v3)"]
    assert _names(world) == ({4, 5}, {4, 5})
    world.deployed(target, releases[3])
    assert target.observe().version == 4


def test_retention_never_deletes_a_version_in_keep(world):
    target = world.target(retention=0)
    releases = [world.release() for _ in range(4)]
    world.deployed(target, *releases)
    target.prune(frozenset({1}))
    assert _names(world) == ({1, 3, 4}, {1, 3, 4})
