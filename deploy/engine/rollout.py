"""A progressive rollout as a pure state machine (issue 22): where it is, and what the next reconcile does.

Pure: no boto3, no disk, no clock of its own (the caller passes `now`, seconds since the epoch, so a
rollout survives across processes and Lambda invocations). The deploy transaction (deploy.engine.transaction)
keeps a `Rollout` in its intent record and asks `decide` once per reconcile; it never sleeps through a step.

    shifting   the new version takes steps[step] percent (< 100) since step_started; the previous one the rest
    baking     the new version takes 100%, the previous one stays ready for bake_seconds, still judged
    complete   the bake ended without a breach: the previous version can go
    rolled-back a breach (or `greenlight deploy --abort`): the previous version takes 100% again; `reason` says why

    decide(rollout, policy, seen, now)  -> Decision(HOLD | SHIFT to the next percent | BAKE | COMPLETE |
                                          ROLL_BACK with the breach's reason)

`seen` is the new version's VersionTraffic since the step started (deploy.engine.traffic.breach judges it).
A step whose time is up advances even when the new version answered nothing in it: like CodeDeploy and
SageMaker's guardrails, a rollout is bounded in time, not in traffic (docs/decisions/0048).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from deploy.engine.traffic import Shift, TrafficPolicy, VersionTraffic, breach

__all__ = ["Decision", "Move", "Phase", "Rollout", "decide"]


class Phase(StrEnum):
    SHIFTING = "shifting"
    BAKING = "baking"
    COMPLETE = "complete"
    ROLLED_BACK = "rolled-back"


class Move(StrEnum):
    HOLD = "hold"  # nothing changes this reconcile
    SHIFT = "shift"  # the next (partial) weight
    BAKE = "bake"  # the new version takes 100%, the previous one kept ready
    COMPLETE = "complete"
    ROLL_BACK = "roll-back"


@dataclass(frozen=True)
class Rollout:
    """Where one target's rollout of `version` (from `previous`) is; JSON round trip through to_dict/from_dict."""

    version: int
    previous: int | None
    traffic: Shift
    steps: tuple[float, ...]  # the new version's percent per step, the last one 100
    step: int  # index into steps
    step_started: float  # epoch seconds
    started: float
    phase: Phase = Phase.SHIFTING
    reason: str | None = None  # why it was rolled back

    @classmethod
    def begin(cls, version: int, previous: int | None, policy: TrafficPolicy, now: float) -> Rollout:
        steps = policy.steps()
        return cls(version, previous, policy.traffic, steps, 0, now, now,
                   Phase.BAKING if steps[0] >= 100.0 else Phase.SHIFTING)

    @property
    def percent(self) -> float:
        """The new version's share now (0 once rolled back)."""
        if self.phase is Phase.ROLLED_BACK:
            return 0.0
        return 100.0 if self.phase in (Phase.BAKING, Phase.COMPLETE) else self.steps[self.step]

    def weights(self) -> dict[str, float]:
        """{"v<new>": percent, "v<previous>": the rest} (only versions with a share, or the new one at 0)."""
        out = {f"v{self.version}": self.percent}
        if self.previous is not None and self.percent < 100.0:
            out[f"v{self.previous}"] = round(100.0 - self.percent, 6)
        return out

    @property
    def label(self) -> str:
        """How a breach names the step: 'canary', 'linear 40%', 'bake'."""
        if self.phase is Phase.BAKING:
            return "bake"
        return "canary" if self.traffic is Shift.CANARY else f"linear {self.percent:g}%"

    def describe(self) -> str:
        shares = ", ".join(f"{v} {p:g}%" for v, p in self.weights().items())
        if self.phase is Phase.ROLLED_BACK:
            return f"rolled back v{self.version}: {self.reason}"
        if self.phase is Phase.BAKING:
            return f"baking v{self.version} at 100% (previous {_label(self.previous)} kept ready)"
        return f"{self.traffic.value} step {self.step + 1}/{len(self.steps)}: {shares}"

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "previous": self.previous, "traffic": self.traffic.value,
                "steps": list(self.steps), "step": self.step, "step_started": self.step_started,
                "started": self.started, "phase": self.phase.value, "reason": self.reason,
                "weights": self.weights()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rollout:
        """Raises: KeyError, TypeError, ValueError on a record that is not a Rollout."""
        previous = data.get("previous")
        steps = tuple(float(s) for s in data["steps"])
        step = int(data["step"])
        if not steps or not 0 <= step < len(steps):
            raise ValueError(f"rollout step {step} outside its steps {steps}")
        return cls(int(data["version"]), None if previous is None else int(previous), Shift(data["traffic"]), steps,
                   step, float(data["step_started"]), float(data["started"]), Phase(data.get("phase", "shifting")),
                   data.get("reason"))


@dataclass(frozen=True)
class Decision:
    move: Move
    rollout: Rollout  # the rollout after the move
    reason: str  # in words, for the log and the report


def decide(rollout: Rollout, policy: TrafficPolicy, seen: VersionTraffic, now: float) -> Decision:
    """The next move of `rollout` (module docstring) from the new version's traffic in the current step."""
    if rollout.phase in (Phase.COMPLETE, Phase.ROLLED_BACK):
        return Decision(Move.HOLD, rollout, f"the rollout is {rollout.phase.value}")
    wait = policy.bake_seconds if rollout.phase is Phase.BAKING else policy.step_wait_seconds
    elapsed = now - rollout.step_started
    ended = elapsed >= wait
    why = breach(policy, rollout.version, seen, step_ended=ended, label=rollout.label)
    if why is not None:
        return Decision(Move.ROLL_BACK, replace(rollout, phase=Phase.ROLLED_BACK, reason=why), why)
    if not ended:
        return Decision(Move.HOLD, rollout, f"{rollout.label} v{rollout.version}: {seen.requests} requests, "
                                            f"{seen.errors_5xx} 5xx; {wait - elapsed:.1f} s of {wait:g} s left")
    if rollout.phase is Phase.BAKING:
        return Decision(Move.COMPLETE, replace(rollout, phase=Phase.COMPLETE),
                        f"v{rollout.version} baked {wait:g} s at 100% without a breach")
    following = rollout.step + 1
    if rollout.steps[following] >= 100.0:
        return Decision(Move.BAKE, replace(rollout, step=following, step_started=now, phase=Phase.BAKING),
                        f"{rollout.label} v{rollout.version} passed {wait:g} s: 100%, baking {policy.bake_seconds:g} s")
    return Decision(Move.SHIFT, replace(rollout, step=following, step_started=now),
                    f"{rollout.label} v{rollout.version} passed {wait:g} s: {rollout.steps[following]:g}%")


def _label(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"
