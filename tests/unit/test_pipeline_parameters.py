"""The pipeline's parameters come from one table (pipelines/parameters.py) and are range-checked before any step.

GIVEN the table WHEN a value outside a parameter's range is given to `check_parameters`, to the local runner
(LocalRunner.check) or to `greenlight run` THEN one ParameterError names the parameter and its range, and
nothing runs (no execution record). The defaults, the definition's declared parameters and the table agree.
"""

from __future__ import annotations

import pytest

from greenlight.errors import ParameterError
from pipelines.parameters import MAX_TREES, PARAMETER_DEFAULTS, PARAMETERS, check_parameters, check_ranges

# name -> (values taken, values refused), as --param text
RANGES = {
    "NEstimators": (["1", str(MAX_TREES)], ["0", "-3", str(MAX_TREES + 1), "100000000000000000000"]),
    "MaxDepth": (["None", "none", "1", "1000"], ["0", "-1", "1001", "deep"]),
    "MinSamplesLeaf": (["1", "50"], ["0", "-1"]),
    "MaxFeatures": (["sqrt", "log2", "None", "1", "7", "1.0", "0.3"], ["0", "0.0", "1.5", "-2", "many"]),
    "RandomState": (["0", str(2**32 - 1)], ["-1", str(2**32)]),
    "NJobs": (["-1", "1", "1024"], ["0", "-2", "1025"]),
    "RmseThreshold": (["0.5", "65"], ["0", "-1.5"]),
    "ModelApprovalStatus": (["PendingManualApproval", "Approved", "Rejected"], ["Foo", "approved", ""]),
    "ModelPackageGroupName": (["greenlight-models", "a", "a" * 63], ["bad_name!", "-x", "a" * 64, ""]),
    "TargetColumn": (["target", "y"], ["", "  "]),
    "ProcessingInstanceType": (["ml.m5.large", "ml.c5.xlarge"], ["m5.large", "ml.m5"]),
    "TrainingInstanceType": (["ml.m5.large"], ["big"]),
    "InputDataUrl": (["s3://bucket/key.csv"], ["/local/file.csv", "s3://"]),
}


def test_every_parameter_has_a_range_row_and_the_defaults_are_in_range():
    assert set(RANGES) == set(PARAMETERS) == set(PARAMETER_DEFAULTS)
    check_ranges({name: default for name, (_, default) in PARAMETER_DEFAULTS.items() if default is not None})


@pytest.mark.parametrize("name", sorted(RANGES))
def test_each_parameter_takes_its_range_and_refuses_the_rest(name):
    taken, refused = RANGES[name]
    for value in taken:
        assert check_parameters({name: value}) == {name: value}
    for value in refused:
        with pytest.raises(ParameterError, match=f"parameter {name}") as error:
            check_parameters({name: value})
        assert ("out of range: it takes " + PARAMETERS[name].accepts in str(error.value)
                or f"is {PARAMETERS[name].kind}, but" in str(error.value)), str(error.value)


def test_the_definition_declares_the_tables_parameters_in_its_order():
    import pipelines.definition as definition

    assert definition.PARAMETER_DEFAULTS is PARAMETER_DEFAULTS
    assert list(PARAMETER_DEFAULTS)[:5] == ["InputDataUrl", "TargetColumn", "ProcessingInstanceType",
                                            "TrainingInstanceType", "NEstimators"]


def test_a_bad_group_name_is_refused_when_the_pipeline_is_configured():
    from pipelines.config import PipelineConfig

    with pytest.raises(ParameterError, match="ModelPackageGroupName=bad_name! is out of range"):
        PipelineConfig.resolve(env={}, model_package_group="bad_name!")
    with pytest.raises(ParameterError, match="ModelPackageGroupName=a_b-c is out of range"):
        PipelineConfig.resolve(env={"SAGEMAKER_PROJECT_NAME": "a_b", "SAGEMAKER_PROJECT_ID": "c"})


def test_the_local_runner_checks_ranges_before_any_step(tmp_path):
    from pipelines.local.executions import ExecutionStore
    from pipelines.local.runner import LocalRunner

    definition = {"Parameters": [{"Name": "NEstimators", "Type": "Integer", "DefaultValue": 100},
                                 {"Name": "ModelApprovalStatus", "Type": "String",
                                  "DefaultValue": "PendingManualApproval"}],
                  "Steps": [{"Name": "Never", "Type": "Fail", "Arguments": {"ErrorMessage": "ran"}}]}
    executions = ExecutionStore(tmp_path / "executions")
    runner = LocalRunner(store=None, registry=None, executions=executions)
    assert runner.check(definition, {"NEstimators": "5"})["NEstimators"] == 5
    for overrides, words in (({"NEstimators": "0"}, "NEstimators=0 is out of range"),
                             ({"ModelApprovalStatus": "Foo"}, "ModelApprovalStatus=Foo is out of range")):
        with pytest.raises(ParameterError, match=words):
            runner.run(definition, overrides)
    assert executions.list() == []  # nothing ran, nothing was recorded


def test_greenlight_run_refuses_before_anything_runs(capsys, tmp_path):
    from greenlight.cli import main

    home = tmp_path / "greenlight-home"  # tests/conftest.py's GREENLIGHT_HOME
    assert main(["run", "--param", "NEstimators=100000000000000000000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"it takes 1 to {MAX_TREES:,} trees" in err, err
    assert not (home / "executions").exists() or not any((home / "executions").iterdir())
