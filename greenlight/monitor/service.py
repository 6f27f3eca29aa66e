"""What `greenlight monitor` and the scheduled monitor decide: which records, which versions, which verdict.

    result = monitor(group, records, baselines, Thresholds(), since=..., until=...)
    result.drift                     # exit 3 when True
    result.reported                  # the versions compared: the newest seen in the window, or all of them

Records are grouped by model version: the record's "<group>/<N>" label where the serving side knew it,
else the version whose baseline names the record's model_sha256 (`BaselineSource.version_of`). With
several versions in the window only the newest is compared unless `all_versions`; the others are named in
`other_versions`. Filters: the window [since, until], the serving targets, and (once stages exist) the
stage. Pure: the records and the baselines come from the caller's adapters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from greenlight.errors import NotFoundError
from greenlight.monitor.baseline import Baseline
from greenlight.monitor.compare import Thresholds, VersionDrift, compare_version
from greenlight.monitor.records import CaptureRecord, parse_version_label

__all__ = ["BaselineSource", "MonitorResult", "monitor"]


class BaselineSource(Protocol):
    """A group's baselines (greenlight/monitor/registry_baselines.py reads them from the model registry)."""

    def baseline(self, version: int) -> Baseline:
        """The version's baseline. Raises: NotFoundError (no such version, or it has none), DataError."""
        ...

    def version_of(self, model_sha256: str) -> int | None:
        """The newest version whose baseline names this model, if any."""
        ...


@dataclass(frozen=True)
class MonitorResult:
    group: str
    since: datetime
    until: datetime
    reported: tuple[VersionDrift, ...]  # newest first
    other_versions: tuple[int, ...]  # seen in the window, not compared (pass all_versions)
    unresolved: int  # records of a model no version's baseline names (left out)

    @property
    def drift(self) -> bool:
        return any(v.drift for v in self.reported)

    def to_json(self, all_versions: bool = False):
        """The single version's object, or (all_versions) a list of them, newest first."""
        docs = [v.to_json() for v in self.reported]
        return docs if all_versions else docs[0]


def _in_scope(record: CaptureRecord, since: datetime, until: datetime, targets: frozenset[str] | None,
              stage: str | None) -> bool:
    if not since <= record.time <= until:
        return False
    if targets is not None and record.target not in targets:
        return False
    return stage is None or record.stage == stage


def monitor(group: str, records: Iterable[CaptureRecord], baselines: BaselineSource, thresholds: Thresholds, *,
            since: datetime, until: datetime, targets: Iterable[str] | None = None, stage: str | None = None,
            all_versions: bool = False, where: str = "") -> MonitorResult:
    """Compare the window's traffic with each version's baseline (module docstring).

    Raises:
        NotFoundError: no capture record in the window (`where` says where they were looked for), none
            that can be tied to a version of the group, or no baseline for a version to compare.
    """
    wanted = frozenset(targets) if targets else None
    by_version: dict[int, list[CaptureRecord]] = defaultdict(list)
    shas: dict[str, int | None] = {}
    seen = unresolved = 0
    for record in records:
        if not _in_scope(record, since, until, wanted, stage):
            continue
        seen += 1
        version = parse_version_label(record.model_version, group)
        if version is None and record.model_sha256:
            if record.model_sha256 not in shas:
                shas[record.model_sha256] = baselines.version_of(record.model_sha256)
            version = shas[record.model_sha256]
        if version is None:
            unresolved += 1
            continue
        by_version[version].append(record)
    scope = f"{', '.join(sorted(wanted))} " if wanted else ""
    if seen == 0:
        raise NotFoundError(f"no capture records of {scope}{group} since {since:%Y-%m-%d %H:%M:%S} UTC{where}; "
                            "serve some requests first, or widen --since")
    if not by_version:
        models = ", ".join(sorted(s[:12] for s, v in shas.items() if v is None)) or "unnamed models"
        raise NotFoundError(f"{seen} capture record(s) of {group} since {since:%Y-%m-%d %H:%M:%S} UTC come from "
                            f"models no version's drift baseline names ({models}); were they registered before "
                            "drift monitoring?")
    versions = sorted(by_version, reverse=True)
    chosen = versions if all_versions else versions[:1]
    reported = tuple(compare_version(v, baselines.baseline(v), by_version[v], thresholds) for v in chosen)
    return MonitorResult(group, since, until, reported, tuple(v for v in versions if v not in chosen), unresolved)
