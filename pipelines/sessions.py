"""PipelineSessions: offline (no network, uploads to a sink) or on AWS (a real boto3 session)."""

from __future__ import annotations

import os
from collections.abc import Callable

from pipelines.config import PipelineConfig
from pipelines.offline import OfflineAws

__all__ = ["aws_session", "offline_session", "prepare_environment", "quiet_sdk"]

# The SDK's own config: no telemetry (an HTTP call per decorated SDK call otherwise).
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


def prepare_environment(region: str) -> None:
    # v3 imports create boto3 clients at import time (sagemaker.ai_registry), which need a region,
    # and ModelTrainer would look the role up in IAM unless told not to.
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")


def quiet_sdk(region: str) -> None:
    """Prepare the SDK's environment and keep its warnings off the terminal.

    Its log records are filtered by the level of the CLI's log handler (greenlight.cli.main), which
    also holds against SDK functions that set their own loggers to DEBUG while they run.
    """
    import warnings

    prepare_environment(region)  # the SDK needs a region at import time
    warnings.filterwarnings("ignore", module=r"sagemaker(\..*)?")
    warnings.filterwarnings("ignore", message="Running within a PipelineSession")


def offline_session(config: PipelineConfig, sink: Callable[[str, bytes], object] | None = None):
    """A PipelineSession whose AWS calls are answered locally (see pipelines.offline)."""
    prepare_environment(config.region)
    # No instance-metadata lookups for credentials: this session never signs a request.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    core.set_config_variable("request_checksum_calculation", "when_required")
    boto_session = boto3.Session(botocore_session=core, region_name=config.region,
                                 aws_access_key_id="offline", aws_secret_access_key="offline")
    OfflineAws(sink).attach(boto_session)
    return _pipeline_session(boto_session, config)


def aws_session(config: PipelineConfig, boto_session):
    """A PipelineSession on a real (or moto) boto3 session."""
    prepare_environment(config.region)
    return _pipeline_session(boto_session, config)


def _pipeline_session(boto_session, config: PipelineConfig):
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    session = PipelineSession(boto_session=boto_session, default_bucket=config.bucket, sagemaker_config=SDK_CONFIG)
    session._default_bucket = config.bucket  # default_bucket() would otherwise call S3 to check it
    return session
