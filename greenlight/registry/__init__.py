"""The model registry: SageMaker Model Registry semantics, locally in SQLite or on AWS.

    model.py     ApprovalStatus, ModelVersion and the pure rules (requests, ARNs, version refs)
    protocol.py  ModelRegistry, the interface both adapters implement
    events.py    the EventBridge "SageMaker Model Package State Change" event
    local.py     LocalModelRegistry: SQLite under GREENLIGHT_HOME, with a transactional outbox
    aws.py       SageMakerModelRegistry: the same protocol over an injected boto3 SageMaker client
    refs.py      resolve a VERSION argument (a number or a model package ARN) against a registry
"""

from greenlight.registry.aws import SageMakerModelRegistry
from greenlight.registry.events import state_change_event
from greenlight.registry.local import LocalModelRegistry
from greenlight.registry.model import ApprovalStatus, ModelVersion
from greenlight.registry.protocol import ModelRegistry
from greenlight.registry.refs import resolve_version

__all__ = [
    "ApprovalStatus",
    "LocalModelRegistry",
    "ModelRegistry",
    "ModelVersion",
    "SageMakerModelRegistry",
    "resolve_version",
    "state_change_event",
]
