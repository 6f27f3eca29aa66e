"""A deployment world for the shared endpoint contract and scenario suites, one class per mode.

A world is a mode (local, aws) and a target kind (endpoint, lambda); it deploys only its kind (the
deploy_env fixture disables the others with GREENLIGHT_<KIND>_ENABLED=false, which worker processes
inherit).

The suites (tests/contract/test_endpoint_contract.py, test_deploy_scenarios.py) talk only to this
interface, so the same assertions run against the local adapter and the AWS one (moto):

    env.register(kind)       register a version; kind "good", "broken" (its update fails) or
                             "disagree" (it answers the smoke rows with other predictions); -> number
    env.approve(n), env.reject(n)
    env.event(n, status)     a canned tests/events/ state-change event rewritten for this env
    env.handle(event)        the approval handler's `handle` with this env's reconciler
    env.reconciler(**cfg)    the engine, with config overrides (e.g. when_nothing_approved="stop")
    env.target               the target under test (DeployTarget)
    env.served_version()     what a client of the target's serving surface is answered by now (None:
                             nothing: the endpoint's 503, the Lambda's 503 or 429 when throttled)
    env.target_writes()      write calls made to the target so far (not the engine's lock/status)
"""

from __future__ import annotations

import copy
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

from deploy.endpoint.server import Endpoint
from deploy.endpoint.slot import ModelSlot
from deploy.endpoint.deployed import DeployedSource, register_serving, unregister_serving
from deploy.engine.smoke import SMOKE_KEY
from greenlight.registry.model import ApprovalStatus
from tests.support.models import pack

EVENTS = Path(__file__).resolve().parents[1] / "events"
GROUP = "scenario-models"
CANNED = {"Approved": "model_package_state_change_approved.json",
          "Rejected": "model_package_state_change_rejected.json",
          "PendingManualApproval": "model_package_state_change_pending.json"}


def canned_event(group: str, version: int, status: str, arn: str, account: str, region: str) -> dict[str, Any]:
    """The canned event for `status`, with its group, version, ARN, account and region replaced."""
    event = json.loads((EVENTS / CANNED[status]).read_text(encoding="utf-8"))
    event = copy.deepcopy(event)
    event.update(account=account, region=region, resources=[arn])
    event["detail"].update(ModelPackageGroupName=group, ModelPackageVersion=version, ModelPackageArn=arn,
                           ModelPackageName=group, ModelApprovalStatus=status)
    return event


class LocalDeployEnv:
    """The local adapters: the SQLite registry and artifact store under a tmp GREENLIGHT_HOME, and the
    target's serving surface running in a thread, so smoke tests go over HTTP: for the endpoint a real
    local endpoint serving the deployed version, for the Lambda the local front (`greenlight lambda
    serve`: a Function URL on the alias, Lambda's Invoke API by version). `kind` picks the target."""

    mode = "local"

    def __init__(self, home: Path, models: dict[str, Path], monkeypatch, kind: str = "endpoint"):
        from greenlight.workspace import Workspace

        if kind not in ("endpoint", "lambda"):
            raise ValueError(f"no local {kind} world")
        self.kind = kind
        self.home, self.models, self.group = Path(home), models, GROUP
        self.ws = Workspace.open("local", home=self.home)
        self.registry = self.ws.local_registry
        self.account, self.region = self.registry.account, self.registry.region
        self._writes = 0
        import deploy.endpoint.deployed as deployed
        import deploy.function.state as function_state

        state_module = deployed if kind == "endpoint" else function_state  # where the target writes its state
        original = state_module.write_json

        def counting(path, data):
            self._writes += 1
            original(path, data)

        monkeypatch.setattr(state_module, "write_json", counting)
        self._serve()
        self.target = self.reconciler().targets[0]
        assert self.target.kind.value == kind, self.target

    def _serve(self) -> None:
        """The target's serving surface in a thread, registered so deployments smoke-test through it."""
        if self.kind == "endpoint":
            from deploy.endpoint.split import Split

            self.endpoint = Endpoint(ModelSlot(DeployedSource(self.home, self.group), retry_seconds=0.0),
                                     "127.0.0.1", 0, poll_seconds=0.02,
                                     split=Split(self.home, self.group, "endpoint", ModelSlot)).start()
        else:
            from deploy.function.front import FunctionFront

            self.endpoint = FunctionFront(self.home, self.group, self.group, "live", "127.0.0.1", 0,
                                          poll_seconds=0.02, retry_seconds=0.0).start()
        self.record = register_serving(self.home, self.group, self.endpoint.url, self.kind,
                                       token=getattr(self.endpoint, "token", None))

    def close(self) -> None:
        unregister_serving(self.home, self.group, self.kind, self.record)
        self.endpoint.close()

    # -- the registry ---------------------------------------------------------------------------

    def register(self, kind: str = "good", model: str = "a") -> int:
        n = len(self.registry.list_versions(self.group)) + 1 if self.registry.list_groups() else 1
        bucket = f"s3://greenlight-test/{self.group}/v{n}"
        archive, smoke = self.models[f"{model}_tar"], self.models[f"{model}_smoke"].read_text()
        if kind == "broken":  # the forest does not match its recorded sha256: the endpoint refuses to load it
            work = self.home / "broken-models" / str(n)
            with tarfile.open(archive) as tar:
                tar.extractall(work / "model", filter="data")
            forest = next(p for p in (work / "model").iterdir() if p.name.startswith("forest"))
            forest.write_bytes(forest.read_bytes() + b"tampered") if forest.is_file() else shutil.rmtree(forest)
            archive = pack(work / "model", work / "model.tar.gz")
        if kind == "disagree":  # recorded predictions that this model does not give
            doc = json.loads(smoke)
            doc["predictions"] = [p + 1.0 for p in doc["predictions"]]
            smoke = json.dumps(doc)
        self.ws.store.put_bytes(f"{bucket}/model.tar.gz", Path(archive).read_bytes())
        self.ws.store.put_bytes(f"{bucket}/smoke.json", smoke.encode())
        version = self.registry.create_model_package({
            "ModelPackageGroupName": self.group,
            "InferenceSpecification": {
                "Containers": [{"Image": "sagemaker-scikit-learn:1.9-0-cpu-py3",
                                "ModelDataUrl": f"{bucket}/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]},
            "CustomerMetadataProperties": {SMOKE_KEY: f"{bucket}/smoke.json"},
        })
        return version.version

    def approve(self, version: int) -> None:
        self.registry.update_status(self.group, version, ApprovalStatus.APPROVED)

    def reject(self, version: int) -> None:
        self.registry.update_status(self.group, version, ApprovalStatus.REJECTED)

    def arn(self, version: int) -> str:
        return self.registry.get(self.group, version).arn

    def event(self, version: int, status: str) -> dict[str, Any]:
        return canned_event(self.group, version, status, self.arn(version), self.account, self.region)

    # -- the engine -----------------------------------------------------------------------------

    def reconciler(self, **overrides: Any):
        return self.ws.reconciler(self.ws.deploy_config(group=self.group, **overrides))

    def handle(self, event: dict, **overrides: Any) -> dict[str, Any]:
        from deploy.handler import handle

        return handle(event, self.reconciler(**overrides), account=self.account, region=self.region)

    # -- what a client sees ---------------------------------------------------------------------

    def served_version(self) -> int | None:
        """The version the running endpoint (or the Lambda front's Function URL on `live`) answers a request
        with (None: 503, nothing deployed, or 429, the function is throttled)."""
        import urllib.error
        import urllib.request

        from tests.support.endpoints import ROW

        request = urllib.request.Request(f"{self.endpoint.url}/invocations", data=ROW.encode(), method="POST",
                                         headers={"Content-Type": "text/csv"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                label = response.headers["X-Greenlight-Model-Version"]
        except urllib.error.HTTPError as exc:
            if exc.code in (503, 429):
                return None
            raise
        group, _, number = label.rpartition("/")
        assert group == self.served_group(), label
        return int(number)

    def served_group(self) -> str:
        """The group in the served version's label (a stage's world: its key)."""
        return self.group

    def target_writes(self) -> int:
        return self._writes

    def worker_spec(self) -> dict[str, Any]:
        """What a worker process needs to build this env's reconciler (reconciler_from_spec)."""
        return {"mode": self.mode, "kind": self.kind, "home": str(self.home), "group": self.group}


def reconciler_from_spec(spec: dict[str, Any]):
    """A reconciler built in another process from `env.worker_spec()` (tests/support/reconcile_worker.py)."""
    if spec["mode"] == "local":
        from greenlight.workspace import Workspace

        ws = Workspace.open("local", home=Path(spec["home"]))
        config = ws.deploy_config(group=spec["group"])
        if spec.get("stage"):  # a staged world: that stage's reconciler (tests/support/deploy_env_staged.py)
            return ws.stage_reconciler(config, config.stage(spec["stage"]))
        return ws.reconciler(config)
    if spec["mode"] == "aws":  # the worker inherits the test's AWS_* / GREENLIGHT_* environment (moto)
        from greenlight.workspace import Workspace

        ws = Workspace.open("aws", home=Path(spec["home"]))
        config = ws.deploy_config(group=spec["group"])
        if spec.get("stage"):  # a staged world on moto
            return ws.stage_reconciler(config, config.stage(spec["stage"]))
        reconciler = ws.reconciler(config)
        if spec.get("kind") == "lambda":  # the loopback registry and the in-process invoker, as in the test
            from tests.support.deploy_env_lambda import inject

            inject(reconciler, spec)
        return reconciler
    raise ValueError(f"unknown mode {spec['mode']!r}")


def deploy(target, release, smoke):
    """One deployment of `target` driven by the engine's transaction, as the reconciler drives it."""
    from deploy.engine.transaction import Transaction

    return Transaction().deploy(target, release, smoke)
