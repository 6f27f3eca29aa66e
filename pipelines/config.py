"""What a pipeline build needs to know, from flags or SageMaker Projects' CodeBuild variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from greenlight.errors import ConfigurationError
from greenlight.settings import DEFAULT_MODEL_PACKAGE_GROUP, DEFAULT_PIPELINE_NAME
from pipelines.parameters import check_ranges

__all__ = ["PipelineConfig", "SKLEARN_IMAGE_VERSION", "SAGEMAKER_SDK_SERIES"]

# The SageMaker scikit-learn image the steps run in; setup.py pins scikit-learn to match it.
SKLEARN_IMAGE_VERSION = "1.9-0"
SAGEMAKER_SDK_SERIES = "3.27"
PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/greenlight-sagemaker-pipeline"
PLACEHOLDER_BUCKET = "greenlight-artifacts"


@dataclass(frozen=True)
class PipelineConfig:
    """Names and places for one pipeline; `offline=True` allows placeholders for role/bucket."""

    pipeline_name: str = DEFAULT_PIPELINE_NAME
    model_package_group: str = DEFAULT_MODEL_PACKAGE_GROUP
    role_arn: str = PLACEHOLDER_ROLE
    bucket: str = PLACEHOLDER_BUCKET
    prefix: str = "greenlight"
    region: str = "us-east-1"
    tags: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def default_input_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}/data/diabetes.csv"

    def tag_list(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in self.tags]

    @classmethod
    def resolve(
        cls,
        *,
        env: Mapping[str, str] | None = None,
        pipeline_name: str | None = None,
        model_package_group: str | None = None,
        role_arn: str | None = None,
        bucket: str | None = None,
        region: str | None = None,
        prefix: str | None = None,
        tags: Mapping[str, str] | None = None,
        require_aws: bool = False,
    ) -> "PipelineConfig":
        """Flags win over the SageMaker Projects variables, which win over defaults.

        Raises:
            ConfigurationError: require_aws and no role or bucket was given either way.
            ParameterError: the model package group's name breaks SageMaker's rule.
        """
        env = os.environ if env is None else env
        project, project_id = env.get("SAGEMAKER_PROJECT_NAME"), env.get("SAGEMAKER_PROJECT_ID")
        project_name_id = f"{project}-{project_id}" if project and project_id else None
        role = role_arn or env.get("SAGEMAKER_PIPELINE_ROLE_ARN")
        bucket = bucket or env.get("ARTIFACT_BUCKET")
        if require_aws:
            missing = [name for name, value in (("--role-arn / SAGEMAKER_PIPELINE_ROLE_ARN", role),
                                                ("--bucket / ARTIFACT_BUCKET", bucket)) if not value]
            if missing:
                raise ConfigurationError("missing " + " and ".join(missing) + " (needed to act on AWS)")
        all_tags: dict[str, str] = {}
        if project:
            all_tags["sagemaker:project-name"] = project
        if project_id:
            all_tags["sagemaker:project-id"] = project_id
        all_tags.update(tags or {})
        group = model_package_group or project_name_id or DEFAULT_MODEL_PACKAGE_GROUP
        check_ranges({"ModelPackageGroupName": group})  # a bad name is found now, not at Register after training
        return cls(
            pipeline_name=pipeline_name or project_name_id or DEFAULT_PIPELINE_NAME,
            model_package_group=group,
            role_arn=role or PLACEHOLDER_ROLE,
            bucket=bucket or PLACEHOLDER_BUCKET,
            prefix=prefix or (project_name_id or "greenlight"),
            region=region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            tags=tuple(sorted(all_tags.items())),
        )
