"""The drift monitor with [stages] on AWS (issue 25 x issue 21; docs/decisions/0057), against moto's HTTP server.

Staging serves from its endpoint, its Lambda and its batch jobs; production from its endpoint only. Each stage's
capture lines (what src/capture.py writes) go to the log groups its targets write to, named as the engine names
them (deploy/names.py): the stage's endpoint `<group>-<stage>`, its Lambda's `/greenlight/<group>/<stage>/inference`,
its jobs' streams `<stage job prefix>-`. Decoys sit where a stage has no target (production's Lambda log group)
and in the group's own log groups, which no stage uses: none may count. A stage with `role_arn` logs in the other
account (moto keeps one backend per account id), read through AssumeRole: the CLI through the stage's deploy role,
the schedule through the stage's capture reader (docs/decisions/0060).
"""

# ruff: noqa: F811 (the `world` fixture, imported from test_monitor_aws, is every test's argument)
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from deploy.capture_sources import capture_plans
from deploy.config import load_config
from deploy.monitor_handler import MonitorSettings, run
from tests.contract.test_monitor_aws import GROUP, create_drift_alarm, world  # noqa: F401
from tests.contract.test_stages_aws import OTHER_ACCOUNT, in_account
from tests.support.drift_traffic import capture_lines, requests_from_the_bundled_data
from tests.support.moto_alarms import evaluate_alarms

STAGES = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
          "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_STAGES_STAGING_LAMBDA": "true",
          "GREENLIGHT_STAGES_STAGING_BATCH": "true", "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "false",
          "GREENLIGHT_STAGES_PRODUCTION_BATCH": "false"}
DEPLOYER = f"arn:aws:iam::{OTHER_ACCOUNT}:role/{GROUP}-production-deploy"  # deploy/target-account.yaml's
ELSEWHERE = {**STAGES, "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": DEPLOYER}


def put(logs, group: str, stream: str, lines: list[str]) -> None:
    for call, kw in ((logs.create_log_group, {"logGroupName": group}),
                     (logs.create_log_stream, {"logGroupName": group, "logStreamName": stream})):
        try:
            call(**kw)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
    when = int(datetime.now(UTC).timestamp() * 1000)
    events = [{"timestamp": when, "message": line} for line in lines]
    for start in range(0, len(events), 1000):
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start:start + 1000])


def lines(world, target: str, n: int, seed: int, shift: dict[str, float] | None = None, per_request: int = 1):
    return capture_lines(world["models"]["a"], requests_from_the_bundled_data(n, seed, shift), world["work"],
                         target=target, per_request=per_request)


def serve_stages(world, production_logs=None) -> dict[str, str]:
    """Staging: like traffic on its three targets (300 + 300 + 200 rows); production: bmi shifted by two standard
    deviations on its endpoint (400 rows), in `production_logs`' account; decoys where no stage serves."""
    logs = world["clients"]["logs"]
    sources = {(s.stage, s.target): s for p in capture_plans(load_config(environ=STAGES, group=GROUP)) for s in p.sources}
    put(logs, sources["staging", "endpoint"].log_group, "AllTraffic/i-1", lines(world, "endpoint", 300, 71))
    put(logs, sources["staging", "lambda"].log_group, "2026/12/05/[3]ab", lines(world, "lambda", 300, 72))
    batch = sources["staging", "batch"]
    put(logs, batch.log_group, f"{batch.stream_prefix}x9k2m4/i-1", lines(world, "batch", 200, 73, per_request=100))
    put(production_logs or logs, sources["production", "endpoint"].log_group, "AllTraffic/i-2",
        lines(world, "endpoint", 400, 74, {"bmi": 2.0}))
    # decoys, shifted so that counting them would show: production has no Lambda; the group itself no target
    decoy = lines(world, "lambda", 500, 75, {"age": 3.0})
    put(logs, f"/greenlight/{GROUP}/production/inference", "2026/12/05/[1]cd", decoy)
    put(logs, f"/greenlight/{GROUP}/inference", "2026/12/05/[1]ef", decoy)
    put(logs, f"/aws/sagemaker/Endpoints/{GROUP}", "AllTraffic/i-3", decoy)
    return {f"{stage}.{target}": s.log_group for (stage, target), s in sources.items()}


def cli(capsys, *args: str) -> tuple[int, dict, str]:
    from greenlight.cli import main

    code = main(["monitor", "--target", "aws", "--json", "--since", "30m", *args])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def test_the_cli_attributes_each_stages_records_to_it_and_stage_filters(world, monkeypatch, capsys):
    for name, value in STAGES.items():
        monkeypatch.setenv(name, value)
    groups = serve_stages(world)
    assert groups["staging.lambda"] == f"/greenlight/{GROUP}/staging/inference"
    # WHEN staging alone is monitored THEN its three targets' 800 rows, none of production's or the decoys'
    code, doc, _ = cli(capsys, "--stage", "staging")
    assert (code, doc["rows"], doc["stages"]) == (0, 300 + 300 + 200, ["staging"])
    assert not any(f["drift"] for f in doc["features"])
    # WHEN production alone THEN its endpoint's 400 shifted rows (not its would-be Lambda's decoys): bmi drifts
    code, doc, _ = cli(capsys, "--stage", "production")
    assert (code, doc["rows"], doc["stages"]) == (3, 400, ["production"])
    assert [f["name"] for f in doc["features"] if f["drift"]] == ["bmi"]
    # WHEN every stage THEN both stages' rows, attributed to both, and still none of the decoys (age never drifts)
    code, doc, _ = cli(capsys)
    assert (doc["rows"], doc["stages"]) == (1200, ["production", "staging"])
    assert "age" not in [f["name"] for f in doc["features"] if f["drift"]]
    # AND a stage that does not exist is one line naming those that do, exit 2
    from greenlight.cli import main

    assert main(["monitor", "--target", "aws", "--stage", "prod"]) == 2
    assert "no stage 'prod' (stages: staging, production)" in capsys.readouterr().err


def stage_metric(cloudwatch, name: str, stage: str | None, feature: str | None = None) -> float | None:
    dims = [{"Name": "Group", "Value": GROUP}, *([{"Name": "Stage", "Value": stage}] if stage else []),
            *([{"Name": "Feature", "Value": feature}] if feature else [])]
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(Namespace="Greenlight/Drift", MetricName=name, Dimensions=dims,
                                              StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
                                              Period=3600, Statistics=["Maximum"])["Datapoints"]
    return max((p["Maximum"] for p in points), default=None)


def schedule(world, environ: dict[str, str]) -> dict:
    c = world["clients"]
    config = MonitorSettings.from_env({"GREENLIGHT_GROUP": GROUP, "GREENLIGHT_MONITOR_WINDOW": "1h", **environ})
    return run(config, logs=c["logs"], cloudwatch=c["cloudwatch"], s3=c["s3"], registry=world["registry"],
               now=datetime.now(UTC) + timedelta(seconds=5))


def test_the_scheduled_monitor_publishes_per_stage_and_the_alarm_fires_on_any_stages_drift(world):
    serve_stages(world)
    result = schedule(world, STAGES)
    assert [(s["stage"], s["status"], s["rows"]) for s in result["stages"]] == \
        [("staging", "ok", 800), ("production", "drift", 400)]
    assert (result["status"], result["rows"]) == ("drift", 1200)
    cloudwatch = world["clients"]["cloudwatch"]
    assert stage_metric(cloudwatch, "CapturedRows", "staging") == 800.0
    assert stage_metric(cloudwatch, "DriftDetected", "staging") == 0.0
    assert stage_metric(cloudwatch, "DriftDetected", "production") == 1.0
    assert stage_metric(cloudwatch, "Drift", "production", "bmi") == 1.0
    assert stage_metric(cloudwatch, "Drift", "staging", "bmi") == 0.0
    assert stage_metric(cloudwatch, "PSI", "production", "prediction") is not None
    # the group's own metrics, which the stack's DriftAlarm watches: every stage's rows, 1 as one stage drifted
    assert stage_metric(cloudwatch, "CapturedRows", None) == 1200.0
    assert stage_metric(cloudwatch, "DriftDetected", None) == 1.0
    assert stage_metric(cloudwatch, "Drift", None, "bmi") is None  # per-feature metrics are per stage only
    create_drift_alarm(cloudwatch)
    assert evaluate_alarms(cloudwatch, datetime.now(UTC))[f"{GROUP}-drift"] == "ALARM"


def test_a_stage_without_capture_publishes_zero_rows_and_the_alarm_stays_ok(world):
    logs = world["clients"]["logs"]
    [staging, _] = capture_plans(load_config(environ=STAGES, group=GROUP))
    put(logs, staging.sources[0].log_group, "AllTraffic/i-1", lines(world, "endpoint", 300, 81))
    result = schedule(world, STAGES)
    assert [(s["stage"], s["status"]) for s in result["stages"]] == [("staging", "ok"), ("production", "no-capture")]
    cloudwatch = world["clients"]["cloudwatch"]
    assert stage_metric(cloudwatch, "CapturedRows", "production") == 0.0
    assert stage_metric(cloudwatch, "DriftDetected", None) == 0.0
    create_drift_alarm(cloudwatch)
    assert evaluate_alarms(cloudwatch, datetime.now(UTC))[f"{GROUP}-drift"] == "OK"


def test_one_stages_failure_leaves_the_others_published_then_fails_the_run(world):
    from greenlight.errors import NotFoundError
    from tests.contract.test_monitor_aws import register_request

    world["registry"].create_model_package({k: v for k, v in register_request("img:2", "s3://b/b.tar.gz").items()
                                            if k != "DriftCheckBaselines"})  # version 2: no baseline
    logs = world["clients"]["logs"]
    staging, production = capture_plans(load_config(environ=STAGES, group=GROUP))
    put(logs, staging.sources[0].log_group, "AllTraffic/i-1", lines(world, "endpoint", 300, 85))
    put(logs, production.sources[0].log_group, "AllTraffic/i-2",
        [ln.replace('"model_version":null', f'"model_version":"{GROUP}/2"') for ln in lines(world, "endpoint", 200, 86)])
    with pytest.raises(NotFoundError, match="model version 2 of greenlight-models has no drift baseline"):
        schedule(world, STAGES)
    cloudwatch = world["clients"]["cloudwatch"]
    assert stage_metric(cloudwatch, "DriftDetected", "staging") == 0.0
    assert stage_metric(cloudwatch, "DriftDetected", "production") is None
    assert stage_metric(cloudwatch, "DriftDetected", None) == 0.0


def test_moto_answers_statistics_for_exactly_the_dimensions_asked(world):
    """The alarm tests above rest on it: CloudWatch's metric is its full set of dimensions (moto_cloudwatch.py)."""
    cloudwatch = world["clients"]["cloudwatch"]
    cloudwatch.put_metric_data(Namespace="Greenlight/Drift", MetricData=[
        {"MetricName": "DriftDetected", "Value": 1.0, "Dimensions": [{"Name": "Group", "Value": GROUP},
                                                                     {"Name": "Stage", "Value": "staging"}]}])
    assert stage_metric(cloudwatch, "DriftDetected", "staging") == 1.0
    assert stage_metric(cloudwatch, "DriftDetected", None) is None


THERE = {**ELSEWHERE, "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "true"}  # production's Lambda in account 2 (0056)
READER = f"arn:aws:iam::{OTHER_ACCOUNT}:role/{GROUP}-production-capture-reader"  # target-account.yaml's


def serve_production_there(world) -> None:
    """Production's endpoint (400 rows, bmi shifted) and Lambda (100 rows, bmi shifted) in account 2; decoys under
    the same names in this account (and staging's traffic here), which must not count as production's."""
    there = in_account("logs", world["url"], OTHER_ACCOUNT)
    serve_stages(world, production_logs=there)
    put(there, f"/greenlight/{GROUP}/production/inference", "2026/12/06/[1]ab",
        lines(world, "lambda", 100, 92, {"bmi": 2.0}))
    put(world["clients"]["logs"], f"/aws/sagemaker/Endpoints/{GROUP}-production", "AllTraffic/i-9",
        lines(world, "endpoint", 100, 91))


def test_a_stage_in_another_account_is_read_there_by_the_cli(world, monkeypatch, capsys):
    for name, value in THERE.items():
        monkeypatch.setenv(name, value)
    serve_production_there(world)
    # WHEN the CLI reads production (through its deploy role) THEN its endpoint's and its Lambda's rows there
    code, doc, _ = cli(capsys, "--stage", "production")
    assert (code, doc["rows"], doc["stages"]) == (3, 400 + 100, ["production"])


def test_the_schedule_reads_a_stage_in_another_account_through_its_capture_reader(world, monkeypatch):
    """The Lambda's own composition (Workspace.assumed: STS AssumeRole on moto, credentials of account 2)."""
    from deploy import monitor_handler
    from greenlight.workspace import Workspace

    for name, value in {**THERE, "GREENLIGHT_GROUP": GROUP, "GREENLIGHT_MONITOR_WINDOW": "1h"}.items():
        monkeypatch.setenv(name, value)
    serve_production_there(world)
    assumed: list[tuple[str, str]] = []
    real = Workspace.assumed

    def recording(self, role_arn, stage):
        assumed.append((role_arn, stage))
        return real(self, role_arn, stage)

    monkeypatch.setattr(Workspace, "assumed", recording)
    monkeypatch.setattr(monitor_handler, "_runtime", {})
    result = monitor_handler.lambda_handler({}, None)
    assert assumed == [(READER, "production")]  # the read-only role, never the deploy role
    assert [(s["stage"], s["status"], s["rows"]) for s in result["stages"]] == \
        [("staging", "ok", 800), ("production", "drift", 500)]
    cloudwatch = world["clients"]["cloudwatch"]
    assert stage_metric(cloudwatch, "CapturedRows", "production") == 500.0
    assert stage_metric(cloudwatch, "Drift", "production", "bmi") == 1.0
    assert stage_metric(cloudwatch, "CapturedRows", None) == 1300.0
    assert stage_metric(cloudwatch, "DriftDetected", None) == 1.0


@pytest.mark.parametrize("lambda_", ["false", "true"])
def test_the_target_stack_on_moto_creates_the_reader_at_the_arn_the_monitor_derives(world, lambda_):
    """deploy/target-account.yaml on moto's CloudFormation in account 2, with MonitorRoleArn: the capture reader's
    output is the ARN deploy/capture_sources.py derives from role_arn, with exactly the plan's log groups."""
    from tests.support.deploy_env_cross_account import deploy_target_stack

    monitor = f"arn:aws:iam::123456789012:role/greenlight/{GROUP}/{GROUP}-drift-monitor"
    outputs = deploy_target_stack(world["url"], GROUP, f"{GROUP}-production", Lambda=lambda_, MonitorRoleArn=monitor)
    environ = {**THERE, "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": outputs["DeployRoleArn"],
               "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": lambda_}
    [plan] = capture_plans(load_config(environ=environ, group=GROUP), "production")
    assert outputs["CaptureReaderRoleArn"] == plan.reader_arn
    iam = in_account("iam", world["url"], OTHER_ACCOUNT)
    name = plan.reader_arn.rsplit("/", 1)[1]
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    assert [s["Principal"] for s in trust["Statement"]] == [{"AWS": monitor}]
    granted = [r for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
               for st in document(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])["Statement"]
               for r in ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"])]
    assert sorted(granted) == sorted(f"arn:aws:logs:us-east-1:{OTHER_ACCOUNT}:log-group:{s.log_group}:*"
                                     for s in plan.sources)


def document(policy) -> dict:
    """A role policy document as IAM returns it: boto3 decodes it, but moto's CloudFormation stores an inline policy
    of AWS::IAM::Role as the Python repr of the document, which IAM hands back as text (a moto quirk)."""
    import ast
    import urllib.parse

    return policy if isinstance(policy, dict) else ast.literal_eval(urllib.parse.unquote(policy))


def denied(role_arn: str, stage: str):
    """What Workspace.assumed raises when the role does not exist or does not trust the caller (moto evaluates
    no trust policy, so the refusal is IAM's answer as aws_call translates it)."""
    from greenlight.errors import AwsError

    raise AwsError(f"AWS AssumeRole failed: AccessDenied: not authorized to perform sts:AssumeRole on {role_arn}",
                   code="AccessDenied", operation="AssumeRole")


@pytest.mark.parametrize("assume", [denied, None], ids=["denied", "no assume"])
def test_a_target_stack_without_monitor_role_arn_is_named_with_the_fix_and_the_others_publish(world, assume, caplog):
    serve_production_there(world)
    c = world["clients"]
    config = MonitorSettings.from_env({"GREENLIGHT_GROUP": GROUP, "GREENLIGHT_MONITOR_WINDOW": "1h", **THERE})
    with caplog.at_level("WARNING", logger="deploy.monitor_handler"):
        result = run(config, logs=c["logs"], cloudwatch=c["cloudwatch"], s3=c["s3"], registry=world["registry"],
                     assume=assume, now=datetime.now(UTC) + timedelta(seconds=5))
    staging, production = result["stages"]
    assert (staging["status"], staging["rows"], result["status"]) == ("ok", 800, "ok")
    assert production["status"] == "not-read"
    for words in ("stage production is not read", READER, "MonitorRoleArn=", "target-account.yaml"):
        assert words in production["reason"], words
    assert [r.getMessage() for r in caplog.records if "production" in r.getMessage()] == [production["reason"]]
    assert stage_metric(c["cloudwatch"], "CapturedRows", "production") is None
    assert stage_metric(c["cloudwatch"], "CapturedRows", None) == 800.0


def test_another_failure_to_assume_fails_the_run_after_the_others_publish(world):
    from greenlight.errors import AwsError

    def throttled(role_arn: str, stage: str):
        raise AwsError("AWS AssumeRole failed: Throttling: Rate exceeded", code="Throttling", operation="AssumeRole")

    serve_production_there(world)
    c = world["clients"]
    config = MonitorSettings.from_env({"GREENLIGHT_GROUP": GROUP, "GREENLIGHT_MONITOR_WINDOW": "1h", **THERE})
    with pytest.raises(AwsError, match="Throttling"):
        run(config, logs=c["logs"], cloudwatch=c["cloudwatch"], s3=c["s3"], registry=world["registry"],
            assume=throttled, now=datetime.now(UTC) + timedelta(seconds=5))
    assert stage_metric(c["cloudwatch"], "CapturedRows", "staging") == 800.0
    assert stage_metric(c["cloudwatch"], "CapturedRows", None) == 800.0


@pytest.mark.parametrize("stage", ["staging", "production"])
def test_without_stages_nothing_of_a_stage_is_read(world, capsys, stage):
    """GIVEN no [stages] THEN today's three log groups only: a stage's capture is not the group's."""
    put(world["clients"]["logs"], f"/aws/sagemaker/Endpoints/{GROUP}-{stage}", "AllTraffic/i-1",
        lines(world, "endpoint", 200, 95))
    put(world["clients"]["logs"], f"/aws/sagemaker/Endpoints/{GROUP}", "AllTraffic/i-2",
        lines(world, "endpoint", 150, 96))
    code, doc, _ = cli(capsys)
    assert (code, doc["rows"]) == (0, 150) and "stages" not in doc
    result = schedule(world, {})
    assert (result["status"], result["rows"]) == ("ok", 150) and "stages" not in result and "stage" not in result
