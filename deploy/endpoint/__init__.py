"""The local serverless endpoint: SageMaker's container protocol over HTTP, with cold start,
idle drop and hot swap of model versions (`greenlight endpoint serve`, `greenlight invoke`).

    sources.py  a fixed model (--model PATH), model.tar.gz unpacking
    deployed.py the deployed version of a group (what `endpoint serve` follows), and who serves it
    target.py   the endpoint target's local adapter (deploy, smoke test, restore)
    loader.py   import a version's code/inference.py and run model_fn
    slot.py     ModelSlot: lazy load, idle drop, load-then-swap
    server.py   GET /ping, POST /invocations on stdlib ThreadingHTTPServer
    client.py   invoke(): one POST /invocations with urllib
    aws.py      the endpoint target's AWS adapter (SageMaker Serverless Inference)
"""

import importlib

# name -> submodule; imported on first use, so the approval handler (which needs only aws.py) does not
# load the HTTP server and its dependencies at cold start.
_EXPORTS = {
    "InvocationResult": "client", "invoke": "client",
    "LoadedModel": "loader", "load_version": "loader",
    "MAX_BODY_BYTES": "server", "VERSION_HEADER": "server", "Endpoint": "server", "EndpointServer": "server",
    "ModelLoadFailed": "slot", "ModelSlot": "slot", "ModelTarget": "slot", "NoModelAvailable": "slot",
    "FixedModelSource": "sources", "prepare_model_dir": "sources",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"deploy.endpoint.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'deploy.endpoint' has no attribute {name!r}")


__all__ = [
    "MAX_BODY_BYTES",
    "VERSION_HEADER",
    "Endpoint",
    "EndpointServer",
    "FixedModelSource",
    "InvocationResult",
    "LoadedModel",
    "ModelLoadFailed",
    "ModelSlot",
    "ModelTarget",
    "NoModelAvailable",
    "invoke",
    "load_version",
    "prepare_model_dir",
]
