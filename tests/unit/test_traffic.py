"""The traffic vocabulary of progressive delivery (deploy/engine/traffic.py) and its settings (deploy/config.py)."""

from __future__ import annotations

import doctest

import pytest

import deploy.engine.traffic as traffic
from deploy.config import ENV_FIELDS, load_config
from deploy.engine.traffic import Shift, TrafficPolicy, VersionTraffic, breach
from greenlight.errors import ConfigurationError


def test_doctests() -> None:
    result = doctest.testmod(traffic)
    assert result.attempted >= 6 and result.failed == 0


@pytest.mark.parametrize("step", [7.0, 10.0, 33.0, 50.0])
def test_linear_steps_climb_evenly_to_100(step: float) -> None:
    steps = TrafficPolicy(Shift.LINEAR, linear_step_percent=step).steps()
    assert steps[-1] == 100.0 and all(b > a for a, b in zip(steps, steps[1:], strict=False))
    assert all(b - a <= step + 1e-9 for a, b in zip((0.0, *steps), steps, strict=False))


def test_breach_waits_for_min_requests_unless_the_step_ended() -> None:
    policy = TrafficPolicy(min_requests=20)
    assert breach(policy, 2, VersionTraffic(19, 19)) is None
    assert breach(policy, 2, VersionTraffic(19, 19), step_ended=True) == "canary v2: 5xx 100% > 1% over 19 requests"
    assert breach(policy, 2, VersionTraffic(0, 0), step_ended=True) is None
    assert breach(policy, 2, VersionTraffic(100, 1)) is None  # exactly 1%: not above the threshold


def test_settings_per_target_from_file_and_environment(tmp_path) -> None:
    (tmp_path / "greenlight.toml").write_text('[endpoint]\ntraffic = "canary"\ncanary_percent = 20\n'
                                              '[lambda]\ntraffic = "linear"\nlinear_step_percent = 25\n')
    config = load_config(tmp_path / "greenlight.toml", environ={"GREENLIGHT_LAMBDA_ALARMS": "a, b",
                                                                "GREENLIGHT_LAMBDA_MAX_P99_MS": "80"})
    assert config.endpoint.traffic_policy.steps() == (20.0, 100.0)
    assert config.lambda_.traffic_policy == TrafficPolicy(Shift.LINEAR, linear_step_percent=25.0, max_p99_ms=80.0,
                                                          alarms=("a", "b"))
    assert load_config(environ={}).endpoint.traffic_policy.progressive is False  # today's behaviour by default
    assert ENV_FIELDS["GREENLIGHT_ENDPOINT_CANARY_PERCENT"] == ("endpoint", "canary_percent")


@pytest.mark.parametrize(("variable", "value", "named"), [
    ("GREENLIGHT_ENDPOINT_TRAFFIC", "blue", "endpoint.traffic"),
    ("GREENLIGHT_ENDPOINT_CANARY_PERCENT", "100", "endpoint.canary_percent"),
    ("GREENLIGHT_LAMBDA_LINEAR_STEP_PERCENT", "0", "lambda.linear_step_percent"),
    ("GREENLIGHT_LAMBDA_MIN_REQUESTS", "0", "lambda.min_requests"),
])
def test_bad_traffic_settings_are_named(variable: str, value: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        load_config(environ={variable: value})


def test_a_stage_overrides_the_shift_of_its_targets_only(tmp_path) -> None:
    (tmp_path / "greenlight.toml").write_text('[endpoint]\ntraffic = "linear"\ncanary_percent = 30\n'
                                              '[stages.staging]\ngate = "approval"\ntraffic = "all-at-once"\n'
                                              '[stages.production]\ngate = "promotion"\n')
    config = load_config(tmp_path / "greenlight.toml", environ={"GREENLIGHT_STAGES_PRODUCTION_TRAFFIC": "canary"})
    staging, production = config.stage_list()
    assert config.traffic_policy("endpoint", staging).progressive is False
    assert config.traffic_policy("endpoint", production).steps() == (30.0, 100.0)
    assert config.traffic_policy("lambda", production).traffic is Shift.CANARY
    assert config.traffic_policy("endpoint").traffic is Shift.LINEAR  # no stage: the section's own
    with pytest.raises(ConfigurationError, match=r"stages\.staging\.traffic"):
        load_config(environ={"GREENLIGHT_STAGES": "staging", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
                             "GREENLIGHT_STAGES_STAGING_TRAFFIC": "blue"})


def test_the_stack_parameters_carry_the_traffic_settings_back_to_the_same_policy() -> None:
    from deploy.stack_parameters import template_parameters
    from tests.unit.test_template_config import stem

    config = load_config(environ={"GREENLIGHT_LAMBDA_ALARMS": "errors,latency", "GREENLIGHT_ENDPOINT_TRAFFIC": "linear",
                                  "GREENLIGHT_ENDPOINT_MAX_P99_MS": "80", "GREENLIGHT_ENDPOINT_BAKE_SECONDS": "0.5"})
    parameters = template_parameters(config)
    assert parameters["LambdaAlarms"] == "errors,latency" and parameters["EndpointAlarms"] == ""
    environ = {variable: parameters[stem(variable)] for variable in ENV_FIELDS if stem(variable) in parameters
               and ("TRAFFIC" in variable or variable.endswith(("_PERCENT", "_SECONDS", "_MS", "_REQUESTS", "_ALARMS")))}
    again = load_config(environ={k: v for k, v in environ.items() if v != ""})
    assert again.endpoint.traffic_policy == config.endpoint.traffic_policy
    assert again.lambda_.traffic_policy == config.lambda_.traffic_policy
