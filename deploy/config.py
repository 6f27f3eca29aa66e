"""The deployment configuration: one typed model, validated against the services' limits.

Read the same way everywhere (`load_config`): defaults, then a TOML file, then environment variables
(what the approval Lambda gets from its stack), each overriding the one before:

    file  --config FILE, else $GREENLIGHT_CONFIG, else ./greenlight.toml, else $GREENLIGHT_HOME/greenlight.toml
    env   GREENLIGHT_<FIELD> for top-level fields, GREENLIGHT_<SECTION>_<FIELD> in sections, e.g.
          GREENLIGHT_GROUP, GREENLIGHT_WHEN_NOTHING_APPROVED, GREENLIGHT_ENDPOINT_MEMORY_MB

    group = "greenlight-models"
    when_nothing_approved = "keep"        # or "stop" (deploy.engine.model explains both)
    [endpoint]
    memory_mb = 2048                      # SageMaker Serverless: 1024-6144 in 1024 steps
    max_concurrency = 5                   # 1-200
    provisioned_concurrency = 1           # optional, at most max_concurrency
    traffic = "canary"                    # or "linear"; default "all-at-once" (issue 22, also in [lambda])
    canary_percent = 20                   # with step_wait_seconds, bake_seconds, max_5xx_percent, max_p99_ms
    [lambda]                              # GREENLIGHT_LAMBDA_<FIELD>; `lambda_` in Python (a keyword)
    memory_mb = 1024                      # 128-10240; decides GREENLIGHT_PREDICT_THREADS (deploy.function.model)
    architecture = "x86_64"               # or "arm64"
    ecr_repository = "greenlight-inference"   # AWS: where the base image is and model images go
    [batch]                               # GREENLIGHT_BATCH_<FIELD>: deploy.batch.config.BatchConfig
    input = "s3://my-bucket/my-models/batch/input/"    # locally: default GREENLIGHT_HOME/batch/groups/<group>/input
    schedule = "cron(0 2 * * ? *)"        # EventBridge Scheduler cron() or rate(), in `timezone`
    [stages.staging]                      # optional, ordered (issue 21); without it one implicit stage
    gate = "approval"                     # the newest Approved version
    [stages.production]                   # GREENLIGHT_STAGES=staging,production and
    gate = "promotion"                    # GREENLIGHT_STAGES_<NAME>_<FIELD>, e.g. GREENLIGHT_STAGES_PRODUCTION_GATE;
                                          # or GREENLIGHT_STAGES={"staging":{"gate":"approval"},...}: the sections
                                          # as one JSON object (the deploy stack's `Stages` parameter: stages_json)
    soak_minutes = 60                     # `promote` wants this long in the previous stage (default 0)
    lambda = false                        # this stage's targets (default: the sections' `enabled`)
    role_arn = "arn:aws:iam::222222222222:role/greenlight-deploy"   # deploy into another account (AWS)
    endpoint_role_arn = "arn:aws:iam::222222222222:role/..."         # its models' execution role there
    traffic = "canary"                    # this stage's shift for its endpoint and Lambda (issue 22); the
                                          # percentages, waits and thresholds stay [endpoint]'s and [lambda]'s

A bad value is one ConfigurationError listing every bad field with its limit and where it came from.
`ENV_FIELDS` lists every variable name, so the CloudFormation template can be checked against it.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deploy.batch.config import BatchConfig
from deploy.engine.model import NothingApproved
from deploy.engine.traffic import Shift, TrafficPolicy
from deploy.names import GroupNames
from greenlight.errors import ConfigurationError, ParameterError
from greenlight.settings import DEFAULT_MODEL_PACKAGE_GROUP

__all__ = ["CONFIG_FILE", "BatchConfig", "DeployConfig", "ENV_FIELDS", "EndpointConfig", "LambdaConfig", "SmokeConfig",
           "Stage", "StageConfig", "load_config", "stages_json"]

CONFIG_FILE = "greenlight.toml"
ENV_PREFIX = "GREENLIGHT_"
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's names (endpoint, model, group)
_FUNCTION = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # Lambda's function name (without an ARN)
_ALIAS = re.compile(r"^(?![0-9]+$)[a-zA-Z0-9_-]{1,128}$")  # Lambda's alias name: not all digits (a version)
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_STAGE = re.compile(r"^[a-z][a-z0-9]{0,15}$")  # also a GREENLIGHT_STAGES_<NAME>_ variable and a name suffix
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$")
IMPLICIT_STAGE = "default"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Traffic(_Section):
    """How an online target moves traffic to a new version (issue 22; deploy/engine/traffic.py)."""

    traffic: Shift = Field(Shift.ALL_AT_ONCE, description="all-at-once (default), canary or linear")
    canary_percent: float = Field(10.0, gt=0, lt=100, description="canary: the new version's share first")
    linear_step_percent: float = Field(10.0, gt=0, le=50, description="linear: the share added every step")
    step_wait_seconds: float = Field(60.0, ge=0, le=3600, description="how long each step is judged before the "
                                                                      "next")
    bake_seconds: float = Field(300.0, ge=0, le=86400, description="after 100%: how long the new version is still "
                                                                   "judged, the previous one kept ready")
    max_5xx_percent: float = Field(1.0, ge=0, le=100, description="roll back when the new version's 5xx share over "
                                                                  "a step is above this (percent)")
    max_p99_ms: float | None = Field(None, gt=0, description="roll back when the new version's p99 latency over a "
                                                             "step is above this (ms); default: not judged")
    min_requests: int = Field(20, ge=1, le=10_000, description="judge a step's shares once the new version "
                                                                 "answered this many (or at the step's end)")
    alarms: tuple[str, ...] = Field((), description="AWS: CloudWatch alarm names that also roll back while in ALARM "
                                                    "(comma-separated in GREENLIGHT_*)")

    @field_validator("alarms", mode="before")
    @classmethod
    def _alarms(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value

    @property
    def traffic_policy(self) -> TrafficPolicy:
        """The engine's view of these fields."""
        return TrafficPolicy(self.traffic, self.canary_percent, self.linear_step_percent, self.step_wait_seconds,
                             self.bake_seconds, self.max_5xx_percent, self.max_p99_ms, self.min_requests,
                             self.alarms)


class EndpointConfig(_Traffic):
    """The SageMaker Serverless Inference endpoint (and its local stand-in)."""

    enabled: bool = True
    name: str | None = Field(None, description="endpoint name; default: the model package group's name")
    memory_mb: int = Field(2048, description="serverless memory: 1024-6144 MB in 1024 MB steps")
    max_concurrency: int = Field(5, ge=1, le=200, description="serverless MaxConcurrency: 1-200")
    provisioned_concurrency: int | None = Field(None, ge=1, le=200,
                                                description="serverless ProvisionedConcurrency: 1 to max_concurrency")
    update_timeout_seconds: float = Field(600.0, gt=0, le=3600,
                                          description="how long to wait for an endpoint update (at most 3600 s; "
                                                      "the approval Lambda itself stops at 900 s, and the next "
                                                      "reconcile finishes what a stopped one left)")
    retention: int = Field(3, ge=0, le=100, description="older models and endpoint configs kept for rollback, "
                                                        "besides the live one and the previous one")
    role_arn: str | None = Field(None, description="SageMaker execution role of the group's SageMaker Models: the "
                                                   "endpoint's and the batch jobs' (AWS)")

    @field_validator("memory_mb")
    @classmethod
    def _memory(cls, value: int) -> int:
        if value not in range(1024, 6145, 1024):
            raise ValueError("must be one of 1024, 2048, 3072, 4096, 5120, 6144 (SageMaker Serverless memory)")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("must be 1-63 letters, digits and single hyphens (SageMaker's endpoint name rule)")
        return value

    @model_validator(mode="after")
    def _provisioned(self) -> EndpointConfig:
        if self.provisioned_concurrency is not None and self.provisioned_concurrency > self.max_concurrency:
            raise ValueError(f"provisioned_concurrency ({self.provisioned_concurrency}) must be at most "
                             f"max_concurrency ({self.max_concurrency})")
        return self


class LambdaConfig(_Traffic):
    """The inference Lambda: its container image refreshed by appending the model, deployed behind an alias."""

    enabled: bool = Field(True, description="deploy approved versions to the Lambda (locally: the local mirror)")
    function_name: str | None = Field(None, description="the function; default: the model package group's name")
    alias: str = Field("live", description="the alias clients call (its Function URL); moved after the smoke test")
    memory_mb: int = Field(1024, description="function memory: 128-10240 MB (Lambda's limits); decides "
                                             "GREENLIGHT_PREDICT_THREADS")
    architecture: Literal["x86_64", "arm64"] = Field("x86_64", description="x86_64 or arm64: the function's and "
                                                                           "the base image's")
    ecr_repository: str | None = Field(None, description="ECR repository of the base image and the model images "
                                                         "(AWS)")
    base_image_tag: str | None = Field(None, description="tag of the base image in ecr_repository; default: the "
                                                         "tag of this code's base for the architecture")
    update_timeout_seconds: float = Field(300.0, gt=0, le=1800, description="how long to wait for a function "
                                                                           "update (at most 1800 s)")
    retention: int = Field(3, ge=0, le=100, description="older function versions and model images kept for "
                                                        "rollback, besides the live one and the previous one")

    @field_validator("memory_mb")
    @classmethod
    def _memory(cls, value: int) -> int:
        if not 128 <= value <= 10240:
            raise ValueError("must be 128-10240 MB (Lambda's memory limits)")
        return value

    @field_validator("function_name")
    @classmethod
    def _function_name(cls, value: str | None) -> str | None:
        if value is not None and not _FUNCTION.match(value):
            raise ValueError("must be 1-64 letters, digits, hyphens and underscores (Lambda's function name rule)")
        return value

    @field_validator("alias")
    @classmethod
    def _alias(cls, value: str) -> str:
        if not _ALIAS.match(value):
            raise ValueError("must be 1-128 letters, digits, hyphens and underscores, not all digits (Lambda's "
                             "alias name rule)")
        return value

    @field_validator("ecr_repository")
    @classmethod
    def _repository(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 256 or not _REPOSITORY.match(value)):
            raise ValueError("must be an ECR repository name: lowercase letters, digits, '.', '_', '-' and '/' "
                             "(at most 256)")
        return value

    @field_validator("base_image_tag")
    @classmethod
    def _tag(cls, value: str | None) -> str | None:
        if value is not None and not _TAG.match(value):
            raise ValueError("must be an image tag: [A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
        return value


class SmokeConfig(_Section):
    """The smoke test every deployment runs against the version it just deployed."""

    required: bool = Field(True, description="refuse to deploy a version without recorded smoke-test data")
    timeout_seconds: float = Field(120.0, gt=0, le=900,
                                   description="bound on waiting for the new version to answer (at most 900 s)")


class StageConfig(_Section):
    """One `[stages.<name>]` section: its gate, its targets and the account it deploys into."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    gate: Literal["approval", "promotion"] = Field(description="approval: the newest Approved version; promotion: "
                                                               "the newest Approved one promoted to this stage")
    endpoint: bool | None = Field(None, description="deploy to this stage's endpoint (default: endpoint.enabled)")
    lambda_: bool | None = Field(None, alias="lambda", description="... its Lambda (default: lambda.enabled)")
    batch: bool | None = Field(None, description="... its batch schedule (default: batch.enabled)")
    soak_minutes: float = Field(0.0, ge=0, le=525600, description="how long a version must have run in the "
                                                                   "previous stage before `promote` to this one")
    role_arn: str | None = Field(None, description="IAM role the handler assumes to deploy this stage (another "
                                                   "account; AWS): deploy/target-account.yaml's DeployRoleArn")
    endpoint_role_arn: str | None = Field(None, description="SageMaker execution role of this stage's models "
                                                            "(default: endpoint.role_arn); in another account: "
                                                            "deploy/target-account.yaml's ExecutionRoleArn")
    traffic: Shift | None = Field(None, description="this stage's traffic shift for its endpoint and Lambda "
                                                    "(default: each section's `traffic`); the other rules stay the "
                                                    "sections' (issue 22)")
    # a stage's batch schedule in another account (decision 0059): target-account.yaml's outputs and parameters
    batch_role_arn: str | None = Field(None, description="role its batch schedule starts the jobs as (default: "
                                                         "batch.role_arn); in another account: "
                                                         "deploy/target-account.yaml's SchedulerRoleArn")
    batch_dead_letter_arn: str | None = Field(None, description="SQS queue of its runs the scheduler could not start "
                                                                "(default: batch.dead_letter_arn); in another account: "
                                                                "target-account.yaml's BatchDeadLetterQueueArn")
    batch_input: str | None = Field(None, description="s3:// prefix its jobs read (default: batch.input); in another "
                                                      "account: target-account.yaml's BatchInput")
    batch_output: str | None = Field(None, description="s3:// prefix its jobs write under (default: batch.output); "
                                                       "in another account: target-account.yaml's BatchOutput")

    @field_validator("role_arn", "endpoint_role_arn", "batch_role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.match(value):
            raise ValueError("must be an IAM role ARN (arn:aws:iam::<12-digit account>:role/<name>)")
        return value

    @field_validator("batch_dead_letter_arn", "batch_input", "batch_output")
    @classmethod
    def _batch(cls, value: str | None, info) -> str | None:
        """The [batch] field's own rule (deploy/batch/config.py)."""
        if value is None:
            return None
        field_name = info.field_name.removeprefix("batch_")
        try:
            BatchConfig.model_validate({field_name: value})
        except ValidationError as exc:
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return value


@dataclass(frozen=True)
class Stage:
    """A stage as the engine uses it: name, gate, position, deployment key (deploy/names.py) and targets."""

    name: str
    gate: str
    index: int
    key: str  # the implicit stage's key is the group: today's names and state, unchanged
    endpoint: bool
    lambda_: bool
    batch: bool
    soak_minutes: float = 0.0
    role_arn: str | None = None
    implicit: bool = False
    endpoint_role_arn: str | None = None
    traffic: Shift | None = None  # overrides [endpoint]/[lambda] `traffic` for this stage's targets (issue 22)
    batch_overrides: tuple[tuple[str, str], ...] = ()  # its [batch] fields set per stage (decision 0059)


class DeployConfig(_Section):
    """Everything the deployment engine reads (module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    group: str = Field(DEFAULT_MODEL_PACKAGE_GROUP, description="model package group to deploy")
    when_nothing_approved: NothingApproved = Field(NothingApproved.KEEP,
                                                   description="keep (online targets keep serving, warned) or stop")
    lock_timeout_seconds: float = Field(600.0, gt=0, le=3600,
                                        description="how long a reconcile waits for another one of the group")
    state_table: str | None = Field(None, description="DynamoDB table for the reconcile lease and status (AWS)")
    endpoint: EndpointConfig = EndpointConfig()
    lambda_: LambdaConfig = Field(LambdaConfig(), alias="lambda")  # `lambda` is a Python keyword
    smoke: SmokeConfig = SmokeConfig()
    batch: BatchConfig = BatchConfig()  # scheduled Batch Transform (deploy/batch/config.py)
    stages: dict[str, StageConfig] = Field(default_factory=dict, description="ordered stages (issue 21)")

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: dict[str, StageConfig]) -> dict[str, StageConfig]:
        for name in value:
            if not _STAGE.match(name):
                raise ValueError(f"stage name {name!r} must be 1-16 lowercase letters and digits, starting with a "
                                 "letter")
        first = next(iter(value.items()), None)
        if first is not None and first[1].gate == "promotion":
            raise ValueError(f"the first stage ({first[0]}) cannot have gate = \"promotion\": a version is promoted "
                             "from the stage before")
        return value

    def stage_list(self) -> list[Stage]:
        """The stages in order; without [stages], the one implicit stage that behaves as before."""
        if not self.stages:
            return [Stage(IMPLICIT_STAGE, "approval", 0, self.group, self.endpoint.enabled, self.lambda_.enabled,
                          self.batch.enabled, implicit=True)]
        return [Stage(name, s.gate, i, self.names.stage(name),
                      self.endpoint.enabled if s.endpoint is None else s.endpoint,
                      self.lambda_.enabled if s.lambda_ is None else s.lambda_,
                      self.batch.enabled if s.batch is None else s.batch, s.soak_minutes, s.role_arn,
                      endpoint_role_arn=s.endpoint_role_arn or self.endpoint.role_arn, traffic=s.traffic,
                      batch_overrides=tuple((f, v) for f, v in (("role_arn", s.batch_role_arn),
                                                                ("dead_letter_arn", s.batch_dead_letter_arn),
                                                                ("input", s.batch_input), ("output", s.batch_output))
                                            if v is not None))
                for i, (name, s) in enumerate(self.stages.items())]

    def traffic_policy(self, section: Literal["endpoint", "lambda"], stage: Stage | None = None) -> TrafficPolicy:
        """The TrafficPolicy of one online target in `stage`: its section's, with the stage's `traffic` if set."""
        policy = (self.endpoint if section == "endpoint" else self.lambda_).traffic_policy
        return policy if stage is None or stage.traffic is None else replace(policy, traffic=stage.traffic)

    def stage(self, name: str | None) -> Stage:
        """One stage by name (None: the first). Raises: ParameterError naming the stages there are."""
        stages = self.stage_list()
        if name is None:
            return stages[0]
        for stage in stages:
            if stage.name == name:
                return stage
        raise ParameterError(f"no stage {name!r} (stages: {', '.join(s.name for s in stages)}"
                             f"{'' if self.stages else '; add [stages.<name>] sections to greenlight.toml'})")

    @field_validator("group")
    @classmethod
    def _group(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-63 letters, digits and single hyphens (SageMaker's group name rule)")
        return value

    @property
    def names(self) -> GroupNames:
        """The AWS names derived from the group (deploy/names.py)."""
        return GroupNames(self.group)

    @property
    def endpoint_name(self) -> str:
        return self.endpoint.name or self.names.endpoint

    @property
    def function_name(self) -> str:
        return self.lambda_.function_name or self.names.function


def _env_fields(model: type[BaseModel], prefix: str = ENV_PREFIX, path: tuple[str, ...] = ()) -> dict:
    fields: dict[str, tuple[str, ...]] = {}
    for field_name, info in model.model_fields.items():
        name = info.alias or field_name  # the name files and variables use (`lambda`, not `lambda_`)
        annotation = info.annotation
        if name == "stages":  # named by the user: GREENLIGHT_STAGES and GREENLIGHT_STAGES_<NAME>_<FIELD> (_stage_env)
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields.update(_env_fields(annotation, f"{prefix}{name.upper()}_", path + (name,)))
        else:
            fields[f"{prefix}{name.upper()}"] = path + (name,)
    return fields


# GREENLIGHT_ENDPOINT_MEMORY_MB -> ("endpoint", "memory_mb"), for every field
ENV_FIELDS: dict[str, tuple[str, ...]] = _env_fields(DeployConfig)


def _find_file(explicit: Path | None, environ: Mapping[str, str], home: Path | None) -> Path | None:
    if explicit is not None:
        if not Path(explicit).is_file():
            raise ConfigurationError(f"--config {explicit}: no such file")
        return Path(explicit)
    if environ.get("GREENLIGHT_CONFIG"):
        path = Path(environ["GREENLIGHT_CONFIG"])
        if not path.is_file():
            raise ConfigurationError(f"GREENLIGHT_CONFIG={path}: no such file")
        return path
    for candidate in (Path.cwd() / CONFIG_FILE, *(() if home is None else (Path(home) / CONFIG_FILE,))):
        if candidate.is_file():
            return candidate
    return None


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None,
                home: Path | None = None, **overrides: Any) -> DeployConfig:
    """Defaults < the TOML file < GREENLIGHT_* variables < keyword overrides (e.g. the CLI's --group).

    Raises:
        ConfigurationError: an unreadable file, an unknown field or a value outside its limits; every
            bad field is named with its limit and where its value came from.
    """
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    sources: dict[tuple[str, ...], str] = {}
    found = _find_file(path, environ, home)
    if found is not None:
        try:
            data = tomllib.loads(found.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigurationError(f"cannot read {found}: {exc}") from None
        _mark(data, (), str(found), sources)
    for name, field_path in ENV_FIELDS.items():
        if name in environ and environ[name] != "":
            node = data
            for key in field_path[:-1]:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    raise ConfigurationError(f"{'.'.join(field_path[:-1])} in {found} is not a table")
            node[field_path[-1]] = environ[name]
            sources[field_path] = name
    _stage_env(data, environ, sources)
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
            sources[(key,)] = "the command line"
    try:
        return DeployConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(_describe(exc, sources)) from None


STAGE_FIELDS = {(info.alias or name).upper(): info.alias or name for name, info in StageConfig.model_fields.items()}


def stages_json(config: DeployConfig) -> str:
    """The `[stages]` sections as GREENLIGHT_STAGES's JSON form ("" without stages): fields named as in
    greenlight.toml, defaults left out, in stage order; `load_config` reads it back into the same stages."""
    if not config.stages:
        return ""
    return json.dumps({name: stage.model_dump(by_alias=True, exclude_defaults=True)
                       for name, stage in config.stages.items()}, separators=(",", ":"))


def _stages_object(text: str) -> dict[str, Any]:
    """GREENLIGHT_STAGES's JSON form: an object of stage name -> object of a stage's fields.

    Raises:
        ConfigurationError: not JSON, or not an object of objects.
    """
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"GREENLIGHT_STAGES: not a JSON object of [stages] sections ({exc}); write stage "
                                 'names (staging,production) or {"staging": {"gate": "approval"}, ...}') from None
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise ConfigurationError("GREENLIGHT_STAGES: a JSON value that is not an object of [stages] sections "
                                 "({\"<stage>\": {\"gate\": ...}, ...})")
    return parsed


def _stage_env(data: dict[str, Any], environ: Mapping[str, str], sources: dict) -> None:
    """GREENLIGHT_STAGES=a,b (the order; replaces the file's stages), or its JSON form (the sections; replaces
    the file's stages), and GREENLIGHT_STAGES_<NAME>_<FIELD>."""
    listed = environ.get("GREENLIGHT_STAGES", "").strip()
    if listed.startswith(("{", "[", '"')):
        data["stages"] = _stages_object(listed)
        sources[("stages",)] = "GREENLIGHT_STAGES"
        for name in data["stages"]:
            sources[("stages", name)] = "GREENLIGHT_STAGES"
            for field_name in data["stages"][name]:
                sources[("stages", name, field_name)] = "GREENLIGHT_STAGES"
    elif listed:
        raw_stages = data.get("stages")
        known: dict[str, Any] = raw_stages if isinstance(raw_stages, dict) else {}
        data["stages"] = {name: known.get(name, {}) for name in (n.strip() for n in listed.split(",")) if name}
        sources[("stages",)] = "GREENLIGHT_STAGES"
    stages = data.get("stages")
    if not isinstance(stages, dict):
        return
    for name, section in stages.items():
        for upper, field_name in STAGE_FIELDS.items():
            variable = f"GREENLIGHT_STAGES_{str(name).upper()}_{upper}"
            if environ.get(variable) and isinstance(section, dict):
                section[field_name] = environ[variable]
                sources[("stages", name, field_name)] = variable


def _mark(data: dict, path: tuple[str, ...], source: str, sources: dict) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            _mark(value, path + (key,), source, sources)
        sources[path + (key,)] = source


def _fields_at(loc: tuple[str, ...]) -> set[str]:
    """The field names of the section at `loc` (empty when `loc` is not a section)."""
    model: type[BaseModel] = DeployConfig
    for key in loc:
        info = model.model_fields.get(key)
        if info is None or not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)):
            return set()
        model = info.annotation
    return set(model.model_fields)


def _describe(exc: ValidationError, sources: dict[tuple[str, ...], str]) -> str:
    problems = []
    for error in exc.errors():
        loc = tuple(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        named, _, rest = message.partition(": ")
        if rest and named.isidentifier() and loc and named in _fields_at(loc):  # a section's rule names its field
            loc, message = loc + (named,), rest
        elif rest and loc and named == loc[-1]:  # the field's own rule repeats its name (BatchConfig's do)
            message = rest
        where = sources.get(loc) or sources.get(loc[:1]) or "the defaults"
        if error["type"] == "extra_forbidden":
            message = "is not a setting Greenlight knows"
        shown = f" = {error['input']!r}" if error["type"] != "extra_forbidden" and not isinstance(
            error.get("input"), dict) else ""
        problems.append(f"{'.'.join(loc) or 'config'}{shown} ({where}): {message}")
    return "bad deployment configuration: " + "; ".join(problems)
