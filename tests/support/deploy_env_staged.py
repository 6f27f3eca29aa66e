"""A staged deployment world (issue 21): the shared suites run on the *production* stage of a two-stage
configuration (staging gated by approval, production by promotion), locally, endpoint target.

In this world "approve" is what a release manager does for production: approve the version and promote it
(ModelLifeCycle Stage=production, StageStatus=Approved); "reject" rejects the approval, which removes it from
every stage. The engine under test is production's reconciler: its own key (`<group>-production`), lock,
status and endpoint; the running endpoint is the one `endpoint serve --stage production` would be.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deploy.endpoint.deployed import DeployedSource, register_serving, unregister_serving
from deploy.endpoint.server import Endpoint
from deploy.endpoint.slot import ModelSlot
from greenlight.registry.model import ApprovalStatus, ModelLifeCycle
from tests.support.deploy_env import LocalDeployEnv

STAGE = "production"
STAGES = {"GREENLIGHT_STAGES": "staging,production", "GREENLIGHT_STAGES_STAGING_GATE": "approval",
          "GREENLIGHT_STAGES_PRODUCTION_GATE": "promotion"}


class LocalStagedDeployEnv(LocalDeployEnv):
    """LocalDeployEnv on the production stage (module docstring)."""

    def __init__(self, home: Path, models: dict[str, Path], monkeypatch):
        for name, value in STAGES.items():
            monkeypatch.setenv(name, value)  # worker processes inherit them
        from greenlight.workspace import Workspace
        from tests.support.deploy_env import GROUP

        self.key = Workspace.open("local", home=Path(home)).deploy_config(group=GROUP).stage(STAGE).key
        super().__init__(home, models, monkeypatch, kind="endpoint")

    def _serve(self) -> None:  # the endpoint of the stage, registered under its key
        self.endpoint = Endpoint(ModelSlot(DeployedSource(self.home, self.key), retry_seconds=0.0),
                                 "127.0.0.1", 0, poll_seconds=0.02).start()
        self.record = register_serving(self.home, self.key, self.endpoint.url, self.kind,
                                       token=getattr(self.endpoint, "token", None))

    def close(self) -> None:
        unregister_serving(self.home, self.key, self.kind, self.record)
        self.endpoint.close()

    def approve(self, version: int) -> None:
        self.registry.update_status(self.group, version, ApprovalStatus.APPROVED)
        self.registry.update_lifecycle(self.group, version, ModelLifeCycle(STAGE, "Approved"))

    def reconciler(self, **overrides: Any):
        config = self.ws.deploy_config(group=self.group, **overrides)
        return self.ws.stage_reconciler(config, config.stage(STAGE))

    def served_group(self) -> str:
        return self.key

    def worker_spec(self) -> dict[str, Any]:
        return {**super().worker_spec(), "stage": STAGE}
