"""Build a pipeline definition without AWS: answer the SDK's few AWS calls on this machine.

`PipelineSession` uploads code (processing scripts, the training source dir and the SDK's
driver files) while it builds a definition. `OfflineAws` hooks botocore's `before-call` event on
a boto3 session (the event botocore's own Stubber uses), so no request is ever signed or sent:
S3 `PutObject` goes to a sink (the local artifact store, or nowhere), `sts:GetCallerIdentity`
gets a fixed placeholder account, and any other call fails with a DefinitionError naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from greenlight.errors import DefinitionError

__all__ = ["OfflineAws", "PLACEHOLDER_ACCOUNT"]

log = logging.getLogger(__name__)
PLACEHOLDER_ACCOUNT = "000000000000"

Sink = Callable[[str, bytes], object]  # (s3 uri, bytes); what it returns is ignored


class OfflineAws:
    """Answers the AWS calls made while a definition is built; see the module docstring."""

    def __init__(self, sink: Sink | None = None, account: str = PLACEHOLDER_ACCOUNT):
        self.sink = sink
        self.account = account
        self.uploads: list[str] = []

    def attach(self, boto_session) -> None:
        """Register the handlers on a boto3 Session (affects every client it creates)."""
        events = boto_session.events
        events.register("before-parameter-build.*.*", self._remember_params)
        events.register("before-call.*.*", self._answer)

    @staticmethod
    def _remember_params(params, model, context, **_):
        context["greenlight_params"] = dict(params)

    def _answer(self, model, params, **_):
        from botocore.awsrequest import AWSResponse
        from botocore.compat import HTTPHeaders

        service = model.service_model.service_name
        operation = model.name
        api = params.get("context", {}).get("greenlight_params", {})
        ok = AWSResponse("", 200, HTTPHeaders(), None)
        meta = {"ResponseMetadata": {"HTTPStatusCode": 200, "HTTPHeaders": {}}}
        if service == "s3" and operation == "PutObject":
            body = api.get("Body", b"")
            data = body.read() if hasattr(body, "read") else (body.encode() if isinstance(body, str) else bytes(body))
            uri = f"s3://{api['Bucket']}/{api['Key']}"
            self.uploads.append(uri)
            if self.sink is not None:
                self.sink(uri, data)
            log.debug("offline upload %s (%d bytes)", uri, len(data))
            return ok, {**meta, "ETag": '"offline"'}
        if service == "sts" and operation == "GetCallerIdentity":
            arn = f"arn:aws:iam::{self.account}:user/greenlight-offline"
            return ok, {**meta, "Account": self.account, "Arn": arn, "UserId": "greenlight-offline"}
        raise DefinitionError(
            f"building the definition offline tried to call {service}:{operation}, which Greenlight "
            "does not answer offline; this SDK version needs a newer Greenlight"
        )
