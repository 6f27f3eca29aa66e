"""Stages in deploy.config (issue 21): ordered [stages.<name>] sections, GREENLIGHT_STAGES variables, the
implicit stage exactly as before."""

from __future__ import annotations

import re

import pytest

from deploy.config import load_config
from greenlight.errors import ConfigurationError, ParameterError

STAGED = '[stages.staging]\ngate = "approval"\n[stages.production]\ngate = "promotion"\nlambda = false\n' \
         'soak_minutes = 30\n'


def test_no_stages_is_one_implicit_stage_keyed_by_the_group(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (stage,) = load_config(environ={}, home=tmp_path).stage_list()
    assert (stage.name, stage.gate, stage.key, stage.implicit) == ("default", "approval", "greenlight-models", True)
    assert (stage.endpoint, stage.lambda_, stage.batch) == (True, True, True)


def test_stages_keep_the_file_order_and_derive_their_keys_from_the_group(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text(STAGED)
    staging, production = load_config(environ={}, home=tmp_path).stage_list()
    assert (staging.name, staging.gate, staging.key) == ("staging", "approval", "greenlight-models-staging")
    assert (production.name, production.gate, production.key, production.lambda_, production.endpoint,
            production.soak_minutes) == ("production", "promotion", "greenlight-models-production", False, True, 30)


def test_variables_name_and_order_the_stages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text(STAGED)
    env = {"GREENLIGHT_STAGES": "production,staging", "GREENLIGHT_STAGES_PRODUCTION_GATE": "approval",
           "GREENLIGHT_STAGES_STAGING_GATE": "promotion",
           "GREENLIGHT_STAGES_STAGING_ROLE_ARN": "arn:aws:iam::222222222222:role/deployer",
           "GREENLIGHT_STAGES_STAGING_ENDPOINT_ROLE_ARN": "arn:aws:iam::222222222222:role/models",
           "GREENLIGHT_ENDPOINT_ROLE_ARN": "arn:aws:iam::111111111111:role/models"}
    first, second = load_config(environ=env, home=tmp_path).stage_list()
    assert (first.name, first.gate, first.lambda_, first.endpoint_role_arn) == (
        "production", "approval", False, "arn:aws:iam::111111111111:role/models")  # endpoint.role_arn by default
    assert (second.name, second.gate, second.role_arn, second.endpoint_role_arn) == (
        "staging", "promotion", "arn:aws:iam::222222222222:role/deployer", "arn:aws:iam::222222222222:role/models")


@pytest.mark.parametrize("text, words", [
    ('[stages.production]\ngate = "promotion"\n', "first stage (production) cannot"),
    ('[stages.Prod]\ngate = "approval"\n', "lowercase letters"),
    ('[stages.staging]\ngate = "manual"\n', "stages.staging.gate"),
    ('[stages.staging]\ngate = "approval"\nrole_arn = "admin"\n', "IAM role ARN"),
    ('[stages.staging]\nsoak_minutes = 5\n', "gate"),
])
def test_a_bad_stage_is_one_configuration_error(tmp_path, monkeypatch, text, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text(text)
    with pytest.raises(ConfigurationError, match=re.escape(words)):
        load_config(environ={}, home=tmp_path)


def test_an_unknown_stage_names_the_stages_there_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text(STAGED)
    with pytest.raises(ParameterError, match="no stage 'prod' \\(stages: staging, production\\)"):
        load_config(environ={}, home=tmp_path).stage("prod")


@pytest.mark.parametrize("group", ["m", "greenlight-models", "a" * 63, "Churn-Models-p-abcdefghijkl"])
def test_a_stage_key_is_a_group_name_from_the_one_name_function_and_unique_per_stage(group):
    from deploy.names import GROUP, GroupNames

    names = GroupNames(group)
    keys = {stage: names.stage(stage) for stage in ("staging", "production", "p" * 16)}
    assert names.stage(None) == group  # the implicit stage: today's names
    assert all(GROUP.accepts(key) for key in keys.values()), keys
    assert len(set(keys.values())) == 3 and group not in keys.values()
    assert all(GroupNames(key).endpoint and GroupNames(key).function for key in keys.values())
