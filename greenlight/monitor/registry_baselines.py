"""Each version's drift baseline, found where the registry links it and read through the caller's `read`.

    source = RegistryBaselines(registry, group, read)   # read: s3:// URI -> bytes (local store, or S3 on AWS)
    source.baseline(3); source.version_of(sha256)

The Register step links baseline.json as the package's DriftCheckBaselines.ModelDataQuality.Statistics
(ModelMetrics.ModelDataQuality.Statistics is read too, for packages registered by other tools). Both
registry adapters return the field (greenlight.registry.model.ModelVersion.drift_check_baselines).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from greenlight.errors import DataError, GreenlightError, NotFoundError
from greenlight.monitor.baseline import Baseline
from greenlight.registry.model import ModelVersion
from greenlight.registry.protocol import ModelRegistry

__all__ = ["RegistryBaselines", "baseline_uri"]


def baseline_uri(version: ModelVersion) -> str | None:
    """The S3 URI of the version's data-quality baseline statistics, if the package links one."""
    for links in (version.drift_check_baselines, version.model_metrics):
        source: Any = ((links or {}).get("ModelDataQuality") or {}).get("Statistics") or {}
        if isinstance(source, dict) and isinstance(source.get("S3Uri"), str):
            return source["S3Uri"]
    return None


class RegistryBaselines:
    """BaselineSource over a model registry (greenlight.monitor.service); each baseline read once."""

    def __init__(self, registry: ModelRegistry, group: str, read: Callable[[str], bytes], scan_limit: int = 50):
        self.registry, self.group, self.read, self.scan_limit = registry, group, read, scan_limit
        self._cache: dict[int, Baseline | GreenlightError] = {}

    def baseline(self, version: int) -> Baseline:
        """Raises: NotFoundError (no version, no baseline linked, or unreadable), DataError (not a baseline)."""
        if version not in self._cache:
            try:
                self._cache[version] = self._load(version)
            except (NotFoundError, DataError) as exc:
                self._cache[version] = exc
        found = self._cache[version]
        if isinstance(found, GreenlightError):
            raise found
        return found

    def _load(self, version: int) -> Baseline:
        described = self.registry.get(self.group, version)
        uri = baseline_uri(described)
        if uri is None:
            raise NotFoundError(f"model version {version} of {self.group} has no drift baseline (it was registered "
                                "before drift monitoring, or by another tool): retrain to register one with it")
        try:
            data = self.read(uri)
        except (GreenlightError, OSError) as exc:
            raise NotFoundError(f"model version {version} of {self.group}: its drift baseline {uri} cannot be read "
                                f"({exc})") from exc
        where = f"model version {version} of {self.group} ({uri})"
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise DataError(f"{where}: the baseline is not JSON ({exc})") from None
        return Baseline.parse(doc, where)

    def version_of(self, model_sha256: str) -> int | None:
        for described in self.registry.list_versions(self.group)[:self.scan_limit]:
            try:
                if self.baseline(described.version).model_sha256 == model_sha256:
                    return described.version
            except (NotFoundError, DataError):
                continue
        return None
