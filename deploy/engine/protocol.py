"""The one interface every deploy target implements, locally and on AWS: observe, plus the deploy primitives.

A target is one serverless thing that serves a model version (the SageMaker Serverless endpoint,
the inference Lambda's `live` alias, the Batch Transform schedule) in one mode (local or AWS). The
deploy transaction (deploy.engine.transaction) is written once, in the engine; an adapter only
implements the steps it calls, each small and each doing its own I/O:

    observe()                  what runs now; read-only, no write call ever
    fetch(release, scratch)    the release's model where this target needs it, verified (an Artifact)
    stage(release, artifact)   the release beside the serving version; nothing live changes (a Staged)
    probe(staged, smoke)       the staged version answers the smoke rows through a path live traffic
                               cannot reach; returns where, in words
    switch(staged)             the staged (probed) version takes the traffic; returns what changed
    confirm(staged, smoke)     after the switch: the live path answers as probed (None: no such check)
    unstage(staged)            undo: what served before the stage serves again, the staged version is
                               dropped; idempotent, and callable from a later process (the recovery)
    stop()                     take the target down (nothing Approved)
    prune(keep)                retention, decided by deploy.engine.retention.retained

A target that can move traffic progressively (issue 22; deploy.engine.rollout) also implements
`TrafficTarget`; the transaction refuses a progressive TrafficPolicy on a target that does not:

    shift(staged, previous, percent)   the staged (probed) version answers `percent` (0 < percent < 100)
                                       of live requests, `previous` the rest; idempotent (the same shift
                                       again changes nothing), so a later reconcile re-applies what the
                                       intent records. switch(staged) then gives it 100% and ends the
                                       split; unstage(staged) gives the previous version 100% again.
    traffic(version, since)            what `version` answered on the live path since `since` (epoch
                                       seconds): a VersionTraffic (requests, 5xx, p99) the rules judge

Where the platform judges a step itself (SageMaker rolled its blue/green update back; a named CloudWatch alarm
is in ALARM), `shift`, `traffic` or the bake's `switch` raise TrafficBreach with the platform's reason: the
engine rolls the rollout back exactly as for a breach of its own rules (RolledBack: held until approved again).

Every primitive raises DeploymentFailed (or another GreenlightError) naming its step; the engine
words what still serves from a fresh observation, never from what the adapter believes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.smoke import SmokeTest
from deploy.engine.traffic import VersionTraffic
from greenlight.errors import DeploymentFailed

__all__ = ["Artifact", "DeployTarget", "Staged", "TrafficBreach", "TrafficTarget"]


class TrafficBreach(DeploymentFailed):
    """The platform judged the new version's live traffic and rolled it back, or a named alarm fired (module
    docstring). `reason`: the platform's words, without the step label the engine puts before them (default:
    the message)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = message if reason is None else reason


@dataclass(frozen=True)
class Artifact:
    """A release's model as a target needs it: a local directory (checked), or None when the platform
    fetches it itself (SageMaker reads the model package). `digest` names the exact bytes (sha256)."""

    version: int
    uri: str | None
    path: Path | None = None
    digest: str | None = None


@dataclass(frozen=True)
class Staged:
    """A version staged beside the serving one. `ref` is what the adapter needs to probe, switch to or
    drop it, JSON only, so the intent record can hand it to a later reconcile; `detail` names it in words."""

    target: str
    version: int
    ref: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "version": self.version, "ref": dict(self.ref), "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Staged:
        """Raises: KeyError, TypeError, ValueError on a record that is not a Staged."""
        return cls(str(data["target"]), int(data["version"]), dict(data.get("ref") or {}), str(data.get("detail", "")))


@runtime_checkable
class DeployTarget(Protocol):
    """The primitives of the deploy transaction (module docstring); the engine owns their order."""

    name: str
    kind: TargetKind

    def observe(self) -> Observed:
        """What the target runs now; read-only. Raises: GreenlightError if it cannot be read."""
        ...

    def fetch(self, release: Release, scratch: Path) -> Artifact:
        """The release's model, fetched and checked (`scratch`: a temporary directory the engine removes)."""
        ...

    def stage(self, release: Release, artifact: Artifact) -> Staged:
        """The release ready beside what serves (a loaded slot, a published version, a Model ...)."""
        ...

    def probe(self, staged: Staged, smoke: SmokeTest) -> str:
        """Where the staged version answered the smoke rows exactly ('not run (<why>)' if the target's own
        configuration skips it). Raises: DeploymentFailed saying what differed."""
        ...

    def switch(self, staged: Staged) -> str:
        """Make the staged version serve; what changed, in words ('' when nothing to add)."""
        ...

    def confirm(self, staged: Staged, smoke: SmokeTest | None) -> str | None:
        """After the switch, check the live path (with `smoke` when there is one); None: nothing to check."""
        ...

    def unstage(self, staged: Staged) -> None:
        """Return to what served before `staged` and drop it; idempotent, callable from another process."""
        ...

    def stop(self) -> str:
        """Take the target down (or disable it) when nothing is Approved; what changed, in words."""
        ...

    def prune(self, keep: frozenset[int]) -> list[str]:
        """Delete what earlier deployments left beyond retention, never a version in `keep`; what went, in
        words. Failures are logged and skipped."""
        ...


@runtime_checkable
class TrafficTarget(DeployTarget, Protocol):
    """A DeployTarget that can split live traffic between two versions (module docstring; issue 22)."""

    def shift(self, staged: Staged, previous: int | None, percent: float) -> str:
        """`percent` of live requests to the staged version, the rest to `previous`; what changed, in words
        ('' when it was so already). Raises: DeploymentFailed naming what could not be set."""
        ...

    def traffic(self, version: int, since: float) -> VersionTraffic:
        """`version`'s live answers since `since` (epoch seconds): requests, 5xx, p99 latency.
        Raises: GreenlightError when they cannot be read (the engine rolls back: it cannot judge)."""
        ...
