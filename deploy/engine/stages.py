"""Staged promotion (issue 21): one reconciler per stage, reconciled independently; the promotion check.

    stages = Stages(group, [(stage, reconciler), ...])   # built by the composition root (Workspace.reconciler)
    stages.reconcile(trigger=...)                        # each stage under its own lock, in order
    why_not_promotable(version, stage, previous, observed, since, now)   # pure: None, or the refusal

A stage's reconciler has its own lock, status and targets (keyed by the stage's deployment key,
deploy/names.py `GroupNames.stage`) and its gate (deploy.engine.model.Gate). A stage that fails,
even to take its lock, never stops or moves another: every stage is reconciled, and the first
exception is raised only after all were (so the approval Lambda's retries still happen).
`Stages` answers what the approval handler asks of a reconciler (`group`, `reconcile`), so
`deploy.handler.handle` serves both. Why: docs/decisions/0046-staged-promotion.md.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from deploy.engine.faults import fault_line
from deploy.engine.history import Cause
from deploy.engine.model import Observed
from greenlight.errors import PromotionRefused
from greenlight.registry.model import ApprovalStatus, ModelVersion

__all__ = ["PromotionRefused", "Stages", "StagesReport", "why_not_promotable"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StagesReport:
    """The reports of every stage of one reconcile, in stage order."""

    group: str
    reports: tuple[Any, ...]  # deploy.engine.reconciler.Report, one per stage

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def to_dict(self) -> dict[str, Any]:
        stages = [r.to_dict() for r in self.reports]
        first = stages[0] if stages else {}
        return {"group": self.group, "trigger": first.get("trigger"), "dry_run": first.get("dry_run", False),
                "ok": self.ok, "desired": first.get("desired"), "approved": first.get("approved", []),
                "results": [{**result, "stage": s["stage"]} for s in stages for result in s["results"]],
                "history_error": next((s["history_error"] for s in stages if s.get("history_error")), None),
                "stages": stages}


class Stages:
    """The reconcilers of a group's stages, in order (module docstring)."""

    def __init__(self, group: str, stages: Sequence[tuple[Any, Any]]):
        self.group = group
        self.stages = list(stages)  # (deploy.config.Stage, Reconciler)

    @property
    def targets(self) -> list[Any]:
        """Every stage's targets, in stage order."""
        return [target for _, reconciler in self.stages for target in reconciler.targets]

    def abort(self, trigger: str = "greenlight deploy --abort") -> StagesReport:
        """Every stage's rollouts in progress rolled back (Reconciler.abort), in stage order."""
        return StagesReport(self.group, tuple(reconciler.abort(trigger) for _, reconciler in self.stages))

    def reconcile(self, *, dry_run: bool = False, trigger: str = "manual", cause: Any = None,
                  deadline: Any = None) -> StagesReport:
        """Each stage's reconcile, in order, with the same cause (the history's) and deadline (the invocation's);
        a stage's exception is raised after the others ran.

        Raises:
            ConflictError (or any exception of a stage): after every other stage was reconciled.
        """
        reports, first = [], None
        for stage, reconciler in self.stages:
            try:
                mine = cause.for_stage(stage.name) if isinstance(cause, Cause) else cause  # a promotion here
                reports.append(reconciler.reconcile(dry_run=dry_run, trigger=trigger, cause=mine, deadline=deadline))
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # this stage's failure; the others still reconcile
                log.error("stage %s of %s did not reconcile: %s", stage.name, self.group, fault_line(exc))
                first = first or exc
        if first is not None:
            raise first
        return StagesReport(self.group, tuple(reports))


def why_not_promotable(version: ModelVersion, stage: Any, previous: Any, observed: Iterable[Observed],
                       unobservable: Mapping[str, str], since: Mapping[str, Any], now: datetime) -> str | None:
    """None when `version` may be promoted to `stage`, else the refusal in one line (pure).

    The version must be Approved, the stage gated by promotion, and the previous stage must run the
    version on every one of its targets (it got there only through the deploy transaction, so its
    smoke test passed) for at least `stage.soak_minutes` (`since`: the saved report's per target
    {"version", "since"}).
    """
    label = f"v{version.version} of {version.group}"
    if version.status is not ApprovalStatus.APPROVED:
        return f"{label} is {version.status.value}, not Approved: approve it first (greenlight models approve " \
               f"{version.version})"
    if stage.gate != "promotion":
        return f"stage {stage.name} deploys on approval (gate = \"approval\"): promote only to a stage with " \
               "gate = \"promotion\""
    observed = list(observed)
    if unobservable:
        why = "; ".join(f"{k}: {v}" for k, v in unobservable.items())
        return f"cannot tell what stage {previous.name} runs ({why})"
    if not observed:
        return f"stage {previous.name} has no target, so {label} cannot have passed it"
    elsewhere = [f"{o.target} runs {'nothing' if o.version is None or not o.active else f'v{o.version}'}"
                 for o in observed if not o.active or o.version != version.version]
    if elsewhere:
        return f"{label} has not passed stage {previous.name} ({', '.join(elsewhere)}): it must run there, smoke " \
               f"test passed, before promotion to {stage.name}"
    if stage.soak_minutes > 0:
        starts = [(since.get(o.target) or {}) for o in observed]
        if any(s.get("version") != version.version or not s.get("since") for s in starts):
            return f"{label} runs in stage {previous.name}, but since when is not recorded: run greenlight deploy " \
                   f"and wait soak_minutes ({stage.soak_minutes:g})"
        start = max(datetime.fromisoformat(s["since"].replace("Z", "+00:00")) for s in starts)
        minutes = (now - start).total_seconds() / 60
        if minutes < stage.soak_minutes:
            return f"{label} has run in stage {previous.name} for {minutes:.0f} of the {stage.soak_minutes:g} " \
                   f"minutes stage {stage.name} asks (soak_minutes)"
    return None
