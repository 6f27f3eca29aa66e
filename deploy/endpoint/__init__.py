"""The local serverless endpoint: SageMaker's container protocol over HTTP, with cold start,
idle drop and hot swap of model versions (`greenlight endpoint serve`, `greenlight invoke`).

    sources.py  a fixed model (--model PATH), model.tar.gz unpacking
    deployed.py the deployed version of a group (what `endpoint serve` follows), and who serves it
    target.py   the endpoint target's local adapter (deploy, smoke test, restore)
    loader.py   import a version's code/inference.py and run model_fn
    slot.py     ModelSlot: lazy load, idle drop, load-then-swap
    server.py   GET /ping, POST /invocations on stdlib ThreadingHTTPServer
    client.py   invoke(): one POST /invocations with urllib
"""

from deploy.endpoint.client import InvocationResult, invoke
from deploy.endpoint.loader import LoadedModel, load_version
from deploy.endpoint.server import MAX_BODY_BYTES, VERSION_HEADER, Endpoint, EndpointServer
from deploy.endpoint.slot import ModelLoadFailed, ModelSlot, ModelTarget, NoModelAvailable
from deploy.endpoint.sources import FixedModelSource, prepare_model_dir

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
