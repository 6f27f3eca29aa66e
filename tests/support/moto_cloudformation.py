"""moto 5.2's CloudFormation, extended in the test process for what Greenlight's templates need.

moto creates a resource type in a stack only if a model declares it; for the types below its service
backends exist (and are what the resources' APIs use), but no CloudFormation model does, so each gets a
small model that calls the backend: AWS::Lambda::Alias, AWS::Lambda::Url, AWS::Lambda::EventInvokeConfig,
AWS::SQS::QueuePolicy, AWS::CloudWatch::Alarm (metric-math alarms included), AWS::S3::BucketPolicy, AWS::Scheduler::Schedule,
AWS::IAM::RolePolicy,
AWS::ServiceCatalog::Portfolio and ::CloudFormationProduct; and Fn::GetAtt of an AWS::SSM::Parameter's
Value and an AWS::Lambda::Version's Version. moto's Service Catalog has no launch constraints and no
portfolio associations: those three types are recorded (`SERVICE_CATALOG_LINKS`) for the tests to read,
nothing more. Types moto cannot create at all are listed in `LACKING` with the reason; the tests name them.

moto also leaves out, on a stack update, a resource whose Condition turns true (it creates only resources
new to the template): `install()` creates them after moto's update, as CloudFormation does.

moto's CloudFormation does not run the `AWS::LanguageExtensions` transform: `install()` expands `Fn::ForEach`
where moto parses a stack's or a change set's template, for the parameters the stack is given
(tests/support/cfn_foreach.py, shared with tests/support/cfn_eval.py); the stack keeps the original template,
which is what tells "no changes". DescribeStacks gives a CommaDelimitedList parameter as AWS does ("a,b"; moto:
its Python list as text).

moto also executes a change set without rollback and without computing the stack's outputs afterwards: an error while creating a resource escapes as an
HTTP 500 and the stack stays "complete". `install()` wraps resource creation so such an error becomes
what CloudFormation does: a CREATE_FAILED (or UPDATE_FAILED) event naming the resource and the reason,
and the stack in ROLLBACK_COMPLETE (UPDATE_ROLLBACK_COMPLETE for an update).

Call `install()` before the moto server starts (tests/contract/conftest.py does).
"""

from __future__ import annotations

import json
from typing import Any

from moto.core.common_models import CloudFormationModel

__all__ = ["LACKING", "install"]

# Resource types of the templates moto cannot create, and why (found by creating the templates).
LACKING = {
    "AWS::CodeBuild::Project": "moto has no CloudFormation model for it (its CodeBuild backend is not wired here)",
    "AWS::CodePipeline::Pipeline": "moto has no CloudFormation model for it (its CodePipeline backend is not "
                                   "wired here)",
    "Custom::SeedSource": "moto runs a Lambda-backed custom resource by invoking the function, which needs Docker "
                          "(tests/contract/test_project_seed.py runs its code against moto's S3 instead)",
}
SERVICE_CATALOG_LINKS: list[tuple[str, dict[str, Any]]] = []  # (type, properties) of each link created


def _lambda(account_id: str, region: str):
    from moto.awslambda.models import lambda_backends

    return lambda_backends[account_id][region]


class _Model:
    """What every model below shares (moto finds models as direct subclasses of CloudFormationModel)."""

    attributes: tuple[str, ...] = ()

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.attributes

    def is_created(self) -> bool:
        return True


class LambdaAlias(_Model, CloudFormationModel):
    attributes = ("AliasArn",)

    def __init__(self, alias, function: str):
        self.alias, self.function = alias, function

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Alias"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        function = p["FunctionName"].split(":")[-1] if p["FunctionName"].startswith("arn:") else p["FunctionName"]
        alias = _lambda(account_id, region_name).create_alias(p["Name"], function, str(p["FunctionVersion"]),
                                                            p.get("Description", ""), p.get("RoutingConfig"))
        return cls(alias, function)

    @property
    def physical_resource_id(self) -> str:
        return self.alias.arn

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.alias.arn

    def delete(self, account_id: str, region: str) -> None:
        try:
            _lambda(account_id, region).delete_alias(self.alias.name, self.function)
        except Exception:  # moto deleted the function first
            pass


class LambdaUrl(_Model, CloudFormationModel):
    attributes = ("FunctionUrl", "FunctionArn")

    def __init__(self, config, arn: str):
        self.config, self.arn = config, arn

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::Url"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        config = _lambda(account_id, region_name).create_function_url_config(
            p["TargetFunctionArn"], {"AuthType": p["AuthType"], "Cors": p.get("Cors"), "Qualifier": p.get("Qualifier")})
        return cls(config, p["TargetFunctionArn"])

    @property
    def physical_resource_id(self) -> str:
        return self.config.function.function_arn

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.config.url if attribute_name == "FunctionUrl" else self.config.function.function_arn

    def delete(self, account_id: str, region: str) -> None:
        try:
            _lambda(account_id, region).delete_function_url_config(self.arn)
        except Exception:  # the function went first
            pass


class LambdaEventInvokeConfig(_Model, CloudFormationModel):
    def __init__(self, function: str):
        self.function = function

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Lambda::EventInvokeConfig"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = dict(cloudformation_json["Properties"])
        function = p.pop("FunctionName")
        p.pop("Qualifier", None)
        _lambda(account_id, region_name).put_function_event_invoke_config(function, p)
        return cls(function)

    @property
    def physical_resource_id(self) -> str:
        return self.function

    def delete(self, account_id: str, region: str) -> None:
        pass


class SqsQueuePolicy(_Model, CloudFormationModel):
    def __init__(self, queues: list[str]):
        self.queues = queues

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SQS::QueuePolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.sqs.models import sqs_backends

        p = cloudformation_json["Properties"]
        for url in p["Queues"]:
            sqs_backends[account_id][region_name].set_queue_attributes(
                url.rsplit("/", 1)[-1], {"Policy": json.dumps(p["PolicyDocument"])})
        return cls(p["Queues"])

    @property
    def physical_resource_id(self) -> str:
        return ",".join(self.queues)

    def delete(self, account_id: str, region: str) -> None:
        pass


class CloudWatchAlarm(_Model, CloudFormationModel):
    attributes = ("Arn",)

    def __init__(self, alarm):
        self.alarm = alarm

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.cloudwatch.models import cloudwatch_backends

        p = cloudformation_json["Properties"]
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=p.get("AlarmName", resource_name), namespace=p.get("Namespace"), metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"], evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p["Period"]) if "Period" in p else None, threshold=float(p["Threshold"]),
            statistic=p.get("Statistic"), extended_statistic=p.get("ExtendedStatistic"),
            description=p.get("AlarmDescription", ""), dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions") or [], treat_missing_data=p.get("TreatMissingData"),
            metric_data_queries=_queries(p.get("Metrics")))
        return cls(alarm)

    @property
    def physical_resource_id(self) -> str:
        return self.alarm.name

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.alarm.alarm_arn

    def delete(self, account_id: str, region: str) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        cloudwatch_backends[account_id][region].delete_alarms([self.alarm.name])


def _queries(metrics: list[dict[str, Any]] | None):
    """A metric-math alarm's Metrics as moto's MetricDataQuery objects (what its PutMetricAlarm builds)."""
    if not metrics:
        return None
    from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat

    queries = []
    for m in metrics:
        stat = None
        if "MetricStat" in m:
            s, metric = m["MetricStat"], m["MetricStat"]["Metric"]
            dimensions = [Dimension(name=d["Name"], value=d["Value"]) for d in metric.get("Dimensions", [])]
            stat = MetricStat(metric=Metric(metric_name=metric["MetricName"], namespace=metric["Namespace"],
                                            dimensions=dimensions), period=s["Period"], stat=s["Stat"],
                              unit=s.get("Unit"))
        queries.append(MetricDataQuery(query_id=m["Id"], label=m.get("Label"), period=m.get("Period"),
                                       return_data=m.get("ReturnData", True), expression=m.get("Expression"),
                                       metric_stat=stat))
    return queries


class S3BucketPolicy(_Model, CloudFormationModel):
    def __init__(self, bucket: str):
        self.bucket = bucket

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::S3::BucketPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.s3.models import s3_backends

        p = cloudformation_json["Properties"]
        s3_backends[account_id]["aws"].put_bucket_policy(p["Bucket"], json.dumps(p["PolicyDocument"]).encode())
        return cls(p["Bucket"])

    @property
    def physical_resource_id(self) -> str:
        return self.bucket

    def delete(self, account_id: str, region: str) -> None:
        from moto.s3.models import s3_backends

        try:
            s3_backends[account_id]["aws"].delete_bucket_policy(self.bucket)
        except Exception:  # the bucket is retained or already gone
            pass


class SchedulerSchedule(_Model, CloudFormationModel):
    attributes = ("Arn",)

    def __init__(self, schedule, group: str):
        self.schedule, self.group = schedule, group

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::Scheduler::Schedule"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.scheduler.models import scheduler_backends

        p = cloudformation_json["Properties"]
        schedule = scheduler_backends[account_id][region_name].create_schedule(
            description=p.get("Description"), end_date=p.get("EndDate"), flexible_time_window=p["FlexibleTimeWindow"],
            group_name=p.get("GroupName"), kms_key_arn=p.get("KmsKeyArn"), name=p.get("Name", resource_name),
            schedule_expression=p["ScheduleExpression"],
            schedule_expression_timezone=p.get("ScheduleExpressionTimezone"), start_date=p.get("StartDate"),
            state=p.get("State", "ENABLED"), target=p["Target"], action_after_completion=None)
        return cls(schedule, p.get("GroupName") or "default")

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                        region_name):
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @property
    def physical_resource_id(self) -> str:
        return self.schedule.name

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.schedule.arn

    def delete(self, account_id: str, region: str) -> None:
        from moto.scheduler.models import scheduler_backends

        try:
            scheduler_backends[account_id][region].delete_schedule(self.group, self.schedule.name)
        except Exception:  # already gone
            pass


class IamRolePolicy(_Model, CloudFormationModel):
    """An inline policy of a role (the deploy stack's per-stage statements, issue 21): PutRolePolicy."""

    def __init__(self, role: str, name: str):
        self.role, self.name = role, name

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::IAM::RolePolicy"

    @staticmethod
    def _iam(account_id: str):
        from moto.iam.models import iam_backends

        return iam_backends[account_id]["aws"]

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        p = cloudformation_json["Properties"]
        cls._iam(account_id).put_role_policy(p["RoleName"], p["PolicyName"], json.dumps(p["PolicyDocument"]))
        return cls(p["RoleName"], p["PolicyName"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                        region_name):
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @property
    def physical_resource_id(self) -> str:
        return f"{self.role}|{self.name}"

    def delete(self, account_id: str, region: str) -> None:
        try:
            self._iam(account_id).delete_role_policy(self.role, self.name)
        except Exception:  # the role went first
            pass


class ServiceCatalogPortfolio(_Model, CloudFormationModel):
    def __init__(self, portfolio_id: str):
        self.portfolio_id = portfolio_id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ServiceCatalog::Portfolio"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.servicecatalog.models import servicecatalog_backends

        p = cloudformation_json["Properties"]
        detail, _ = servicecatalog_backends[account_id][region_name].create_portfolio(
            None, p["DisplayName"], p.get("Description"), p["ProviderName"], p.get("Tags"), None)
        return cls(detail["Id"])

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                        region_name):
        return original_resource

    @property
    def physical_resource_id(self) -> str:
        return self.portfolio_id

    def delete(self, account_id: str, region: str) -> None:
        from moto.servicecatalog.models import servicecatalog_backends

        servicecatalog_backends[account_id][region].delete_portfolio(None, self.portfolio_id)


class ServiceCatalogProduct(_Model, CloudFormationModel):
    def __init__(self, product_id: str):
        self.product_id = product_id

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::ServiceCatalog::CloudFormationProduct"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        from moto.servicecatalog.models import servicecatalog_backends

        p = cloudformation_json["Properties"]
        [artifact] = p["ProvisioningArtifactParameters"]
        product = servicecatalog_backends[account_id][region_name].create_product(
            name=p["Name"], owner=p["Owner"], description=p.get("Description"), distributor=None,
            support_description=None, support_email=None, support_url=None, product_type="CLOUD_FORMATION_TEMPLATE",
            tags=p.get("Tags") or [], provisioning_artifact_parameters={
                "Name": artifact["Name"], "Info": artifact["Info"], "Type": "CLOUD_FORMATION_TEMPLATE"})
        return cls(product.id)

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id,
                                        region_name):
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @property
    def physical_resource_id(self) -> str:
        return self.product_id

    def delete(self, account_id: str, region: str) -> None:
        from moto.servicecatalog.models import servicecatalog_backends

        try:
            servicecatalog_backends[account_id][region].delete_product(None, self.product_id)
        except Exception:  # already gone
            pass


def _link(type_name: str) -> type:
    """A model that records a Service Catalog link moto has no API for (SERVICE_CATALOG_LINKS)."""

    class Link(_Model, CloudFormationModel):
        def __init__(self, properties: dict[str, Any]):
            self.properties = properties

        @staticmethod
        def cloudformation_type() -> str:
            return type_name

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name,
                                            **kwargs):
            SERVICE_CATALOG_LINKS.append((type_name, dict(cloudformation_json["Properties"])))
            return cls(dict(cloudformation_json["Properties"]))

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                            account_id, region_name):
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id,
                                                       region_name)

        @property
        def physical_resource_id(self) -> str:
            return f"{type_name.rsplit('::', 1)[-1]}-{len(SERVICE_CATALOG_LINKS)}"

        def delete(self, account_id: str, region: str) -> None:
            SERVICE_CATALOG_LINKS[:] = [(t, p) for t, p in SERVICE_CATALOG_LINKS
                                        if not (t == type_name and p == self.properties)]

    Link.__name__ = type_name.rsplit("::", 1)[-1]
    return Link


_LINKS = tuple(_link(f"AWS::ServiceCatalog::{name}") for name in (
    "LaunchRoleConstraint", "PortfolioProductAssociation", "PortfolioPrincipalAssociation"))


def _conditions_turned_on() -> None:
    """After moto's update of a stack, create the resources whose Condition turned true (module docstring)."""
    from moto.cloudformation.parsing import ResourceMap

    if getattr(ResourceMap, "_greenlight_conditions", False):
        return
    original = ResourceMap.update

    def update(self, template, parameters=None):
        original(self, template, parameters)
        for logical_id, resource in template["Resources"].items():
            if logical_id not in self._parsed_resources and self.lazy_condition_map.get(
                    resource.get("Condition", ""), True):
                _ = self[logical_id]

    ResourceMap.update = update
    ResourceMap._greenlight_conditions = True


def _missing_attributes() -> None:
    """moto's AWS::SSM::Parameter and AWS::Lambda::Version models have no Fn::GetAtt (Value; Version)."""
    from moto.awslambda.models import LambdaVersion
    from moto.ssm.models import Parameter

    if "get_cfn_attribute" not in vars(LambdaVersion):
        LambdaVersion.get_cfn_attribute = lambda self, name: str(self.version)
        LambdaVersion.has_cfn_attr = classmethod(lambda cls, name: name == "Version")

    if "get_cfn_attribute" not in vars(Parameter):
        Parameter.get_cfn_attribute = lambda self, name: self.value if name == "Value" else self.parameter_type
        Parameter.has_cfn_attr = classmethod(lambda cls, name: name in ("Value", "Type"))


def _tls_only_policies() -> None:
    """moto enforces bucket policies but ignores their conditions ("Conditions are not taken into account",
    S3Backend.put_bucket_policy), so the artifact bucket's TLS-only Deny (aws:SecureTransport false) would
    refuse every request. boto3 talks to AWS over TLS, which such a Deny never matches; only moto's plain
    HTTP would: enforcement here leaves out exactly that statement (get_bucket_policy still shows it)."""
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    if getattr(FakeBucket, "_greenlight_tls", False):
        return
    original = FakeBucket.get_permission

    def get_permission(self, action, resource):
        if self.policy is None:
            return original(self, action, resource)
        policy = json.loads(self.policy)
        tls_only = {"Bool": {"aws:SecureTransport": "false"}}
        kept = [st for st in policy.get("Statement", []) if st.get("Condition") != tls_only]
        saved, self.policy = self.policy, json.dumps({**policy, "Statement": kept}).encode()
        try:
            return original(self, action, resource) if kept else PermissionResult.NEUTRAL
        finally:
            self.policy = saved

    FakeBucket.get_permission = get_permission
    FakeBucket._greenlight_tls = True


def _language_extensions() -> None:
    """Fn::ForEach expanded wherever moto parses a template (module docstring): a stack's (at creation, at an
    update, after a change set) and a change set's, with the parameters it is given."""
    from moto.cloudformation import models

    from tests.support.cfn_foreach import expand

    if getattr(models, "_greenlight_foreach", False):
        return

    def parameters_of(owner) -> dict[str, Any]:
        resource_map = getattr(owner, "resource_map", None)  # a stack after a change set: what it was given
        given = getattr(resource_map, "input_parameters", None) or getattr(owner, "parameters", None)
        return dict(given or {})

    for cls in (models.Stack, models.ChangeSet):
        original_parse = cls._parse_template

        def parse(self, original_parse=original_parse):
            original_parse(self)
            if isinstance(self.template_dict, dict):
                self.template_dict = expand(self.template_dict, parameters_of(self))

        cls._parse_template = parse

    original_init, original_update = models.Stack.__init__, models.Stack.update

    def init(self, stack_id, name, template, parameters, *args, **kwargs):
        self.parameters = parameters  # moto parses the template before it keeps the parameters
        original_init(self, stack_id, name, template, parameters, *args, **kwargs)

    def update(self, template, role_arn=None, parameters=None, tags=None):
        if parameters:
            self.parameters = parameters
            self.resource_map.input_parameters = parameters
        original_update(self, template, role_arn, parameters, tags)

    models.Stack.__init__, models.Stack.update = init, update
    # the same template is the same, whatever its loops expand to (moto compares the parsed templates)
    models.Stack.has_template = lambda self, other: self.parse_template(self.template) == self.parse_template(other)
    original_list = models.Stack.parameter_list.fget

    def parameter_list(self):  # a CommaDelimitedList as AWS returns it, "a,b" (moto: its Python list)
        return [{**p, "ParameterValue": ",".join(map(str, p["ParameterValue"]))}
                if isinstance(p["ParameterValue"], list) else p for p in original_list(self)]

    models.Stack.parameter_list = property(parameter_list)
    models._greenlight_foreach = True


MODELS = (LambdaAlias, LambdaUrl, LambdaEventInvokeConfig, SqsQueuePolicy, CloudWatchAlarm, S3BucketPolicy,
          SchedulerSchedule, IamRolePolicy, ServiceCatalogPortfolio, ServiceCatalogProduct, *_LINKS)


def _with_rollback() -> None:
    """Resource errors during a change set become FAILED events and a rolled-back stack (module docstring)."""
    from moto.cloudformation import models, parsing

    if getattr(parsing, "_greenlight_rollback", False):
        return
    original_create, original_execute = parsing.parse_and_create_resource, models.CloudFormationBackend.execute_change_set

    def create(logical_id, resource_json, resources_map, account_id, region_name):
        try:
            return original_create(logical_id, resource_json, resources_map, account_id, region_name)
        except Exception as exc:
            if not hasattr(exc, "greenlight_resource"):  # the innermost resource: dependencies are created inside
                exc.greenlight_resource = (logical_id, resource_json.get("Type", "?"))  # type: ignore[attr-defined]
            raise

    def execute(self, change_set_name, stack_name=None):
        change_set = self.change_sets.get(change_set_name) or next(
            (c for c in self.change_sets.values() if c.change_set_name == change_set_name), None)
        try:
            original_execute(self, change_set_name, stack_name)
        except Exception as exc:
            where = getattr(exc, "greenlight_resource", None)
            if where is None or change_set is None:
                raise
            stack = self.stacks[change_set.stack_id]
            kind = change_set.change_set_type
            reason = getattr(exc, "message", None) or str(exc)
            stack.events.append(models.Event(stack_id=stack.stack_id, stack_name=stack.name,
                                             logical_resource_id=where[0], physical_resource_id="",
                                             resource_type=where[1], resource_status=f"{kind}_FAILED",
                                             resource_status_reason=reason, resource_properties=None))
            final = "ROLLBACK_COMPLETE" if kind == "CREATE" else "UPDATE_ROLLBACK_COMPLETE"
            stack._add_stack_event(final.replace("COMPLETE", "IN_PROGRESS"),
                                   resource_status_reason="The following resource(s) failed: " + where[0])
            stack._add_stack_event(final)
            stack.status = final
            change_set.execution_status = "EXECUTE_FAILED"
            return
        # moto computes a stack's outputs when create_stack creates it, not when a change set changes it
        stack = self.stacks[change_set.stack_id]
        stack._parse_template()
        stack.output_map = stack._create_output_map()

    parsing.parse_and_create_resource = create
    models.CloudFormationBackend.execute_change_set = execute
    parsing._greenlight_rollback = True


def install() -> None:
    """Register the models and the rollback (idempotent); before the server starts."""
    from moto.cloudformation import parsing

    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    _with_rollback()
    _language_extensions()
    _conditions_turned_on()
    _missing_attributes()
    _tls_only_policies()
