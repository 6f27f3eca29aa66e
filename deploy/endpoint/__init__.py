"""The local serverless endpoint: SageMaker's container protocol over HTTP, with cold start,
idle drop and hot swap of model versions (`greenlight endpoint serve`, `greenlight invoke`).

    sources.py  which model version should be served (--model PATH, or the newest registered)
    loader.py   import a version's code/inference.py and run model_fn
    slot.py     ModelSlot: lazy load, idle drop, load-then-swap
    server.py   GET /ping, POST /invocations on stdlib ThreadingHTTPServer
    client.py   invoke(): one POST /invocations with urllib
"""

from deploy.endpoint.client import InvocationResult, invoke
from deploy.endpoint.loader import LoadedModel, load_version
from deploy.endpoint.server import MAX_BODY_BYTES, VERSION_HEADER, Endpoint, EndpointServer
from deploy.endpoint.slot import ModelLoadFailed, ModelSlot, ModelTarget, NoModelAvailable
from deploy.endpoint.sources import FixedModelSource, RegistrySource, prepare_model_dir

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
    "RegistrySource",
    "invoke",
    "load_version",
    "prepare_model_dir",
]
