"""deploy.config: one typed model, read from a file and GREENLIGHT_* variables, bad values named."""

from __future__ import annotations

import re

import pytest

from deploy.config import ENV_FIELDS, load_config
from deploy.engine.model import NothingApproved
from deploy.names import GroupNames
from greenlight.errors import ConfigurationError


def test_defaults_work_on_a_bare_machine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={}, home=tmp_path)
    assert (config.group, config.when_nothing_approved) == ("greenlight-models", NothingApproved.KEEP)
    assert (config.endpoint.memory_mb, config.endpoint.max_concurrency, config.endpoint_name) == (
        2048, 5, "greenlight-models")


def test_file_then_environment_then_overrides(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text(
        'group = "from-file"\nwhen_nothing_approved = "stop"\n[endpoint]\nmemory_mb = 3072\nmax_concurrency = 9\n')
    config = load_config(environ={"GREENLIGHT_ENDPOINT_MEMORY_MB": "4096"}, home=tmp_path / "home")
    assert (config.group, config.when_nothing_approved, config.endpoint.memory_mb, config.endpoint.max_concurrency) \
        == ("from-file", NothingApproved.STOP, 4096, 9)
    assert load_config(environ={}, home=tmp_path, group="from-flag").group == "from-flag"


def test_the_home_file_is_read_when_the_working_directory_has_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    (home / "greenlight.toml").write_text("[smoke]\ntimeout_seconds = 5\n")
    assert load_config(environ={}, home=home).smoke.timeout_seconds == 5


@pytest.mark.parametrize("env, words", [
    ({"GREENLIGHT_ENDPOINT_MEMORY_MB": "1500"}, "endpoint.memory_mb = '1500' (GREENLIGHT_ENDPOINT_MEMORY_MB): "
                                                "must be one of 1024, 2048"),
    ({"GREENLIGHT_ENDPOINT_MAX_CONCURRENCY": "201"}, "endpoint.max_concurrency = '201' "
                                                     "(GREENLIGHT_ENDPOINT_MAX_CONCURRENCY): Input should be less "
                                                     "than or equal to 200"),
    ({"GREENLIGHT_ENDPOINT_MAX_CONCURRENCY": "2", "GREENLIGHT_ENDPOINT_PROVISIONED_CONCURRENCY": "3"},
     "provisioned_concurrency (3) must be at most max_concurrency (2)"),
    ({"GREENLIGHT_WHEN_NOTHING_APPROVED": "panic"}, "when_nothing_approved = 'panic'"),
    ({"GREENLIGHT_GROUP": "bad_name!"}, "group = 'bad_name!' (GREENLIGHT_GROUP): must be 1-63 letters"),
    ({"GREENLIGHT_SMOKE_TIMEOUT_SECONDS": "0"}, "smoke.timeout_seconds = '0'"),
])
def test_a_bad_value_names_the_field_its_limit_and_its_source(tmp_path, monkeypatch, env, words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as err:
        load_config(environ=env, home=tmp_path)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_every_bad_field_is_listed_and_unknown_settings_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text("[endpoint]\nmemory_mb = 100\nmax_concurency = 3\n")
    with pytest.raises(ConfigurationError) as err:
        load_config(environ={"GREENLIGHT_LOCK_TIMEOUT_SECONDS": "-1"}, home=tmp_path)
    message = str(err.value)
    assert "endpoint.memory_mb = 100" in message and "greenlight.toml" in message
    assert "endpoint.max_concurency" in message and "not a setting Greenlight knows" in message
    assert "lock_timeout_seconds = '-1' (GREENLIGHT_LOCK_TIMEOUT_SECONDS)" in message


def test_a_broken_file_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text("group = \n")
    with pytest.raises(ConfigurationError, match="cannot read .*greenlight.toml"):
        load_config(environ={}, home=tmp_path)
    with pytest.raises(ConfigurationError, match="GREENLIGHT_CONFIG=/nope.toml: no such file"):
        load_config(environ={"GREENLIGHT_CONFIG": "/nope.toml"}, home=tmp_path)


def test_env_fields_name_every_setting():
    assert ENV_FIELDS["GREENLIGHT_ENDPOINT_MEMORY_MB"] == ("endpoint", "memory_mb")
    assert ENV_FIELDS["GREENLIGHT_WHEN_NOTHING_APPROVED"] == ("when_nothing_approved",)
    assert all(name.startswith("GREENLIGHT_") and name.isupper() for name in ENV_FIELDS)


def test_the_batch_section_is_read_from_the_file_and_its_variables(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "greenlight.toml").write_text('[batch]\ninput = "s3://bucket-a/in/"\nschedule = "rate(1 hour)"\n'
                                              'strategy = "SingleRecord"\n')
    config = load_config(environ={"GREENLIGHT_BATCH_OUTPUT": "s3://bucket-a/out/",
                                  "GREENLIGHT_BATCH_ENABLED": "false"}, home=tmp_path)
    batch = config.batch
    assert (batch.input, batch.output, batch.schedule, batch.strategy.value, batch.enabled) == (
        "s3://bucket-a/in/", "s3://bucket-a/out/", "rate(1 hour)", "SingleRecord", False)
    assert ENV_FIELDS["GREENLIGHT_BATCH_MAX_PAYLOAD_MB"] == ("batch", "max_payload_mb")
    assert load_config(environ={}, home=tmp_path / "none").batch.enabled is True  # on by default (locally)


@pytest.mark.parametrize("env, words", [
    ({"GREENLIGHT_BATCH_MAX_PAYLOAD_MB": "101"},
     "batch.max_payload_mb = '101' (GREENLIGHT_BATCH_MAX_PAYLOAD_MB): 101 is outside 0-100"),
    ({"GREENLIGHT_BATCH_MAX_PAYLOAD_MB": "0"},  # a rule between two fields is still named by its field
     "batch.max_payload_mb (GREENLIGHT_BATCH_MAX_PAYLOAD_MB): 0 (no limit, HTTP chunked encoding)"),
    ({"GREENLIGHT_BATCH_SCHEDULE": "rate(1 minutes)"}, "batch.schedule = 'rate(1 minutes)' "
                                                       "(GREENLIGHT_BATCH_SCHEDULE): 'rate(1 minutes)': with a value"),
    ({"GREENLIGHT_BATCH_RETENTION": "101"}, "batch.retention = '101' (GREENLIGHT_BATCH_RETENTION)"),
    ({"GREENLIGHT_BATCH_SMOKE_TIMEOUT_SECONDS": "0"}, "batch.smoke_timeout_seconds = '0'"),
])
def test_a_bad_batch_value_names_its_variable(tmp_path, monkeypatch, env, words):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as err:
        load_config(environ=env, home=tmp_path)
    assert words in str(err.value)


def test_batch_names_derive_from_the_group(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    named = load_config(environ={}, home=tmp_path, group="churn-models").batch.names_for("churn-models")
    assert (named.schedule_name, named.job_name_prefix) == ("churn-models-batch", "churn-models")
    # a group longer than a job name prefix may be gets one derived from it (deploy/names.py), never an error
    long = load_config(environ={}, home=tmp_path).batch.names_for("A-Model-Package-Group-of-30-ch")
    assert long.job_name_prefix == GroupNames("A-Model-Package-Group-of-30-ch").job_prefix
    assert re.fullmatch(r"a-model-package-g-[0-9a-f]{8}", long.job_name_prefix), long.job_name_prefix
    kept = load_config(environ={"GREENLIGHT_BATCH_JOB_NAME_PREFIX": "churn", "GREENLIGHT_BATCH_SCHEDULE_NAME": "nightly"},
                       home=tmp_path).batch.names_for("a-model-package-group-of-30-ch")
    assert (kept.schedule_name, kept.job_name_prefix) == ("nightly", "churn")
