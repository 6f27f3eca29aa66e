"""The one interface both model registries implement (SQLite locally, SageMaker on AWS)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from greenlight.registry.model import ApprovalStatus, ModelLifeCycle, ModelVersion

__all__ = ["ModelRegistry"]


@runtime_checkable
class ModelRegistry(Protocol):
    """SageMaker Model Registry semantics: groups of numbered versions with an approval status."""

    def create_model_package(self, request: dict[str, Any]) -> ModelVersion:
        """Register the next version from a CreateModelPackage request; creates the group if needed.

        Raises:
            ParameterError: the request is not a valid versioned CreateModelPackage request.
        """
        ...

    def list_versions(self, group: str | None = None, status: ApprovalStatus | None = None) -> list[ModelVersion]:
        """Versions of one group (or of every group), newest first, optionally of one status.

        Raises:
            NotFoundError: the group does not exist.
        """
        ...

    def get(self, group: str, version: int) -> ModelVersion:
        """One version.

        Raises:
            NotFoundError: naming the group and version, and what does exist.
        """
        ...

    def update_status(
        self, group: str, version: int, status: ApprovalStatus, description: str | None = None
    ) -> ModelVersion:
        """Set the approval status; the same status again changes nothing. A None description keeps the old one.

        Raises:
            NotFoundError: no such group or version.
        """
        ...

    def update_lifecycle(self, group: str, version: int, lifecycle: ModelLifeCycle) -> ModelVersion:
        """Set the version's ModelLifeCycle and record its status in that stage (issue 21); the state-change
        event follows as for an approval.

        Raises:
            NotFoundError: no such group or version.
        """
        ...

    def list_groups(self) -> list[str]:
        """Model package group names, sorted."""
        ...
