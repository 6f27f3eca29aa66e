"""The endpoint target's SageMaker names (deploy.endpoint.aws_names): deterministic, valid, and parsed back."""

from __future__ import annotations

import re

import pytest

from deploy.config import EndpointConfig
from deploy.endpoint.aws_names import config_name, model_name, name_prefix, parse_name, serverless_config

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/7"
ROLE = "arn:aws:iam::123456789012:role/endpoint"


def test_the_same_version_and_settings_give_the_same_names():
    settings = EndpointConfig(memory_mb=3072, max_concurrency=7)
    model = model_name("churn", 7, ARN, ROLE)
    assert model == model_name("churn", 7, ARN, ROLE)
    assert config_name("churn", 7, model, settings) == config_name("churn", 7, model, EndpointConfig(
        memory_mb=3072, max_concurrency=7))
    assert model.startswith("churn-v7-m") and config_name("churn", 7, model, settings).startswith("churn-v7-c")


@pytest.mark.parametrize("change", [{"memory_mb": 4096}, {"max_concurrency": 8}, {"provisioned_concurrency": 2}])
def test_other_serverless_settings_give_another_config(change):
    model = model_name("churn", 7, ARN, ROLE)
    base = EndpointConfig(memory_mb=3072, max_concurrency=7)
    assert config_name("churn", 7, model, base) != config_name("churn", 7, model, base.model_copy(update=change))


def test_another_role_or_package_gives_another_model():
    assert model_name("churn", 7, ARN, ROLE) != model_name("churn", 7, ARN, ROLE + "-2")
    assert model_name("churn", 7, ARN, ROLE) != model_name("churn", 7, ARN.replace("/7", "/8"), ROLE)


@pytest.mark.parametrize("group", ["g", "churn-models", "a" * 63, "x-" * 30 + "abc", "A" * 40 + "-" * 5 + "b" * 18])
@pytest.mark.parametrize("version", [1, 42, 10**9])
def test_names_fit_sagemaker_and_parse_back(group, version):
    model = model_name(group, version, ARN, ROLE)
    config = config_name(group, version, model, EndpointConfig())
    for name, kind in ((model, "m"), (config, "c")):
        assert len(name) <= 63 and SAGEMAKER_NAME.match(name), name
        assert parse_name(group, name) == (version, kind)
        assert parse_name(group, name, kind) == (version, kind)
        assert name.startswith(name_prefix(group))
    assert parse_name(group, model, "c") is None


def test_another_groups_names_do_not_parse_as_ours():
    theirs = model_name("churn-eu", 3, ARN, ROLE)
    assert parse_name("churn", theirs) is None
    assert parse_name("churn-eu", theirs) == (3, "m")
    assert parse_name("churn", "churn-v3-mnothex!") is None
    assert parse_name("churn", "someone-elses-model") is None


def test_serverless_config_has_provisioned_concurrency_only_when_set():
    assert serverless_config(EndpointConfig()) == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert serverless_config(EndpointConfig(memory_mb=6144, max_concurrency=200, provisioned_concurrency=3)) == {
        "MemorySizeInMB": 6144, "MaxConcurrency": 200, "ProvisionedConcurrency": 3}
