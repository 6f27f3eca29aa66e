"""The deploy stack configures the approval handler exactly as the engine's configuration model reads it.

For every variable the engine reads (deploy.config.ENV_FIELDS):
- the handler's Environment sets it, from the parameter with the same name stem
  (GREENLIGHT_ENDPOINT_MEMORY_MB <- EndpointMemoryMb), or, for a resource the stack itself creates
  (STACK_OWNED), from that resource; a list the stack extends (STACK_JOINED) joins the resources it names
  with the parameter; and the handler sets no GREENLIGHT_* variable the model lacks;
- the parameter's Default is the model's default ("" where the model's default is None);
- the parameter's limits (AllowedValues, AllowedPattern, MinValue/MaxValue, MinLength/MaxLength, Type)
  accept exactly the values the model accepts: both are asked about the same probes, which include
  every whole number across and beyond both sides' bounds, fractions at the model's bounds, and
  strings at each naming rule's edges (plus EXTRA_PROBES for fields with their own grammar). Where the
  template is deliberately stricter, STRICTER says how and why; where it cannot be as strict (a cron
  grammar, the time zone database), LOOSER says so; the test checks each difference is exactly that.
Rules between two fields (provisioned_concurrency <= max_concurrency, a batch output inside its
input) and what LOOSER lets through cannot be written as parameter constraints; the handler refuses
such a stack at its cold start with one ConfigurationError.
"""

from __future__ import annotations

import enum
import re
import types
import typing
from collections.abc import Callable
from typing import Any

import annotated_types
import pytest
from pydantic import BaseModel, ValidationError

from deploy.config import ENV_FIELDS, DeployConfig
from tests.support.templates import TEMPLATE, branches, load

# Variables set from a resource of the stack rather than a parameter, and why.
STACK_OWNED = {
    "GREENLIGHT_STATE_TABLE": ("StateTable", "the stack creates the lease and status table"),
    "GREENLIGHT_ENDPOINT_ROLE_ARN": ("SageMakerExecutionRole", "the stack creates the models' execution role"),
    "GREENLIGHT_LAMBDA_FUNCTION_NAME": ("InferenceFunction", "the stack creates the inference function"),
    "GREENLIGHT_LAMBDA_ECR_REPOSITORY": ("Repository", "the stack creates the ECR repository"),
    "GREENLIGHT_BATCH_ROLE_ARN": ("SchedulerRole", "the stack creates the role EventBridge Scheduler runs as"),
    "GREENLIGHT_BATCH_DEAD_LETTER_ARN": ("BatchDeadLetterQueue", "the stack creates the schedule's dead-letter "
                                                                 "queue"),
}
# Lists set from their parameter joined with resources of the stack: (the resources, why).
STACK_JOINED = {
    "GREENLIGHT_ENDPOINT_ALARMS": (("EndpointErrorsAlarm", "EndpointLatencyAlarm"),
                                   "the stack creates the endpoint's rollback alarms; the user's are added"),
    "GREENLIGHT_LAMBDA_ALARMS": (("LambdaErrorsAlarm", "LambdaLatencyAlarm"),
                                 "the stack creates the alias's rollback alarms; the user's are added"),
}
# Where the template accepts less than the model, on purpose: (rejected by the template only, why).
STRICTER: dict[str, tuple[Callable[[str], bool], str]] = {
    "GREENLIGHT_GROUP": (lambda v: not 2 <= len(v) <= 48,
                         "2-48 characters: <Group>-<suffix> names stay within IAM's and Lambda's 64 (a SageMaker "
                         "Project's group has at most 47), and the ECR repository name needs 2"),
    "GREENLIGHT_ENDPOINT_NAME": (lambda v: v != v.lower(),
                                 "lower case: the handler's policy names the endpoint's ARN"),
    "GREENLIGHT_BATCH_INPUT": (lambda v: v != "" and not (v.startswith("s3://") and v.endswith("/")),
                               "an s3:// prefix ending in '/': SageMaker reads S3, and the execution role's "
                               "policy names the keys under it (a local folder means nothing on AWS)"),
    "GREENLIGHT_BATCH_OUTPUT": (lambda v: v != "" and not (v.startswith("s3://") and v.endswith("/")),
                                "an s3:// prefix ending in '/': the policies name the keys under it"),
    "GREENLIGHT_BATCH_JOB_NAME_PREFIX": (lambda v: v != v.lower(),
                                         "lower case: the policies name the transform jobs' ARNs, which "
                                         "SageMaker writes in lower case"),
}
# Variables whose parameter stack_parameters always fills (the configured value, else the name deploy/names.py
# derives from the group): the template has no default and refuses "", because it cannot derive the name.
DERIVED = {"GREENLIGHT_BATCH_JOB_NAME_PREFIX": "deploy/names.py shortens a long group with a hash, which "
                                               "CloudFormation cannot compute"}
# Where the template accepts more than the model, because the rule is not a pattern: (accepted by the
# template only, why). The handler refuses such a value at its cold start, naming the rule.
LOOSER: dict[str, tuple[Callable[[str], bool], str]] = {
    "GREENLIGHT_BATCH_SCHEDULE": (lambda v: re.fullmatch(r"(cron|rate)\(.+\)", v) is not None and len(v) <= 256,
                                  "cron()/rate() grammar (deploy/batch/expressions.py) is not a pattern"),
    "GREENLIGHT_BATCH_TIMEZONE": (lambda v: re.fullmatch(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*", v) is not None
                                  and len(v) <= 50, "the IANA time zone database is not a pattern"),
}
EXTRA_PROBES = {
    "GREENLIGHT_BATCH_SCHEDULE": ["rate(5 minutes)", "rate(1 minutes)", "cron(0 2 * * ? *)", "cron(0 2 * * * *)",
                                  "cron(15 10 ? * 6L 2026-2030)", "at(2026-01-01T00:00:00)", "rate(5 minutes"],
    "GREENLIGHT_BATCH_TIMEZONE": ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5",
                                  "Mars/Olympus", "europe/paris", "Europe/Paris/"],
    "GREENLIGHT_BATCH_INPUT": ["s3://bucket-a/in/", "s3://bucket-a/", "s3://bucket-a/in", "s3://B/in/", "data/in",
                               "s3://ab/in/"],
    "GREENLIGHT_BATCH_OUTPUT": ["s3://bucket-a/out/", "s3://bucket-a/out", "s3://bucket_a/out/", "out"],
    "GREENLIGHT_BATCH_INSTANCE_TYPE": ["ml.m5.large", "ml.c5.xlarge", "ml.t2.medium", "ml.m5.larg"],
    # bounds beyond the whole numbers every integer field is probed with (-3 to 303)
    "GREENLIGHT_BATCH_MAX_EVENT_AGE_SECONDS": [str(n) for n in (999, 1000, 9999, 10000, 79999, 80000, 85999, 86000,
                                                                86399, 86400, 86401, 86500, 90000, 100000)],
}
NAME_PROBES = ["a", "ab", "a-b", "a--b", "a-b-c", "-a", "a-", "A", "Ab-1", "a_b", "a.b", "a b", "1", "123",
               "a/b", "é", "a" * 48, "a" * 49, "a" * 63, "a" * 64, "a" + "-b" * 31, "a" * 128, "a" * 129, "9a"]


def stem(variable: str) -> str:
    """GREENLIGHT_ENDPOINT_MEMORY_MB -> EndpointMemoryMb."""
    return "".join(part.capitalize() for part in variable.removeprefix("GREENLIGHT_").split("_"))


def field_info(path: tuple[str, ...]):
    model: type[BaseModel] = DeployConfig
    info = None
    for key in path:
        info = next(i for name, i in model.model_fields.items() if key in (name, i.alias))
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            model = info.annotation
    return info


def kind(info) -> tuple[type | None, tuple[str, ...]]:
    """(base type, allowed values for enumerations) of a field, None stripped from Optional."""
    annotation = info.annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is typing.Literal:
        return str, tuple(str(a) for a in typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return str, tuple(str(m.value) for m in annotation)
    return annotation, ()


def model_bounds(info) -> list[float]:
    return [float(getattr(m, attr)) for m in info.metadata for attr in ("ge", "gt", "le", "lt")
            if isinstance(m, annotated_types.BaseMetadata) and getattr(m, attr, None) is not None]


def model_accepts(path: tuple[str, ...], value: str) -> bool:
    """Whether the model takes `value` for this field, as load_config gives it (a string, "" = unset);
    errors between fields (located at the section) are not this field's."""
    if value == "":
        return True
    data: dict[str, Any] = {}
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    try:
        DeployConfig.model_validate(data)
    except ValidationError as exc:
        return not any(tuple(str(p) for p in e["loc"]) == path for e in exc.errors())
    return True


def template_accepts(parameter: dict[str, Any], value: str) -> bool:
    """Whether CloudFormation takes `value` for `parameter` (its documented constraint semantics)."""
    if parameter["Type"] == "Number":
        if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
            return False
        if "MinValue" in parameter and float(value) < float(parameter["MinValue"]):
            return False
        if "MaxValue" in parameter and float(value) > float(parameter["MaxValue"]):
            return False
    if "AllowedValues" in parameter and value not in [str(v) for v in parameter["AllowedValues"]]:
        return False
    if "AllowedPattern" in parameter and not re.fullmatch(parameter["AllowedPattern"], value):
        return False
    if "MinLength" in parameter and len(value) < int(parameter["MinLength"]):
        return False
    return not ("MaxLength" in parameter and len(value) > int(parameter["MaxLength"]))


def probes(info, parameter: dict[str, Any], variable: str = "") -> list[str]:
    return _probes(info, parameter) + EXTRA_PROBES.get(variable, [])


def _probes(info, parameter: dict[str, Any]) -> list[str]:
    base, values = kind(info)
    if base is bool:
        return ["true", "false", "maybe"]  # canonical spellings (the model also reads yes, 1, on ...)
    if values:
        return [*values, *(v.upper() for v in values), "other"]
    if base in (int, float):
        bounds = model_bounds(info) + [float(parameter[k]) for k in ("MinValue", "MaxValue") if k in parameter]
        bounds += [float(v) for v in parameter.get("AllowedValues", [])]
        top = int(max(bounds + [300.0])) + 3
        found = [str(n) for n in range(-3, top)] + ["1.5", "abc", "99999999"]
        if base is int:
            found.append("1e3")  # floats: the model also reads 1e3; CloudFormation's users write 1000
        else:
            found += [f"{b + d:g}" for b in model_bounds(info) for d in (-0.5, -0.001, 0.001, 0.5) if b + d >= 0]
        return found
    return NAME_PROBES + [str(parameter.get("Default", ""))]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load(TEMPLATE)


@pytest.fixture(scope="module")
def environment(template) -> dict[str, Any]:
    return template["Resources"]["ApprovalHandler"]["Properties"]["Environment"]["Variables"]


def refs(node: Any) -> set[str]:
    """Every Ref and GetAtt target inside `node`."""
    found: set[str] = set()
    for value in branches(node):
        if isinstance(value, dict):
            if "Ref" in value:
                found.add(value["Ref"])
            elif "Fn::GetAtt" in value:
                target = value["Fn::GetAtt"]
                found.add(target[0] if isinstance(target, list) else target.split(".")[0])
            else:
                for inner in value.values():
                    found |= refs(inner)
    return found


def test_every_setting_the_engine_reads_is_set_from_its_parameter_or_resource(template, environment):
    assert ENV_FIELDS, "the model lists its variables"
    problems = []
    for variable in ENV_FIELDS:
        if variable not in environment:
            problems.append(f"{variable} is not set in the handler's environment")
            continue
        source = STACK_OWNED.get(variable, (stem(variable), ""))[0]
        if source not in refs(environment[variable]):
            problems.append(f"{variable} is not set from {source}: {environment[variable]!r}")
        elif variable not in STACK_OWNED and source not in template["Parameters"]:
            problems.append(f"{variable}: no parameter {source}")
        elif variable in STACK_OWNED and source not in template["Resources"]:
            problems.append(f"{variable}: no resource {source}")
        joined = STACK_JOINED.get(variable, ((), ""))[0]
        if joined and "Fn::Join" not in environment[variable]:
            problems.append(f"{variable} is not a join of {source} with {', '.join(joined)}")
        for resource in joined:
            if resource not in refs(environment[variable]) or resource not in template["Resources"]:
                problems.append(f"{variable} does not name the stack's {resource}: {environment[variable]!r}")
    # GREENLIGHT_STAGES: the [stages] sections as one JSON object (tests/unit/test_template_stages.py)
    stray = sorted(v for v in environment if v.startswith("GREENLIGHT_") and v not in ENV_FIELDS
                   and (v, environment[v]) != ("GREENLIGHT_STAGES", {"Ref": "Stages"}))
    assert problems == [] and stray == [], (problems, f"variables the model does not read: {stray}")


def configured() -> list[str]:
    return [v for v in ENV_FIELDS if v not in STACK_OWNED]


@pytest.mark.parametrize("variable", configured())
def test_the_parameter_default_is_the_model_default(template, variable):
    parameter = template["Parameters"][stem(variable)]
    default = field_info(ENV_FIELDS[variable]).default
    given = str(parameter.get("Default", ""))
    if variable in DERIVED:
        from deploy.config import load_config
        from deploy.stack_parameters import DERIVED as FILLED
        from deploy.stack_parameters import template_parameters

        assert "Default" not in parameter and not template_accepts(parameter, ""), DERIVED[variable]
        assert variable in FILLED and template_parameters(load_config(environ={}))[stem(variable)]
        return
    if default is None:
        assert given == "", f"{stem(variable)} defaults to {given!r}; the model's default is none (\"\")"
        return
    expected = default.value if isinstance(default, enum.Enum) else default
    data: dict[str, Any] = {}
    node = data
    for key in ENV_FIELDS[variable][:-1]:
        node = node.setdefault(key, {})
    node[ENV_FIELDS[variable][-1]] = given
    parsed = DeployConfig.model_validate(data)
    for key in ENV_FIELDS[variable]:
        parsed = getattr(parsed, key if hasattr(parsed, key) else f"{key}_")
    parsed = parsed.value if isinstance(parsed, enum.Enum) else parsed
    assert parsed == expected, f"{stem(variable)} defaults to {given!r}; the model's default is {expected!r}"


@pytest.mark.parametrize("variable", configured())
def test_the_parameter_accepts_exactly_what_the_model_accepts(template, variable):
    path = ENV_FIELDS[variable]
    info, parameter = field_info(path), template["Parameters"][stem(variable)]
    stricter, why = STRICTER.get(variable, (lambda v: False, ""))
    looser, why = LOOSER.get(variable, (lambda v: False, why))
    values = probes(info, parameter, variable) + ([""] if info.default is None and variable not in DERIVED else [])
    values = [v for v in values if not (variable in DERIVED and v == "")]
    disagree = []
    for value in values:
        model, cfn = model_accepts(path, value), template_accepts(parameter, value)
        expected = (model or looser(value)) and not stricter(value)
        if cfn != expected:
            disagree.append(f"{value!r}: the model {'accepts' if model else 'refuses'} it, the template "
                            f"{'accepts' if cfn else 'refuses'} it")
    assert len(values) >= 3 and disagree == [], f"{stem(variable)} ({why or 'same limits'}): {disagree[:8]}"


def test_the_stricter_and_looser_rules_are_real_differences():
    # Each STRICTER entry must refuse something the model accepts, and each LOOSER entry accept something
    # the model refuses, or it hides nothing and should go.
    for variable, (stricter, _) in STRICTER.items():
        candidates = NAME_PROBES + EXTRA_PROBES.get(variable, [])
        assert any(stricter(v) and model_accepts(ENV_FIELDS[variable], v) for v in candidates), variable
    for variable, (looser, _) in LOOSER.items():
        candidates = NAME_PROBES + EXTRA_PROBES.get(variable, [])
        assert any(looser(v) and not model_accepts(ENV_FIELDS[variable], v) for v in candidates), variable


def test_the_comparison_catches_a_wrong_limit(template):
    # A template whose memory parameter took Lambda's range instead of SageMaker Serverless's is caught.
    path = ENV_FIELDS["GREENLIGHT_ENDPOINT_MEMORY_MB"]
    wrong = {"Type": "Number", "MinValue": 1024, "MaxValue": 6144, "Default": 2048}
    info = field_info(path)
    assert any(model_accepts(path, v) != template_accepts(wrong, v) for v in probes(info, wrong))
    right = template["Parameters"]["EndpointMemoryMb"]
    assert all(model_accepts(path, v) == template_accepts(right, v) for v in probes(info, right))


def test_the_state_table_is_the_one_the_lease_uses(template):
    import inspect

    from deploy.engine import aws_state

    table = template["Resources"]["StateTable"]["Properties"]
    lease = aws_state.DynamoLease(client=None, table="t", group="g")
    [key] = lease.key
    assert table["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": name, "AttributeType": "S"}
                                             for name in (key, "history", "at")]
    ttl = table["TimeToLiveSpecification"]
    assert ttl["Enabled"] is True and f"{ttl['AttributeName']} < :now" in inspect.getsource(aws_state)


def test_the_state_table_has_the_index_the_history_queries(template):
    import inspect

    from deploy.engine import aws_history

    [index] = template["Resources"]["StateTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == aws_history.HISTORY_INDEX
    assert index["KeySchema"] == [{"AttributeName": "history", "KeyType": "HASH"},
                                  {"AttributeName": "at", "KeyType": "RANGE"}]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    source = inspect.getsource(aws_history)
    assert '"history": {"S"' in source and '"at": {"S"' in source


def test_a_local_batch_folder_is_not_passed_to_the_stack():
    from deploy.config import load_config
    from deploy.stack_parameters import template_parameters

    local = template_parameters(load_config(environ={"GREENLIGHT_BATCH_INPUT": "data/in",
                                                     "GREENLIGHT_BATCH_OUTPUT": "data/out"}))
    assert (local["BatchInput"], local["BatchOutput"]) == ("", "")  # the stack's bucket prefixes instead
    remote = template_parameters(load_config(environ={"GREENLIGHT_BATCH_INPUT": "s3://bucket-x/in/",
                                                      "GREENLIGHT_BATCH_OUTPUT": "s3://bucket-x/out/"}))
    assert (remote["BatchInput"], remote["BatchOutput"]) == ("s3://bucket-x/in/", "s3://bucket-x/out/")
