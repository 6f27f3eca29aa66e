"""Registry credentials: none, a user and password, or ECR's token; and the parsing of a 401's challenge.

A registry answers 401 with `WWW-Authenticate: Basic realm=...` (ECR, htpasswd registries) or
`Bearer realm=...,service=...,scope=...` (the token flow of Docker Hub, GHCR and registries with a token
server). `RegistryClient` sends Basic credentials when it has some, and on a Bearer challenge fetches a
token from the realm (with the Basic credentials, if any) and retries.

ECR: `GetAuthorizationToken` returns `authorizationToken`, base64 of `AWS:<password>`, valid 12 hours,
and the registry's `proxyEndpoint`. `EcrCredentials` keeps it until five minutes before `expiresAt`
and fetches a new one when the registry refuses it. The boto3 ECR client is injected (the composition
root builds it); its errors become AwsError through greenlight.aws_errors.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from greenlight.aws_errors import aws_call
from greenlight.errors import AwsError

__all__ = ["Anonymous", "BasicCredentials", "Credentials", "EcrCredentials", "basic_header", "parse_challenge"]

log = logging.getLogger(__name__)

_PARAM = re.compile(r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


class Credentials(Protocol):
    """What a registry client asks for: a user and password (None for anonymous access)."""

    def basic(self, refresh: bool = False) -> tuple[str, str] | None:
        """(user, password), fetched anew when refresh is True (after the registry refused them)."""
        ...


class Anonymous:
    """No credentials: public pulls, or a registry without auth (a loopback test registry)."""

    def basic(self, refresh: bool = False) -> None:
        return None


class BasicCredentials:
    """A fixed user and password (an htpasswd registry, or the token server of a Bearer registry)."""

    def __init__(self, user: str, password: str):
        self.user, self._password = user, password

    def __repr__(self) -> str:
        return f"BasicCredentials({self.user!r}, ***)"

    def basic(self, refresh: bool = False) -> tuple[str, str]:
        return self.user, self._password


class EcrCredentials:
    """ECR's registry credentials from `ecr:GetAuthorizationToken`, through an injected boto3 ECR client."""

    REFRESH_MARGIN_S = 300.0

    def __init__(self, ecr_client: Any, registry_id: str | None = None, clock: Callable[[], float] = time.time):
        self._ecr, self._registry_id, self._clock = ecr_client, registry_id, clock
        self._lock = threading.Lock()
        self._cached: tuple[str, str, float, str] | None = None  # user, password, expires (epoch), endpoint
        self.fetches = 0

    def __repr__(self) -> str:
        return f"EcrCredentials(registry_id={self._registry_id!r})"

    def basic(self, refresh: bool = False) -> tuple[str, str]:
        """(AWS, password). Raises: AwsError (the call failed, or its answer is not a token)."""
        with self._lock:
            if refresh or self._cached is None or self._clock() >= self._cached[2] - self.REFRESH_MARGIN_S:
                self._cached = self._fetch()
            return self._cached[0], self._cached[1]

    def endpoint(self) -> str:
        """The registry's URL (`proxyEndpoint`, https://<account>.dkr.ecr.<region>.amazonaws.com)."""
        with self._lock:
            if self._cached is None:
                self._cached = self._fetch()
            return self._cached[3]

    def _fetch(self) -> tuple[str, str, float, str]:
        kwargs: dict[str, Any] = {"registryIds": [self._registry_id]} if self._registry_id else {}
        answer = aws_call("GetAuthorizationToken", self._ecr.get_authorization_token, **kwargs)
        self.fetches += 1
        try:
            data = answer["authorizationData"][0]
            user, _, password = base64.b64decode(data["authorizationToken"], validate=True).decode().partition(":")
            expires = data.get("expiresAt")
            expires_at = expires.timestamp() if isinstance(expires, datetime) else float(expires or 0)
            endpoint = str(data.get("proxyEndpoint") or "")
        except (KeyError, IndexError, TypeError, ValueError, binascii.Error, UnicodeDecodeError) as exc:
            raise AwsError(f"AWS GetAuthorizationToken answered no usable token ({type(exc).__name__}: {exc})",
                           code="MalformedToken", operation="GetAuthorizationToken") from exc
        if not user or not password:
            raise AwsError("AWS GetAuthorizationToken answered a token that is not user:password",
                           code="MalformedToken", operation="GetAuthorizationToken")
        log.debug("ECR token for %s, expires at %s", endpoint or "the default registry", expires)
        return user, password, expires_at, endpoint


def basic_header(user: str, password: str) -> str:
    """The Authorization header value for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def parse_challenge(header: str | None) -> tuple[str, dict[str, str]]:
    """(scheme lower-cased, parameters) of a WWW-Authenticate header; ("", {}) when absent."""
    if not header:
        return "", {}
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for match in _PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
    return scheme.lower(), params
