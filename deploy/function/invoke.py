"""Invoking one function version with an event, as the deployer's smoke test does (Lambda's Invoke API).

    invoker.invoke(function, qualifier, event) -> the handler's response (a dict, payload format 2.0)

`LambdaInvoker` calls AWS Lambda (boto3 `invoke` with `Qualifier`, through greenlight.aws_errors);
`FrontInvoker` calls the same API on the local front (`greenlight lambda serve`) through a transport
(deploy.endpoint.client: the real HTTP one by default, an in-memory one in failure tests). Tests inject
their own invoker where Lambda cannot run the image (moto): anything with this `invoke` method.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any, Protocol

from deploy.endpoint.client import HttpRequest, Transport, TransportError, UrllibTransport
from greenlight.aws_errors import aws_errors
from greenlight.errors import GreenlightError

__all__ = ["FrontInvoker", "Invoker", "LambdaInvoker"]


class Invoker(Protocol):
    def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> dict[str, Any]:
        """The function version's answer to `event`.

        Raises:
            GreenlightError: the version could not be invoked (throttled, missing, its code crashed).
        """
        ...


class LambdaInvoker:
    """Synchronous Invoke of a version (`Qualifier`) on AWS Lambda."""

    def __init__(self, lambda_client: Any):
        self.client = lambda_client

    def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> dict[str, Any]:
        with aws_errors("Invoke"):
            response = self.client.invoke(FunctionName=function, Qualifier=qualifier,
                                          InvocationType="RequestResponse", Payload=json.dumps(event).encode())
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            raise GreenlightError(f"{function}:{qualifier} failed ({response['FunctionError']}): "
                                  f"{payload.decode('utf-8', 'replace')[:300]}")
        try:
            return json.loads(payload)
        except ValueError:
            raise GreenlightError(f"{function}:{qualifier} answered something that is not JSON: "
                                  f"{payload[:200]!r}") from None


class FrontInvoker:
    """The Invoke API of the local front (deploy.function.front) at `url`."""

    def __init__(self, url: str, timeout: float = 120.0, transport: Transport | None = None):
        self.url, self.timeout = url.rstrip("/"), timeout
        self.transport = transport or UrllibTransport()

    def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> dict[str, Any]:
        path = f"/2015-03-31/functions/{urllib.parse.quote(function)}/invocations?Qualifier={qualifier}"
        request = HttpRequest("POST", self.url + path, {"Content-Type": "application/json"},
                              json.dumps(event).encode(), self.timeout)
        try:
            answer = self.transport.handle(request)
        except TransportError as exc:
            raise GreenlightError(f"cannot invoke {function}:{qualifier} at {self.url}: "
                                  f"{str(exc).split(': ', 1)[-1]}") from None
        if answer.status != 200:
            kind = answer.header("x-amzn-ErrorType") or f"HTTP {answer.status}"
            raise GreenlightError(f"the local Lambda at {self.url} answered {answer.status} {kind}: "
                                  f"{answer.body[:200].decode('utf-8', 'replace')}")
        try:
            return json.loads(answer.body)
        except ValueError:
            raise GreenlightError(f"{function}:{qualifier} at {self.url} answered something that is not JSON: "
                                  f"{answer.body[:200]!r}") from None
