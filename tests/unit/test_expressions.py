"""The local runner's expression and condition evaluator (pipelines/local/expressions.py), pure.

Every function and condition type a definition can use, with the values on both sides of each
boundary, so inverting `Not`, turning `Or` into `And` or flipping a comparison fails a test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from greenlight.errors import DefinitionError, ExecutionFailed, ParameterError
from pipelines.local.expressions import (EXECUTION_VARIABLES, Context, check_expressions, coerce_parameters,
                                         evaluate, evaluate_condition, lookup_path, step_refs)

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "pipeline-definition.json"

PROPERTIES = {
    "Preprocess": {"ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/train"}},
        {"OutputName": "validation", "S3Output": {"S3Uri": "s3://b/validation"}},
        {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/test"}},
    ]}},
    "Train": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"},
              "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv"},
                                  {"ChannelName": "validation", "ContentType": "application/json"}],
              "Grid": [[1, 2], [3, 4]]},
}
EVALUATION = {"regression_metrics": {"rmse": {"value": 52.5}, "mae": {"value": 41.0}},
              "folds": [{"rmse": 50.0}, {"rmse": 55.0}], "odd keys": {"a-b": 7}}


def context(parameters=None, execution=None, files=None, reads=None) -> Context:
    files = {("Evaluate", "EvaluationReport"): EVALUATION} if files is None else files

    def read(step: str, name: str):
        if reads is not None:
            reads.append((step, name))
        return files[(step, name)]

    return Context(parameters or {}, execution or {}, PROPERTIES, read)


def get(ref: str) -> dict:
    return {"Get": ref}


def json_get(path: str, step: str = "Evaluate", name: str = "EvaluationReport") -> dict:
    return {"Std:JsonGet": {"PropertyFile": get(f"Steps.{step}.PropertyFiles.{name}"), "Path": path}}


def join(on: str, *values) -> dict:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def compare(kind: str, left, right) -> dict:
    return {"Type": kind, "LeftValue": left, "RightValue": right}


# --- Get ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("ref", "expected"), [
    ("Parameters.NEstimators", 100),
    ("Parameters.Name", "forest"),
    ("Execution.PipelineExecutionId", "exec-1"),
    ("Steps.Train.ModelArtifacts.S3ModelArtifacts", "s3://b/model.tar.gz"),
    ("Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri", "s3://b/test"),
    ("Steps.Preprocess.ProcessingOutputConfig.Outputs['validation'].S3Output.S3Uri", "s3://b/validation"),
    ('Steps.Preprocess.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri', "s3://b/train"),
    ("Steps.Preprocess.ProcessingOutputConfig.Outputs[2].S3Output.S3Uri", "s3://b/test"),
    ("Steps.Preprocess.ProcessingOutputConfig.Outputs[0].OutputName", "train"),
    ("Steps.Train.InputDataConfig['validation'].ContentType", "application/json"),
    ("Steps.Train.Grid[1][0]", 3),
    ("Steps.Train.Grid[0][1]", 2),
])
def test_get_resolves_parameters_execution_variables_and_step_property_paths(ref, expected):
    ctx = context({"NEstimators": 100, "Name": "forest"}, {"PipelineExecutionId": "exec-1"})
    assert evaluate(get(ref), ctx) == expected


@pytest.mark.parametrize("ref", [
    "Parameters.Missing",
    "Execution.PipelineName",
    "Steps.Nowhere.ModelArtifacts.S3ModelArtifacts",
    "Steps.Train.ModelArtifacts.Missing",
    "Steps.Preprocess.ProcessingOutputConfig.Outputs['nope'].S3Output.S3Uri",
    "Steps.Preprocess.ProcessingOutputConfig.Outputs[3].S3Output.S3Uri",
    "Steps.Train.ModelArtifacts[0]",                     # an index on a dict
    "Steps.Train.ModelArtifacts.S3ModelArtifacts[0]",    # an index on a string is not its first letter
    "Steps.Train.ModelArtifacts.S3ModelArtifacts.x",     # a key on a string
])
def test_get_of_something_absent_is_a_definition_error_naming_it(ref):
    with pytest.raises(DefinitionError, match="cannot resolve") as caught:
        evaluate(get(ref), context({"NEstimators": 100}, {"PipelineExecutionId": "exec-1"}))
    assert ref in str(caught.value)


def test_get_of_an_unknown_root_is_refused():
    with pytest.raises(DefinitionError, match="unsupported reference 'Pipeline.Name'"):
        evaluate(get("Pipeline.Name"), context())


@pytest.mark.parametrize("path", ["A..B", "A.b-c", "A[x]", "A['b'", "A. B", "A[-1]"])
def test_a_path_that_is_not_of_the_syntax_is_refused_not_half_read(path):
    with pytest.raises(DefinitionError, match="cannot parse path"):
        lookup_path({"A": {"B": 1, "b": {"c": 2}, "x": 3}}, path)


def test_lookup_path_picks_a_list_item_by_its_name_field_not_its_position():
    items = [{"OutputName": "a", "v": 1}, {"OutputName": "b", "v": 2}, {"ChannelName": "c", "v": 3}]
    assert lookup_path({"L": items}, "L['b'].v") == 2
    assert lookup_path({"L": items}, "L['c'].v") == 3
    assert lookup_path({"L": items}, "L[0].v") == 1
    assert lookup_path({"A": {"B": 5}}, "") == {"A": {"B": 5}}
    with pytest.raises(KeyError):
        lookup_path({"L": items}, "L['v']")  # only *Name fields name an item


def test_evaluate_resolves_expressions_anywhere_in_a_fragment_and_leaves_the_rest():
    fragment = {"A": [get("Parameters.N"), {"B": join("-", "x", get("Parameters.N"))}], "C": 1.5, "D": None}
    assert evaluate(fragment, context({"N": 3})) == {"A": [3, {"B": "x-3"}], "C": 1.5, "D": None}


# --- Std:Join ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("values", "on", "expected"), [
    (["s3:/", "bucket", get("Execution.PipelineExecutionId"), "out"], "/", "s3://bucket/exec-1/out"),
    ([get("Parameters.NEstimators")], "", "100"),
    ([get("Parameters.NJobs")], "", "-1"),
    ([get("Parameters.RmseThreshold")], "", "65.0"),
    ([get("Parameters.Ratio")], "", "0.25"),
    ([get("Parameters.Yes"), get("Parameters.No")], ",", "true,false"),
    (["RMSE ", json_get("regression_metrics.rmse.value"), " is above ", get("Parameters.RmseThreshold")], "",
     "RMSE 52.5 is above 65.0"),
    ([join("/", "a", "b"), "c"], ":", "a/b:c"),
    (["only"], "/", "only"),
    ([], "/", ""),
])
def test_join_renders_strings_numbers_and_booleans(values, on, expected):
    params = {"NEstimators": 100, "NJobs": -1, "RmseThreshold": 65.0, "Ratio": 0.25, "Yes": True, "No": False}
    assert evaluate(join(on, *values), context(params, {"PipelineExecutionId": "exec-1"})) == expected


@pytest.mark.parametrize("value", [get("Steps.Train.InputDataConfig"), get("Steps.Train.ModelArtifacts"), None])
def test_join_refuses_to_render_a_list_a_dict_or_null(value):
    with pytest.raises(DefinitionError, match="Std:Join cannot render"):
        evaluate(join("/", "a", value), context())


# --- Std:JsonGet -------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "expected"), [
    ("regression_metrics.rmse.value", 52.5),
    ("regression_metrics.mae.value", 41.0),
    ("folds[1].rmse", 55.0),
    ("folds[0].rmse", 50.0),
    ("regression_metrics['rmse'].value", 52.5),
    ("['odd keys']['a-b']", 7),
])
def test_json_get_reads_the_named_property_file_at_the_path(path, expected):
    reads: list = []
    assert evaluate(json_get(path), context(reads=reads)) == expected
    assert reads == [("Evaluate", "EvaluationReport")]


def test_json_get_reads_the_file_of_the_step_and_name_it_refers_to():
    files = {("Evaluate", "EvaluationReport"): EVALUATION, ("Check", "Other"): {"x": 1}}
    reads: list = []
    assert evaluate(json_get("x", step="Check", name="Other"), context(files=files, reads=reads)) == 1
    assert reads == [("Check", "Other")]


@pytest.mark.parametrize("path", ["regression_metrics.r2.value", "folds[2].rmse", "regression_metrics.rmse.value.x"])
def test_json_get_of_a_missing_path_names_the_path_file_and_step(path):
    with pytest.raises(DefinitionError) as caught:
        evaluate(json_get(path), context())
    assert str(caught.value) == (f"JsonGet: {path!r} not found in property file EvaluationReport "
                                 "of step Evaluate")


# --- conditions --------------------------------------------------------------------------------

ORDERINGS = [
    # kind, left, right, expected: below, equal and above the right value for each comparison
    ("GreaterThan", 2, 1, True), ("GreaterThan", 1, 1, False), ("GreaterThan", 1, 2, False),
    ("GreaterThanOrEqualTo", 2, 1, True), ("GreaterThanOrEqualTo", 1, 1, True), ("GreaterThanOrEqualTo", 1, 2, False),
    ("LessThan", 1, 2, True), ("LessThan", 1, 1, False), ("LessThan", 2, 1, False),
    ("LessThanOrEqualTo", 1, 2, True), ("LessThanOrEqualTo", 1, 1, True), ("LessThanOrEqualTo", 2, 1, False),
    ("GreaterThanOrEqualTo", 65, 65.0, True), ("LessThan", 65, 65.0, False),        # int and float are numbers
    ("GreaterThan", -0.5, -1, True), ("LessThan", 1e-12, 0.0, False),
]


@pytest.mark.parametrize(("kind", "left", "right", "expected"), ORDERINGS)
def test_orderings_on_both_sides_of_the_boundary(kind, left, right, expected):
    ctx = context({"L": left, "R": right})
    assert evaluate_condition(compare(kind, left, right), ctx) is expected
    assert evaluate_condition(compare(kind, get("Parameters.L"), get("Parameters.R")), ctx) is expected


@pytest.mark.parametrize(("rmse", "expected"), [
    (65.0, True), (math.nextafter(65.0, math.inf), False), (math.nextafter(65.0, -math.inf), True), (0.0, True),
])
def test_the_pipelines_rmse_gate_registers_at_the_threshold_and_not_one_ulp_above(rmse, expected):
    condition = compare("LessThanOrEqualTo", json_get("regression_metrics.rmse.value"), get("Parameters.RmseThreshold"))
    files = {("Evaluate", "EvaluationReport"): {"regression_metrics": {"rmse": {"value": rmse}}}}
    assert evaluate_condition(condition, context({"RmseThreshold": 65.0}, files=files)) is expected


@pytest.mark.parametrize(("left", "right", "expected"), [
    ("a", "a", True), ("a", "b", False), ("", "", True), ("a", "A", False),
    (1, 1, True), (1, 1.0, True), (1, 2, False), (0.1 + 0.2, 0.3, False),
    (True, True, True), (False, False, True), (True, False, False),
])
def test_equals_compares_values_of_one_kind(left, right, expected):
    ctx = context({"L": left, "R": right})
    assert evaluate_condition(compare("Equals", left, right), ctx) is expected
    assert evaluate_condition(compare("Equals", get("Parameters.L"), get("Parameters.R")), ctx) is expected


@pytest.mark.parametrize(("left", "right"), [("1", 1), (1, "1"), (True, 1), (0, False), ("true", True), (1.0, "1.0")])
def test_equals_refuses_values_of_different_kinds_instead_of_answering_false(left, right):
    with pytest.raises(DefinitionError, match="Equals cannot compare values of different types"):
        evaluate_condition(compare("Equals", left, right), context())


@pytest.mark.parametrize("kind", ["GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo"])
@pytest.mark.parametrize(("left", "right"), [("10", 9), (10, "9"), ("b", "a"), (True, 0), (1, None)])
def test_orderings_refuse_anything_but_numbers(kind, left, right):
    with pytest.raises(DefinitionError, match=f"{kind} compares numbers"):
        evaluate_condition(compare(kind, left, right), context())


@pytest.mark.parametrize(("query", "values", "expected"), [
    ("b", ["a", "b"], True), ("a", ["a", "b"], True), ("c", ["a", "b"], False), ("a", [], False),
    (1, [1.0, 2], True), (3, [1, 2], False),
    (True, [1], False), (1, [True], False), ("1", [1], False),          # another kind never matches
    (get("Parameters.Status"), ["Approved", get("Parameters.Other")], True),
    ("Rejected", ["Approved", get("Parameters.Other")], False),
    ("Pending", [get("Parameters.Other")], True),
])
def test_in_is_membership_among_values_of_the_same_kind(query, values, expected):
    ctx = context({"Status": "Approved", "Other": "Pending"})
    assert evaluate_condition({"Type": "In", "QueryValue": query, "Values": values}, ctx) is expected


def test_in_over_something_that_is_not_a_list_is_refused_not_a_substring_test():
    with pytest.raises(DefinitionError, match="In: Values must be a list"):
        evaluate_condition({"Type": "In", "QueryValue": "ab", "Values": get("Parameters.S")}, context({"S": "abc"}))


TRUE, FALSE = compare("Equals", "x", "x"), compare("Equals", "x", "y")


@pytest.mark.parametrize(("inner", "expected"), [(TRUE, False), (FALSE, True)])
def test_not_inverts(inner, expected):
    assert evaluate_condition({"Type": "Not", "Expression": inner}, context()) is expected
    twice = {"Type": "Not", "Expression": {"Type": "Not", "Expression": inner}}
    assert evaluate_condition(twice, context()) is (not expected)


@pytest.mark.parametrize(("conditions", "expected"), [
    ([FALSE, FALSE], False), ([FALSE, TRUE], True), ([TRUE, FALSE], True), ([TRUE, TRUE], True),
    ([FALSE], False), ([TRUE], True), ([], False), ([FALSE, FALSE, TRUE], True),
])
def test_or_is_true_when_any_is(conditions, expected):
    assert evaluate_condition({"Type": "Or", "Conditions": conditions}, context()) is expected


def test_conditions_nest():
    rmse_ok = compare("LessThanOrEqualTo", json_get("regression_metrics.rmse.value"), 60.0)
    mae_bad = compare("GreaterThan", json_get("regression_metrics.mae.value"), 50.0)
    either = {"Type": "Or", "Conditions": [{"Type": "Not", "Expression": rmse_ok}, mae_bad]}
    assert evaluate_condition(either, context()) is False
    assert evaluate_condition({"Type": "Not", "Expression": either}, context()) is True


@pytest.mark.parametrize("kind", ["NotEquals", "And", "Between"])
def test_an_unknown_condition_type_is_refused_at_evaluation_too(kind):
    with pytest.raises(DefinitionError, match=f"unsupported condition type '{kind}'"):
        evaluate_condition(compare(kind, 1, 1), context())


# --- the generated definition's own expressions (the committed snapshot) ----------------------

def _snapshot() -> dict:
    return json.loads(SNAPSHOT.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("rmse", "registers"), [(64.5, True), (65.0, True), (65.5, False)])
def test_the_snapshot_condition_and_fail_message_evaluate_as_meant(rmse, registers):
    definition = _snapshot()
    params = coerce_parameters(definition["Parameters"], {})
    [check] = [s for s in definition["Steps"] if s["Type"] == "Condition"]
    files = {("Evaluate", "EvaluationReport"): {"regression_metrics": {"rmse": {"value": rmse}}}}
    ctx = Context(params, {}, {}, lambda step, name: files[(step, name)])
    assert all(evaluate_condition(c, ctx) for c in check["Arguments"]["Conditions"]) is registers
    [fail] = check["Arguments"]["ElseSteps"]
    assert evaluate(fail["Arguments"]["ErrorMessage"], ctx) == (
        f"RMSE {rmse} is above the threshold 65.0; the model was not registered")


def test_the_snapshot_passes_the_checks_and_reads_only_its_own_steps():
    definition = _snapshot()
    names = {s["Name"] for s in definition["Steps"]} | {
        s["Name"] for c in definition["Steps"] if c["Type"] == "Condition"
        for s in c["Arguments"]["IfSteps"] + c["Arguments"]["ElseSteps"]}
    params = {p["Name"] for p in definition["Parameters"]}
    for step in definition["Steps"]:
        check_expressions(step["Arguments"], step["Name"], params, names)
        assert step_refs(step["Arguments"]) <= names - {step["Name"]}


# --- coerce_parameters -------------------------------------------------------------------------

DECLARED = [
    {"Name": "Url", "Type": "String", "DefaultValue": "s3://b/data.csv"},
    {"Name": "NEstimators", "Type": "Integer", "DefaultValue": 100},
    {"Name": "Threshold", "Type": "Float", "DefaultValue": 65.0},
    {"Name": "Whole", "Type": "Float", "DefaultValue": 3},
    {"Name": "Cache", "Type": "Boolean", "DefaultValue": True},
    {"Name": "Plain", "DefaultValue": "no type means String"},
]


def test_defaults_come_typed():
    values = coerce_parameters(DECLARED, {})
    assert values == {"Url": "s3://b/data.csv", "NEstimators": 100, "Threshold": 65.0, "Whole": 3.0, "Cache": True,
                      "Plain": "no type means String"}
    assert [type(values[n]) for n in ("NEstimators", "Threshold", "Whole", "Cache")] == [int, float, float, bool]


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("Url", "s3://other/x.csv", "s3://other/x.csv"), ("Url", "", ""), ("Url", "100", "100"),
    ("NEstimators", "20", 20), ("NEstimators", "-1", -1), ("NEstimators", "+3", 3), ("NEstimators", "0", 0),
    ("Threshold", "1.5", 1.5), ("Threshold", "2", 2.0), ("Threshold", "1e-3", 0.001), ("Threshold", "-.5", -0.5),
    ("Threshold", "7.", 7.0), ("Threshold", "1E+2", 100.0),
    ("Cache", "false", False), ("Cache", "FALSE", False), ("Cache", "True", True), ("Cache", "true", True),
])
def test_overrides_are_cast_to_the_declared_type(name, raw, expected):
    value = coerce_parameters(DECLARED, {name: raw})[name]
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(("name", "raw"), [
    ("NEstimators", "3.5"), ("NEstimators", "abc"), ("NEstimators", ""), ("NEstimators", "1_000"),
    ("NEstimators", " 5"), ("NEstimators", "1e3"),
    ("Threshold", "abc"), ("Threshold", ""), ("Threshold", "nan"), ("Threshold", "inf"), ("Threshold", "-Infinity"),
    ("Threshold", "1e999"), ("Threshold", "1_0.5"), ("Threshold", "0x10"),
    ("Cache", "yes"), ("Cache", "1"), ("Cache", ""),
])
def test_a_value_of_the_wrong_type_names_the_parameter_its_type_and_the_value(name, raw):
    kind = {p["Name"]: p["Type"] for p in DECLARED if "Type" in p}[name]
    with pytest.raises(ParameterError) as caught:
        coerce_parameters(DECLARED, {name: raw})
    assert str(caught.value) == f"parameter {name} is {kind}, but {raw!r} is not"


@pytest.mark.parametrize(("spec", "shown"), [
    ({"Name": "N", "Type": "Integer", "DefaultValue": 3.7}, "3.7"),      # not silently 3
    ({"Name": "N", "Type": "Integer", "DefaultValue": True}, "True"),
    ({"Name": "N", "Type": "Float", "DefaultValue": False}, "False"),
    ({"Name": "N", "Type": "Boolean", "DefaultValue": "maybe"}, "'maybe'"),
])
def test_a_default_of_the_wrong_type_in_the_definition_is_refused(spec, shown):
    with pytest.raises(ParameterError, match=f"parameter N is {spec['Type']}, but {shown} is not"):
        coerce_parameters([spec], {})


def test_unknown_overrides_are_named_with_the_known_ones():
    with pytest.raises(ParameterError) as one:
        coerce_parameters(DECLARED, {"Nope": "1"})
    assert str(one.value) == ("unknown pipeline parameter 'Nope'; known: Url, NEstimators, Threshold, Whole, Cache, "
                              "Plain")
    with pytest.raises(ParameterError, match="unknown pipeline parameters 'A', 'B'; known: Url"):
        coerce_parameters(DECLARED, {"B": "1", "A": "2", "Url": "s3://x"})


def test_a_parameter_with_no_default_needs_a_value():
    declared = [{"Name": "Data", "Type": "String"}]
    with pytest.raises(ParameterError, match="pipeline parameter Data has no default; pass --param Data=VALUE"):
        coerce_parameters(declared, {})
    assert coerce_parameters(declared, {"Data": "s3://b/k"}) == {"Data": "s3://b/k"}


def test_an_unsupported_parameter_type_is_a_definition_error():
    with pytest.raises(DefinitionError, match="pipeline parameter When has unsupported type 'Date'"):
        coerce_parameters([{"Name": "When", "Type": "Date", "DefaultValue": "2024-01-01"}], {})


# --- check_expressions -------------------------------------------------------------------------

STEPS = {"Preprocess", "Train", "Evaluate"}
PARAMS = {"NEstimators", "RmseThreshold"}


def check(node) -> None:
    check_expressions(node, "step X (Processing)", PARAMS, STEPS)


def test_everything_the_evaluator_supports_passes_the_check():
    check({"A": [get("Parameters.NEstimators"), get("Steps.Train.ModelArtifacts.S3ModelArtifacts"),
                 get("Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"),
                 join("/", "s3:/", *[get(f"Execution.{v}") for v in sorted(EXECUTION_VARIABLES)]),
                 json_get("regression_metrics.rmse.value")],
           "Conditions": [
               compare("LessThanOrEqualTo", json_get("folds[0].rmse"), get("Parameters.RmseThreshold")),
               {"Type": "Not", "Expression": compare("Equals", 1, 1)},
               {"Type": "Or", "Conditions": [compare("GreaterThan", 1, 0), compare("LessThan", 0, 1),
                                             compare("GreaterThanOrEqualTo", 1, 1)]},
               {"Type": "In", "QueryValue": get("Parameters.NEstimators"), "Values": [10, 100]}]})


@pytest.mark.parametrize(("node", "message"), [
    ({"Std:Split": {"On": ",", "Value": "a,b"}}, "unsupported expression 'Std:Split'"),
    ({"X": [{"Fn:Join": ["a"]}]}, "unsupported expression 'Fn:Join'"),
    (get("Parameters.Missing"), "reference to unknown parameter 'Missing'"),
    (get("Parameters.NEstimators.x"), "reference to unknown parameter 'NEstimators.x'"),
    (get("Steps.Deploy.ModelArtifacts.S3ModelArtifacts"), "reference to unknown step 'Deploy'"),
    (get("Steps.Train.ModelArtifacts..S3ModelArtifacts"), "cannot parse path 'ModelArtifacts..S3ModelArtifacts'"),
    (get("Execution.TrainingJobName"), "unsupported execution variable 'TrainingJobName'"),
    (get("Pipeline.Name"), "unsupported reference 'Pipeline.Name'"),
    (get(7), "Get takes a reference string, not 7"),
    ({"Std:Join": {"On": "/", "Values": "abc"}}, "Std:Join takes a string On and a list of Values"),
    ({"Std:Join": {"Values": ["a"]}}, "Std:Join takes a string On and a list of Values"),
    ({"Std:JsonGet": {"S3Uri": join("/", "s3://b", "k.json"), "Path": "a"}}, "Std:JsonGet is supported with"),
    ({"Std:JsonGet": {"PropertyFile": "EvaluationReport", "Path": "a"}}, "Std:JsonGet is supported with"),
    ({"Std:JsonGet": {"PropertyFile": get("Steps.Evaluate.Outputs"), "Path": "a"}}, "Std:JsonGet is supported with"),
    ({"Std:JsonGet": {"PropertyFile": get("Steps.Evaluate.PropertyFiles.R")}}, "Std:JsonGet is supported with"),
    (json_get("a b"), "cannot parse path 'a b'"),
    (json_get("x", step="Deploy"), "reference to unknown step 'Deploy'"),
    (compare("NotEquals", 1, 2), "unsupported condition type 'NotEquals'"),
    ({"Type": "And", "Conditions": [compare("Equals", 1, 1)]}, "unsupported condition type 'And'"),
    ({"C": [{"Type": "Or", "Conditions": [compare("Between", 1, 2)]}]}, "unsupported condition type 'Between'"),
    ({"Type": "Equals", "LeftValue": 1}, "Equals condition lacks RightValue"),
    ({"Type": "In", "QueryValue": 1}, "In condition lacks Values"),
    ({"Type": "Not", "Expression": compare("LessThan", get("Parameters.Nope"), 1)}, "unknown parameter 'Nope'"),
])
def test_check_refuses_what_the_evaluator_cannot_honour_naming_where(node, message):
    with pytest.raises(DefinitionError) as caught:
        check(node)
    assert str(caught.value).startswith("step X (Processing): ") and message in str(caught.value)


def test_the_runner_supplies_every_execution_variable_the_check_accepts(tmp_path):
    from greenlight.store import LocalArtifactStore
    from pipelines.local.executions import ExecutionStore
    from pipelines.local.runner import LocalRunner

    names = sorted(EXECUTION_VARIABLES)
    message = join("|", *[get(f"Execution.{n}") for n in names])
    definition = {"Version": "2020-12-01", "Parameters": [],
                  "Steps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": message}}]}
    runner = LocalRunner(LocalArtifactStore(tmp_path / "s3"), None, ExecutionStore(tmp_path / "executions"))
    with pytest.raises(ExecutionFailed) as caught:
        runner.run(definition, {}, pipeline_name="probe")
    values = dict(zip(names, str(caught.value).split("step Stop: ", 1)[1].split("|"), strict=True))
    assert all(values.values()), values
    assert values["PipelineName"] == "probe" and values["PipelineExecutionArn"].endswith(
        f"pipeline/probe/execution/{values['PipelineExecutionId']}")


# --- step_refs ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("node", "expected"), [
    (get("Steps.Train.ModelArtifacts.S3ModelArtifacts"), {"Train"}),
    (json_get("regression_metrics.rmse.value"), {"Evaluate"}),
    ({"A": [join("/", get("Steps.Preprocess.X"), {"B": get("Steps.Train.Y")})], "C": get("Parameters.P")},
     {"Preprocess", "Train"}),
    ([compare("LessThan", get("Steps.Evaluate.Z"), get("Execution.PipelineExecutionId"))], {"Evaluate"}),
    ({"Get": "Parameters.Steps"}, set()),
    ({"Get": 5, "Name": "Steps.Train"}, set()),
    ({}, set()),
])
def test_step_refs_are_the_steps_a_fragment_reads(node, expected):
    assert step_refs(node) == expected
