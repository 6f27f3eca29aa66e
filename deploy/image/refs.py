"""Names in the registry API: repositories, tags, digests, platforms, and the tag of a model version (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from greenlight.errors import ParameterError

__all__ = ["LAMBDA_ARCHITECTURES", "Platform", "check_digest", "check_reference", "check_repository",
           "check_tag", "model_tag"]

# The distribution spec's grammars (github.com/opencontainers/distribution-spec, "Pulling manifests").
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")

LAMBDA_ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}  # Lambda's Architectures -> OCI architecture


def check_tag(tag: str) -> str:
    """tag, if the registry's tag grammar allows it. Raises: ParameterError."""
    if not isinstance(tag, str) or not TAG.fullmatch(tag):
        raise ParameterError(f"{tag!r} is not a valid image tag ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})")
    return tag


def check_digest(digest: str) -> str:
    """digest, if it is `sha256:` and 64 lowercase hex digits. Raises: ParameterError."""
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise ParameterError(f"{digest!r} is not a sha256 image digest (sha256:<64 hex digits>)")
    return digest


def check_reference(reference: str) -> str:
    """A tag or a digest. Raises: ParameterError."""
    return check_digest(reference) if str(reference).startswith("sha256:") else check_tag(reference)


def check_repository(name: str) -> str:
    """name, if it is a valid repository path (lowercase components). Raises: ParameterError."""
    if not isinstance(name, str) or len(name) > 255 or not REPOSITORY.fullmatch(name):
        raise ParameterError(f"{name!r} is not a valid repository name (lowercase letters, digits, . _ - and /)")
    return name


def model_tag(group: str, version: int | str) -> str:
    """`<group>-v<version>`, the tag of a model version's image. Raises: ParameterError if it is no valid tag."""
    if not re.fullmatch(r"[1-9][0-9]*", str(version)):
        raise ParameterError(f"model version {version!r} is not a positive integer")
    tag = f"{group}-v{version}"
    if not TAG.fullmatch(tag):
        raise ParameterError(f"model package group {group!r} gives the tag {tag!r}, which the registry's tag grammar "
                             "refuses ([A-Za-z0-9_][A-Za-z0-9._-]{0,127})")
    return tag


@dataclass(frozen=True)
class Platform:
    """An image platform: `linux/amd64`, `linux/arm64` (variant `v8` optional in an index)."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @classmethod
    def parse(cls, value: Platform | str) -> Platform:
        """A platform from `os/arch[/variant]`. Raises: ParameterError."""
        if isinstance(value, Platform):
            return value
        parts = str(value).split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ParameterError(f"platform {value!r} is not os/architecture[/variant], e.g. linux/amd64")
        return cls(*parts)

    @classmethod
    def for_lambda(cls, architecture: str) -> Platform:
        """The platform of a Lambda function architecture (x86_64, arm64). Raises: ParameterError."""
        if architecture not in LAMBDA_ARCHITECTURES:
            raise ParameterError(f"unknown Lambda architecture {architecture!r} (expected x86_64 or arm64)")
        return cls("linux", LAMBDA_ARCHITECTURES[architecture])

    def matches(self, os: str | None, architecture: str | None, variant: str | None = None) -> bool:
        """True if an image's os/architecture/variant is this platform (arm64's variant v8 is implied)."""
        if (os, architecture) != (self.os, self.architecture):
            return False
        if self.variant is None:
            return variant in (None, "", "v8") if architecture == "arm64" else True
        return variant == self.variant
