"""The staged Lambda world with production in another account (issue 21, docs/decisions/0056), on moto.

Two account ids in one moto server (moto keeps one backend per account; STS AssumeRole gives credentials of
the role's account). The registry account (123456789012) holds the registry, the artifacts, the deploy stack
(staging's Lambda, the handler's variables) and the group's repository with the base image; the target account
(222222222222) holds production's deploy/target-account.yaml stack, created on moto's CloudFormation as an
operator would, in its two steps:

1. Lambda=true, no LambdaBaseImageTag: the stage's repository and the deploy role's statements; building the
   engine refuses the stage (no function there yet) after copying the base image into that repository;
2. LambdaBaseImageTag=<the tag the refusal names>: the function on it, its role, `live` alias, Function URL,
   log group and alarms.

The engine then deploys production through the assumed role, pushing model images to the stage's repository
there. As in AwsStagedLambdaDeployEnv, what moto lacks is injected: the registry API (the loopback
docker-registry; one registry stands in for both accounts' ECR registries, the repositories differ, each
tagged manifest mirrored into that account's moto ECR) and the invoker (production's with the target account's
Lambda client). Workspace.image_registry is how the composition root's own copy reaches the loopback registry.
"""

from __future__ import annotations

from pathlib import Path

from greenlight.errors import ConfigurationError
from tests.support.deploy_env_aws import REGION
from tests.support.deploy_env_staged import LAMBDA_STAGES, STAGE, AwsStagedLambdaDeployEnv

__all__ = ["OTHER_ACCOUNT", "AwsCrossAccountLambdaDeployEnv", "deploy_target_stack", "in_account"]

OTHER_ACCOUNT = "222222222222"


def in_account(service: str, moto_url: str, account: str = OTHER_ACCOUNT):
    """A client acting in `account` (moto: credentials from AssumeRole into a role there)."""
    import boto3

    from tests.contract.conftest import aws_client

    found = aws_client("sts", moto_url).assume_role(RoleArn=f"arn:aws:iam::{account}:role/operator",
                                                    RoleSessionName="test")["Credentials"]
    return boto3.client(service, region_name=REGION, endpoint_url=moto_url, aws_access_key_id=found["AccessKeyId"],
                        aws_secret_access_key=found["SecretAccessKey"], aws_session_token=found["SessionToken"])


def deploy_target_stack(moto_url: str, group: str, key: str, **parameters: str) -> dict[str, str]:
    """deploy/target-account.yaml in the target account for the stage `key` (an operator's deploy); its outputs."""
    from deploy.names import GroupNames
    from deploy.stack import Stacks
    from tests.support.deploy_env_aws import ACCOUNT
    from tests.support.lambda_world import BUCKET
    from tests.support.templates import TARGET_ACCOUNT

    values = {"StageKey": key, "StageKeyLowerCase": key.lower(), "ArtifactBucket": BUCKET, "Group": group,
              "Stage": STAGE, "HandlerRoleArn": f"arn:aws:iam::{ACCOUNT}:role{GroupNames(group).role_path}{GroupNames(group).role('approval')}",
              **parameters}
    stacks = Stacks(in_account("cloudformation", moto_url), echo=lambda line: None, poll=0)
    return stacks.deploy(f"greenlight-{key}", TARGET_ACCOUNT.read_text(), values).outputs


class AwsCrossAccountLambdaDeployEnv(AwsStagedLambdaDeployEnv):
    """Production's Lambda in the target account (module docstring); staging's in the registry account."""

    def __init__(self, moto_url: str, registry_url: str, home: Path, models: dict[str, Path], monkeypatch,
                 group: str):
        from deploy.names import GroupNames

        key = GroupNames(group).stage(STAGE)
        self.role_arn = f"arn:aws:iam::{OTHER_ACCOUNT}:role/{GroupNames(key).role('deploy')}"
        self.refusal: str = ""  # what building the engine said between the two steps
        stages = {**LAMBDA_STAGES, "GREENLIGHT_STAGES_PRODUCTION_ROLE_ARN": self.role_arn}
        super().__init__(moto_url, registry_url, home, models, monkeypatch, group, stages=stages)

    def _before_engine(self) -> None:
        from tests.support.lambda_aws import ImageInvoker, MirroredRegistry

        url = self.spec["registry_url"]
        self.ws.image_registry = lambda ecr: MirroredRegistry(url, ecr)
        self.there = {service: in_account(service, self.moto_url) for service in ("lambda", "ecr", "iam")}
        self.invoker_there = ImageInvoker(in_account("lambda", self.moto_url), self.home / "aws" / "images")
        outputs = deploy_target_stack(self.moto_url, self.group, self.key, Lambda="true")
        assert outputs["DeployRoleArn"] == self.role_arn, outputs
        try:
            self.stages()
        except ConfigurationError as exc:
            self.refusal = str(exc)
        else:
            raise AssertionError("the engine was built for a stage whose function does not exist")
        tag = self.refusal.rsplit("LambdaBaseImageTag=", 1)[-1].split(",", 1)[0]
        self.outputs = deploy_target_stack(self.moto_url, self.group, self.key, Lambda="true", LambdaBaseImageTag=tag)
        for service in ("lambda", "ecr"):  # production's calls, through the assumed role, count as the targets'
            self.ws.assumed(self.role_arn, STAGE)(service).meta.events.register(f"before-call.{service}.*",
                                                                                self._count)

    def _injected(self, reconciler):
        from tests.support.lambda_aws import MirroredRegistry

        reconciler = super()._injected(reconciler)
        for target in reconciler.targets:
            if getattr(target, "function", None) == self.key:  # production's, in the target account
                target.invoker = self.invoker_there

                def there(url=self.spec["registry_url"]):
                    client = MirroredRegistry(url, self.ws.assumed(self.role_arn, STAGE)("ecr"))
                    self.world.registries.append(client)
                    return client

                target.registry = there
        return reconciler

    def served_version(self) -> int | None:
        """The model version production's Function URL (in the target account) answers with on `live`."""
        from deploy.function.model import VersionRecord
        from tests.support.endpoints import ROW

        event = {"version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "POST"}},
                 "headers": {"content-type": "text/csv"}, "body": ROW}
        response = self.invoker_there.invoke(self.key, "live", event)
        assert response["statusCode"] == 200, response
        executed = self.there["lambda"].get_function(FunctionName=self.key, Qualifier=self.invoker_there.executed)
        return VersionRecord.parse(executed["Configuration"]["Description"]).model_version

    def functions_here(self) -> list[str]:
        return sorted(f["FunctionName"] for f in self.world.lam.list_functions()["Functions"])
