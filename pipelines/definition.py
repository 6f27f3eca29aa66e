"""The training pipeline, defined with the SageMaker Python SDK v3.

Preprocess (Processing) -> Train (Training) -> Evaluate (Processing, PropertyFile)
-> CheckRmse (Condition: RMSE <= RmseThreshold) -> Register (RegisterModel) | RmseTooHigh (Fail)

`build_definition()` returns the definition JSON with sorted keys. Two builds from the same
code and config are byte-identical: the SDK's timestamped training upload path is replaced by
a digest of the code it uploads, so unchanged code also keeps SageMaker's step caching hits.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from pipelines.config import SKLEARN_IMAGE_VERSION, PipelineConfig
from pipelines.parameters import PARAMETER_DEFAULTS, check_ranges

__all__ = ["STEP_NAMES", "build_definition", "build_pipeline", "code_digest", "gc_paused", "src_dir"]

log = logging.getLogger(__name__)

STEP_NAMES = ("Preprocess", "Train", "Evaluate", "CheckRmse", "Register", "RmseTooHigh")


CONTENT_TYPES = ["text/csv", "application/json"]
SMOKE_METADATA_KEY = "greenlight:smoke-test"  # read by deploy.engine.smoke (SMOKE_KEY)
EVALUATION_PATH = "regression_metrics.rmse.value"
BASELINE_FILE = "baseline.json"  # written by src/evaluate.py, linked as DriftCheckBaselines.ModelDataQuality


def sdk_version() -> str:
    from importlib.metadata import version

    return version("sagemaker")


def src_dir() -> Path:
    """The directory of the container scripts (src/), installed or in the checkout."""
    import src

    return Path(src.__file__).resolve().parent


def code_digest(directory: Path) -> str:
    """sha256 over the code the training step uploads, plus the SDK version (its drivers)."""
    digest = hashlib.sha256(f"sagemaker=={sdk_version()}\n".encode())
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.suffix != ".pyc"):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while the SDK is imported and a definition is built.

    The SDK creates hundreds of thousands of objects (pydantic models, shapes) and the collector's
    repeated passes over them cost about 1.5 s per build here; the build is short and bounded.
    """
    import gc

    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def _sdk_patches(digest: str) -> Iterator[None]:
    """Three narrow patches of SDK 3.27 internals, active only while a definition is built.

    - The training step's upload prefix `<base>-<timestamp>` becomes `<base>-<digest>`, so
      builds are reproducible and unchanged code keeps step caching effective.
    - The SDK validates its config dict against a large JSON schema on every config lookup
      (about 40 per build, 0.4 s each); validate each distinct config once instead.
    - The SDK's code hash (the S3 prefix of the Processing scripts) mixes in each script's
      absolute path, so the same code built in two checkouts gave two definitions; it now hashes
      the path relative to the directory above src/ (`src/preprocess.py`).
    All are checked by tests (byte-identical builds, the committed snapshot, a build under a socket
    guard, the code hash of two copies of src/ in different directories).
    """
    import sagemaker.core.workflow.utilities as sdk_utilities
    import sagemaker.train.model_trainer as model_trainer
    from sagemaker.core.config.config_manager import SageMakerConfig

    validated: set[str] = set()
    original_validate = SageMakerConfig.validate_sagemaker_config

    def validate_once(config=None):
        key = json.dumps(config, sort_keys=True, default=str)
        if key not in validated:
            original_validate(config)
            validated.add(key)

    with mock.patch.object(model_trainer, "_get_unique_name", lambda base, *a, **k: f"{base}-{digest}"), \
            mock.patch.object(SageMakerConfig, "validate_sagemaker_config", staticmethod(validate_once)), \
            mock.patch.object(sdk_utilities, "_hash_file_or_dir", _checkout_independent_hash(sdk_utilities)):
        yield


def _checkout_independent_hash(sdk_utilities):
    """The SDK's `_hash_file_or_dir`, hashing a path under src/'s parent by its relative path."""
    from urllib.parse import unquote, urlparse

    anchor = src_dir().parent

    def hash_file_or_dir(path, sha256):
        if isinstance(path, str) and path.lower().startswith("file://"):
            path = unquote(urlparse(path).path)
        resolved = Path(path).resolve()
        name = resolved.relative_to(anchor).as_posix() if resolved.is_relative_to(anchor) else str(path)
        sha256.update(name.encode())
        if resolved.is_dir():
            return sdk_utilities._hash_dir(path, sha256)
        if resolved.is_file():
            return sdk_utilities._hash_file(path, sha256)
        return sha256

    return hash_file_or_dir


def _parameters(config: PipelineConfig) -> dict:
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString

    kinds = {"String": ParameterString, "Integer": ParameterInteger, "Float": ParameterFloat}
    defaults = {"InputDataUrl": config.default_input_uri, "ModelPackageGroupName": config.model_package_group}
    check_ranges({name: defaults.get(name, default) for name, (_, default) in PARAMETER_DEFAULTS.items()})
    return {name: kinds[kind](name=name, default_value=defaults.get(name, default))
            for name, (kind, default) in PARAMETER_DEFAULTS.items()}


def build_pipeline(config: PipelineConfig, session):
    """The SDK Pipeline object for `config`, built on a PipelineSession."""
    from sagemaker.core import image_uris
    from sagemaker.core.drift_check_baselines import DriftCheckBaselines
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import (OutputDataConfig, ProcessingInput, ProcessingOutput,
                                       ProcessingS3Input, ProcessingS3Output)
    from sagemaker.core.training.configs import Compute, InputData, SourceCode
    from sagemaker.core.workflow.conditions import ConditionLessThanOrEqualTo
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep
    from sagemaker.serve import ModelBuilder
    from sagemaker.train import ModelTrainer

    p = _parameters(config)
    code = src_dir()
    cache = CacheConfig(enable_caching=True, expire_after="P30D")
    image = {scope: image_uris.retrieve(framework="sklearn", version=SKLEARN_IMAGE_VERSION, region=config.region,
                                        image_scope=scope, instance_type="ml.m5.large")
             for scope in ("training", "inference")}
    versions = {"GREENLIGHT_SKLEARN_IMAGE_VERSION": SKLEARN_IMAGE_VERSION,
                "GREENLIGHT_SAGEMAKER_SDK_VERSION": sdk_version()}

    def output(step: str, name: str):
        uri = Join(on="/", values=["s3:/", config.bucket, config.prefix, config.pipeline_name,
                                   ExecutionVariables.PIPELINE_EXECUTION_ID, step, name])
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=uri, local_path=f"/opt/ml/processing/{name}", s3_upload_mode="EndOfJob"))

    def s3_input(name: str, uri, local_path: str):
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=uri, local_path=local_path, s3_data_type="S3Prefix", s3_input_mode="File"))

    def processor(base: str) -> ScriptProcessor:
        return ScriptProcessor(role=config.role_arn, image_uri=image["training"], command=["python3"],
                               instance_count=1, instance_type=p["ProcessingInstanceType"],
                               base_job_name=f"{config.prefix}-{base}", sagemaker_session=session)

    preprocess = ProcessingStep(
        name="Preprocess",
        cache_config=cache,
        step_args=processor("preprocess").run(
            code=str(code / "preprocess.py"),
            inputs=[s3_input("data", p["InputDataUrl"], "/opt/ml/processing/input/data")],
            outputs=[output("Preprocess", n) for n in ("train", "validation", "test")],
            arguments=["--target-column", p["TargetColumn"]],
        ),
    )
    split_uri = {n: preprocess.properties.ProcessingOutputConfig.Outputs[n].S3Output.S3Uri
                 for n in ("train", "validation", "test")}

    trainer = ModelTrainer(
        sagemaker_session=session,
        role=config.role_arn,
        training_image=image["training"],
        base_job_name=f"{config.prefix}-train",
        source_code=SourceCode(source_dir=str(code), entry_script="train.py",
                               ignore_patterns=["__pycache__", "*.pyc"]),
        compute=Compute(instance_type=p["TrainingInstanceType"], instance_count=1),
        hyperparameters={
            "n_estimators": p["NEstimators"].to_string(),
            "max_depth": p["MaxDepth"],
            "min_samples_leaf": p["MinSamplesLeaf"].to_string(),
            "max_features": p["MaxFeatures"],
            "random_state": p["RandomState"].to_string(),
            "n_jobs": p["NJobs"].to_string(),
        },
        environment=dict(versions),
        output_data_config=OutputDataConfig(s3_output_path=f"s3://{config.bucket}/{config.prefix}/models"),
    )
    train = TrainingStep(
        name="Train",
        cache_config=cache,
        step_args=trainer.train(
            input_data_config=[InputData(channel_name=n, data_source=split_uri[n]) for n in ("train", "validation")],
            wait=False,
        ),
    )
    model_uri = train.properties.ModelArtifacts.S3ModelArtifacts

    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(
        name="Evaluate",
        cache_config=cache,
        property_files=[report],
        step_args=processor("evaluate").run(
            code=str(code / "evaluate.py"),
            inputs=[s3_input("model", model_uri, "/opt/ml/processing/model"),
                    s3_input("test", split_uri["test"], "/opt/ml/processing/test"),
                    # summarised in baseline.json, the drift monitor's reference (greenlight/monitor/)
                    s3_input("train", split_uri["train"], "/opt/ml/processing/train")],
            outputs=[output("Evaluate", "evaluation")],
        ),
    )
    rmse = JsonGet(step_name=evaluate.name, property_file=report, json_path=EVALUATION_PATH)
    evaluation_dir = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
    evaluation_uri = Join(on="/", values=[evaluation_dir, "evaluation.json"])
    smoke_uri = Join(on="/", values=[evaluation_dir, "smoke.json"])
    baseline_uri = Join(on="/", values=[evaluation_dir, BASELINE_FILE])

    builder = ModelBuilder(
        s3_model_data_url=model_uri,
        image_uri=image["inference"],
        sagemaker_session=session,
        role_arn=config.role_arn,
        # sagemaker_entry.py wraps inference.py in a transform_fn, the only way the stock serving
        # toolkit answers a bad payload with 4xx instead of an HTML 500 (ARCHITECTURE.md).
        # GREENLIGHT_CAPTURE: the serving code writes its sampled capture records (src/capture.py) to stdout,
        # which SageMaker ships to CloudWatch Logs for the endpoint and for transform jobs.
        env_vars={"SAGEMAKER_PROGRAM": "sagemaker_entry.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                  "GREENLIGHT_CAPTURE": "stdout"},
    )
    register = ModelStep(
        name="Register",
        step_args=builder.register(
            model_package_group_name=p["ModelPackageGroupName"],
            content_types=CONTENT_TYPES,
            response_types=CONTENT_TYPES,
            inference_instances=["ml.m5.large"],
            transform_instances=["ml.m5.large"],
            approval_status=p["ModelApprovalStatus"],
            description="Random Forest trained by the Greenlight pipeline",
            model_metrics=ModelMetrics(model_statistics=MetricsSource(
                s3_uri=evaluation_uri, content_type="application/json")),
            # the training split's statistics: what `greenlight monitor` compares this version's traffic with
            drift_check_baselines=DriftCheckBaselines(model_data_statistics=MetricsSource(
                s3_uri=baseline_uri, content_type="application/json")),
            customer_metadata_properties={
                "greenlight:sklearn-image": SKLEARN_IMAGE_VERSION,
                "greenlight:sagemaker-sdk": sdk_version(),
                "greenlight:pipeline-execution": ExecutionVariables.PIPELINE_EXECUTION_ID,
                "greenlight:rmse": rmse.to_string(),
                # the smoke-test rows and predictions the deployer checks every deployment against
                SMOKE_METADATA_KEY: smoke_uri,
            },
        ),
    )
    fail = FailStep(
        name="RmseTooHigh",
        error_message=Join(on="", values=["RMSE ", rmse, " is above the threshold ", p["RmseThreshold"],
                                          "; the model was not registered"]),
    )
    check = ConditionStep(
        name="CheckRmse",
        conditions=[ConditionLessThanOrEqualTo(left=rmse, right=p["RmseThreshold"])],
        if_steps=[register],
        else_steps=[fail],
    )
    return Pipeline(
        name=config.pipeline_name,
        parameters=list(p.values()),
        steps=[preprocess, train, evaluate, check],
        sagemaker_session=session,
        pipeline_experiment_config=None,
    )


def build_definition(config: PipelineConfig, session) -> str:
    """The definition JSON for `config`: sorted keys, 2-space indent, trailing newline."""
    with _sdk_patches(code_digest(src_dir())):
        raw = build_pipeline(config, session).definition()
    return json.dumps(json.loads(raw), indent=2, sort_keys=True) + "\n"
