"""The one interface every deploy target implements, locally and on AWS.

A target is one serverless thing that serves a model version (the SageMaker Serverless endpoint,
the inference Lambda's `live` alias, the Batch Transform schedule) in one mode (local or AWS). The
engine (deploy.engine.reconciler) only ever calls these four methods; each adapter does its own I/O.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from deploy.engine.model import Observed, Release, TargetKind
from deploy.engine.smoke import SmokeTest

__all__ = ["DeployTarget"]


@runtime_checkable
class DeployTarget(Protocol):
    """Observe, deploy (smoke-tested, undone on failure), stop; plus retention."""

    name: str
    kind: TargetKind

    def observe(self) -> Observed:
        """What the target runs now. Read-only: no write call, ever.

        Raises:
            AwsError / GreenlightError: the target cannot be read.
        """
        ...

    def deploy(self, release: Release, smoke: SmokeTest) -> str:
        """Bring the target to `release`, smoke-test it with `smoke`, and return what changed in words.

        On any failure (the update fails, times out, or the smoke test disagrees) the target is left
        on, or returned to, what it ran before, and DeploymentFailed says why.

        Raises:
            DeploymentFailed: naming the step and the reason; the previous version still serves.
        """
        ...

    def stop(self) -> str:
        """Take the target down (or disable it) when nothing is Approved; return what changed.

        Raises:
            DeploymentFailed: the target could not be stopped.
        """
        ...

    def prune(self, keep: frozenset[int]) -> list[str]:
        """Delete what earlier deployments left behind beyond retention, never a version in `keep`.

        Returns what was deleted, in words. Failures are logged and skipped, never raised.
        """
        ...
