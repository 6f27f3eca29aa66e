"""deploy.config: one typed model, read from a file and GREENLIGHT_* variables, bad values named."""

from __future__ import annotations

import pytest

from deploy.config import ENV_FIELDS, load_config
from deploy.engine.model import NothingApproved
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
