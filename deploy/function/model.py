"""What the Lambda target decides, as plain data and pure functions (no boto3, no disk).

    predict_threads(memory_mb)                  GREENLIGHT_PREDICT_THREADS for a function's memory
    function_environment(current, memory_mb, model_label)   the variables a deploy sets, merged
    describe_version(...) / VersionRecord.parse  what a published version records in its Description
    image_digest(image_uri)                     the digest of a by-digest ImageUri
    model_tags(...) / held_tags(...)            what retention (deploy.engine.retention) weighs in ECR

Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU, so below that a
function has less than one and a second prediction thread only adds switching. The thread count is
computed here, from the configured memory, in this one function; the deploy writes it into the
function's environment (UpdateFunctionConfiguration when it differs), never a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["MANAGED_VARIABLES", "MODEL_VERSION_VARIABLE", "PREDICT_THREADS_VARIABLE", "VCPU_MB", "VersionRecord",
           "describe_version", "function_environment", "held_tags", "image_digest", "model_label", "model_tags",
           "predict_threads"]

VCPU_MB = 1769  # Lambda: "at 1,769 MB, a function has the equivalent of one vCPU"
PREDICT_THREADS_VARIABLE = "GREENLIGHT_PREDICT_THREADS"  # read by src/inference.py
MODEL_VERSION_VARIABLE = "GREENLIGHT_MODEL_VERSION"  # `<group>/<version>`: which model a function version holds
MANAGED_VARIABLES = (PREDICT_THREADS_VARIABLE, MODEL_VERSION_VARIABLE)

_DESCRIPTION = re.compile(r"greenlight (?P<group>\S+) model v(?P<version>[1-9][0-9]*)"
                          r"(?: image (?P<digest>sha256:[0-9a-f]{64}))?")
_DIGEST = re.compile(r"@(sha256:[0-9a-f]{64})$")


def predict_threads(memory_mb: int) -> int:
    """Prediction threads for a function of `memory_mb`: 1 below 1,769 MB, else one per whole 1,769 MB.

    10,240 MB (the most Lambda allows) gives 5: its 5.8 vCPUs' worth of time fits 5 busy threads.
    """
    if memory_mb <= 0:
        raise ValueError(f"memory_mb must be positive, not {memory_mb}")
    return max(1, memory_mb // VCPU_MB)


def model_label(group: str, version: int) -> str:
    """`<group>/<version>`: how a served model version is named (X-Greenlight-Model-Version)."""
    return f"{group}/{version}"


def function_environment(current: Mapping[str, str] | None, memory_mb: int, label: str) -> dict[str, str]:
    """The function's variables after a deploy: `current` (set by its stack) plus the managed ones.

    The managed ones are the prediction threads for `memory_mb` and the model version's label, which
    also makes each model version's configuration differ, so PublishVersion always publishes a new
    version for a new model (AWS returns the previous version when nothing changed).
    """
    return {**dict(current or {}), PREDICT_THREADS_VARIABLE: str(predict_threads(memory_mb)),
            MODEL_VERSION_VARIABLE: label}


def describe_version(group: str, version: int, digest: str | None = None) -> str:
    """A published function version's Description: group, model version and (on AWS) image digest."""
    return f"greenlight {group} model v{version}" + (f" image {digest}" if digest else "")


@dataclass(frozen=True)
class VersionRecord:
    """What a published version's Description says it holds."""

    group: str
    model_version: int
    digest: str | None

    @classmethod
    def parse(cls, description: str | None) -> VersionRecord | None:
        """The record in a Description written by describe_version, else None (not published by Greenlight)."""
        match = _DESCRIPTION.fullmatch((description or "").strip())
        if match is None:
            return None
        return cls(match["group"], int(match["version"]), match["digest"])


def image_digest(image_uri: str | None) -> str | None:
    """`sha256:...` of `<registry>/<repository>@sha256:...`, else None (a tag, or nothing)."""
    match = _DIGEST.search(image_uri or "")
    return match.group(1) if match else None


def model_tags(tags: Mapping[str, str], group: str) -> dict[str, int]:
    """The group's model image tags (`<group>-v<N>`) -> N; other tags (the base image's) are not listed."""
    pattern = re.compile(re.escape(group) + r"-v([1-9][0-9]*)")
    return {tag: int(m[1]) for tag in tags if (m := pattern.fullmatch(tag))}


def held_tags(tags: Mapping[str, str], group: str, running: Iterable[str]) -> set[str]:
    """The newest model tag of each image a kept function version runs (`running` digests): deleting an
    image's last tag deletes the image, and a version pinned to a deleted image cannot start."""
    numbered = model_tags(tags, group)
    newest: dict[str, str] = {}
    for tag in sorted(numbered, key=numbered.__getitem__):
        newest[tags[tag]] = tag
    return {tag for digest, tag in newest.items() if digest in set(running)}
