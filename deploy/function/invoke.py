"""Invoking one function version with an event, as the deployer's smoke test does (Lambda's Invoke API).

    invoker.invoke(function, qualifier, event) -> the handler's response (a dict, payload format 2.0)

`LambdaInvoker` calls AWS Lambda (boto3 `invoke` with `Qualifier`, through greenlight.aws_errors);
`FrontInvoker` calls the same API on the local front (`greenlight lambda serve`). Tests inject their own
invoker where Lambda cannot run the image (moto): anything with this `invoke` method.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol

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

    def __init__(self, url: str, timeout: float = 120.0):
        self.url, self.timeout = url.rstrip("/"), timeout

    def invoke(self, function: str, qualifier: str, event: dict[str, Any]) -> dict[str, Any]:
        path = f"/2015-03-31/functions/{urllib.parse.quote(function)}/invocations?Qualifier={qualifier}"
        request = urllib.request.Request(self.url + path, data=json.dumps(event).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            kind = exc.headers.get("x-amzn-ErrorType") or f"HTTP {exc.code}"
            raise GreenlightError(f"the local Lambda at {self.url} answered {exc.code} {kind}: "
                                  f"{exc.read()[:200].decode('utf-8', 'replace')}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise GreenlightError(f"cannot invoke {function}:{qualifier} at {self.url}: "
                                  f"{getattr(exc, 'reason', exc)}") from None
