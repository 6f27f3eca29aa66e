"""The drift monitor on AWS, against moto's HTTP server: capture records in CloudWatch Logs, the baseline in S3
linked from the SageMaker Model Registry, verdicts published as CloudWatch metrics, and the stack's alarm.

The capture lines are what the real serving code writes (src/capture.py through inference.predict_fn) for
rows like the bundled data, put into the log groups each target writes to. moto lacks two things, extended
here and named: FilterLogEvents ignores logStreamNamePrefix (the reader also checks the prefix, so a foreign
transform job's stream in /aws/sagemaker/TransformJobs must not count), and CloudWatch never evaluates an
alarm (tests/support/moto_alarms.py does, through the public API, for the template's DriftAlarm).
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta

import botocore.session
import pytest
from botocore.validate import ParamValidator

from deploy.monitor_handler import MonitorSettings, run
from greenlight.errors import NotFoundError
from greenlight.registry.aws import SageMakerModelRegistry
from tests.contract.conftest import REGION, aws_client
from tests.support.deploy_env_aws import aws_environment
from tests.support.drift_traffic import capture_lines, requests_from_the_bundled_data
from tests.support.handler_package import clean_handler, isolated_command
from tests.support.moto_alarms import evaluate_alarms
from tests.support.templates import TEMPLATE, load

GROUP = "greenlight-models"
BUCKET = "greenlight-artifacts"
BASELINE_URI = f"s3://{BUCKET}/greenlight/run-1/Evaluate/evaluation/baseline.json"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
LOG_GROUPS = {"endpoint": f"/aws/sagemaker/Endpoints/{GROUP}", "lambda": f"/greenlight/{GROUP}/inference",
              "batch": "/aws/sagemaker/TransformJobs"}
STREAMS = {"endpoint": "AllTraffic/i-0a1b2c", "lambda": "2026/12/04/[7]0123abcd",
           "batch": f"{GROUP}-k3v9x2mq7w1e5r8t/i-0f1e-1733300000"}


def register_request(image: str, model_data: str) -> dict:
    """What the pipeline's Register step sends: the baseline linked as DriftCheckBaselines.ModelDataQuality."""
    return {"ModelPackageGroupName": GROUP,
            "InferenceSpecification": {"Containers": [{"Image": image, "ModelDataUrl": model_data}],
                                       "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            "ModelApprovalStatus": "Approved",
            "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": {"ContentType": "application/json",
                                                                        "S3Uri": BASELINE_URI}}}}


@pytest.fixture
def world(moto_endpoint, models, monkeypatch, tmp_path):
    """A registered version 1 with its baseline in S3, the three log groups, and the clients."""
    for name, value in aws_environment(moto_endpoint).items():
        monkeypatch.setenv(name, value)
    clients = {s: aws_client(s, moto_endpoint) for s in ("logs", "cloudwatch", "s3", "sagemaker")}
    clients["s3"].create_bucket(Bucket=BUCKET)
    clients["s3"].put_object(Bucket=BUCKET, Key=BASELINE_URI.split("/", 3)[3], Body=models["a_baseline"].read_bytes())
    registry = SageMakerModelRegistry(clients["sagemaker"])
    registry.create_model_package(register_request("sklearn:1.9-0", "s3://b/a/model.tar.gz"))
    for name in LOG_GROUPS.values():
        clients["logs"].create_log_group(logGroupName=name)
    return {"url": moto_endpoint, "registry": registry, "clients": clients, "models": models, "work": tmp_path}


def put_lines(logs, target: str, lines: list[str], stream: str | None = None, at: datetime | None = None) -> None:
    stream = stream or STREAMS[target]
    try:
        logs.create_log_stream(logGroupName=LOG_GROUPS[target], logStreamName=stream)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    when = int((at or datetime.now(UTC)).timestamp() * 1000)
    events = [{"timestamp": when, "message": line} for line in lines]
    for start in range(0, len(events), 1000):
        logs.put_log_events(logGroupName=LOG_GROUPS[target], logStreamName=stream, logEvents=events[start:start + 1000])


def serve(world, target: str, rows, **kw) -> None:
    lines = capture_lines(world["models"]["a"], rows, world["work"], target=target, **kw)
    put_lines(world["clients"]["logs"], target, ["START RequestId: 0f Version: 3", *lines])


def settings(**changes) -> MonitorSettings:
    env = {"GREENLIGHT_GROUP": GROUP, "GREENLIGHT_MONITOR_WINDOW": "1h", **changes}
    return MonitorSettings.from_env(env)


def monitor_once(world, config: MonitorSettings | None = None, now: datetime | None = None) -> dict:
    c = world["clients"]
    return run(config or settings(), logs=c["logs"], cloudwatch=c["cloudwatch"], s3=c["s3"], registry=world["registry"],
               now=now or datetime.now(UTC) + timedelta(seconds=5))


def metric(cloudwatch, name: str, feature: str | None = None) -> float | None:
    dims = [{"Name": "Group", "Value": GROUP}] + ([{"Name": "Feature", "Value": feature}] if feature else [])
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(Namespace="Greenlight/Drift", MetricName=name, Dimensions=dims,
                                              StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5),
                                              Period=3600, Statistics=["Maximum"])["Datapoints"]
    return max((p["Maximum"] for p in points), default=None)


def test_the_register_request_with_its_baseline_is_a_valid_create_model_package():
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model("CreateModelPackage")
    report = ParamValidator().validate(register_request("img", "s3://b/m.tar.gz"), shape.input_shape)
    assert not report.has_errors(), report.generate_report()
    broken = register_request("img", "s3://b/m.tar.gz")
    broken["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"] = {"S3Uri": BASELINE_URI}  # no ContentType
    assert "ContentType" in ParamValidator().validate(broken, shape.input_shape).generate_report()


def test_like_traffic_on_every_target_publishes_no_drift_and_the_alarm_stays_ok(world):
    # GIVEN like traffic captured on the endpoint, the Lambda and a transform job of the group
    serve(world, "endpoint", requests_from_the_bundled_data(700, seed=11))
    serve(world, "lambda", requests_from_the_bundled_data(700, seed=12))
    serve(world, "batch", requests_from_the_bundled_data(600, seed=13), per_request=150)  # 4 records of 100 rows
    # AND a foreign transform job's stream in the shared log group, which must not count
    foreign = capture_lines(world["models"]["a"], requests_from_the_bundled_data(300, 14, {"bmi": 3.0}),
                            world["work"], target="batch", per_request=100)
    put_lines(world["clients"]["logs"], "batch", foreign, stream="other-team-job/i-1")
    # WHEN the scheduled monitor runs
    result = monitor_once(world)
    # THEN it compared version 1's 1,800 rows (400 of the batch's 600, the records' bound) and found no drift
    assert (result["status"], result["version"], result["rows"]) == ("ok", 1, 700 + 700 + 400)
    assert [f["name"] for f in result["features"]] == FEATURES and not any(f["drift"] for f in result["features"])
    cloudwatch = world["clients"]["cloudwatch"]
    assert metric(cloudwatch, "DriftDetected") == 0.0 and metric(cloudwatch, "CapturedRows") == 1800.0
    assert metric(cloudwatch, "Drift", "bmi") == 0.0
    assert metric(cloudwatch, "PSI", "bmi") == pytest.approx(result["features"][2]["psi"], abs=1e-6)
    assert metric(cloudwatch, "PSI", "prediction") is not None
    # AND the alarm made from the template's DriftAlarm stays OK
    create_drift_alarm(cloudwatch)
    assert evaluate_alarms(cloudwatch, datetime.now(UTC))[f"{GROUP}-drift"] == "OK"


def test_shifted_bmi_is_published_as_drift_of_bmi_alone_and_the_alarm_fires(world):
    serve(world, "lambda", requests_from_the_bundled_data(1500, seed=21, shift={"bmi": 2.0}))
    result = monitor_once(world)
    assert result["status"] == "drift" and [f["name"] for f in result["features"] if f["drift"]] == ["bmi"]
    cloudwatch = world["clients"]["cloudwatch"]
    assert metric(cloudwatch, "DriftDetected") == 1.0 and metric(cloudwatch, "Drift", "bmi") == 1.0
    assert metric(cloudwatch, "Drift", "age") == 0.0
    create_drift_alarm(cloudwatch)
    assert evaluate_alarms(cloudwatch, datetime.now(UTC))[f"{GROUP}-drift"] == "ALARM"


def test_an_empty_window_publishes_zero_rows_and_says_so(world):
    serve(world, "endpoint", requests_from_the_bundled_data(50, seed=31))
    result = monitor_once(world, now=datetime.now(UTC) + timedelta(hours=3))  # the records are 3 h old by then
    assert result["status"] == "no-capture" and result["rows"] == 0
    assert metric(world["clients"]["cloudwatch"], "CapturedRows") == 0.0


def test_a_version_without_a_baseline_fails_the_run_naming_it(world):
    world["registry"].create_model_package({k: v for k, v in register_request("img:2", "s3://b/b.tar.gz").items()
                                            if k != "DriftCheckBaselines"})
    lines = capture_lines(world["models"]["b"], requests_from_the_bundled_data(200, seed=41), world["work"],
                          target="endpoint")
    put_lines(world["clients"]["logs"], "endpoint", [ln.replace('"model_version":null', f'"model_version":"{GROUP}/2"')
                                                     for ln in lines])
    with pytest.raises(NotFoundError, match="model version 2 of greenlight-models has no drift baseline"):
        monitor_once(world)


def test_the_cli_reads_the_same_capture_on_aws(world, capsys):
    from greenlight.cli import main

    serve(world, "endpoint", requests_from_the_bundled_data(300, seed=51, shift={"bmi": 2.0}))
    assert main(["monitor", "--target", "aws", "--json", "--since", "30m"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["version"] == 1 and doc["rows"] == 300 and [f["name"] for f in doc["features"] if f["drift"]] == ["bmi"]
    assert main(["monitor", "--target", "aws", "--serving", "lambda"]) == 2
    assert "no capture records of lambda greenlight-models since" in capsys.readouterr().err


def create_drift_alarm(cloudwatch) -> None:
    """The template's DriftAlarm, as CloudFormation would create it for GROUP (no alarm topic)."""
    p = load(TEMPLATE)["Resources"]["DriftAlarm"]["Properties"]
    cloudwatch.put_metric_alarm(AlarmName=f"{GROUP}-drift", Namespace=p["Namespace"], MetricName=p["MetricName"],
                                Dimensions=[{"Name": "Group", "Value": GROUP}], Statistic=p["Statistic"],
                                Period=int(p["Period"]), EvaluationPeriods=int(p["EvaluationPeriods"]),
                                Threshold=float(p["Threshold"]), ComparisonOperator=p["ComparisonOperator"],
                                TreatMissingData=p["TreatMissingData"])
    assert p["Dimensions"] == [{"Name": "Group", "Value": {"Ref": "Group"}}]


RUN = r"""
import json, sys, types
import deploy.monitor_handler
result = deploy.monitor_handler.lambda_handler({}, types.SimpleNamespace(aws_request_id="req-1"))
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"numpy", "pandas", "scipy", "matplotlib", "sklearn"})
files = sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())} - {""})
print(json.dumps({"result": result, "heavy": heavy, "files": files}))
"""


@pytest.mark.slow
def test_the_handler_package_runs_the_monitor_from_a_clean_directory(world, tmp_path_factory, tmp_path):
    import os
    import sysconfig

    serve(world, "endpoint", requests_from_the_bundled_data(300, seed=61))
    handler = clean_handler(tmp_path_factory.mktemp("monitor-package"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENLIGHT_"))}
    env |= aws_environment(world["url"]) | {"GREENLIGHT_GROUP": GROUP, "GREENLIGHT_MONITOR_WINDOW": "1h",
                                            "AWS_REGION": REGION}
    proc = subprocess.run(isolated_command(handler, RUN), cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], f"the monitor's import path pulled in {out['heavy']}"
    assert out["result"]["status"] == "ok" and out["result"]["rows"] == 300
    stdlib = sysconfig.get_paths()["stdlib"]
    assert all(f.startswith((str(handler.code), str(handler.runtime), stdlib)) for f in out["files"]), out["files"]
