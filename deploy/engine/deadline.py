"""How long a reconcile may still work, and where a long wait hands over to a later reconcile.

    deadline = Deadline.after(context.get_remaining_time_in_millis() / 1000)  # the approval handler
    with within(deadline): ...                                               # the reconciler, per target
    hand_over_before_sleep("endpoint churn is Updating", poll)               # a wait loop, before it sleeps

A Lambda invocation ends at a hard limit (900 s at most); a SageMaker endpoint update alone can take
longer. So a reconcile is level-triggered: a wait that would sleep past the deadline raises HandedOver
instead; the deploy transaction then records the deployment as in progress (its intent, with what it
waits for) and leaves it as it is, and the next reconcile (the periodic resync, or the next event)
observes and continues it. `at` is when the work must stop (a margin before the end, to save the
report and release the lease); `ends` is when the invocation itself ends, which the reconcile lease
must not outlive (deploy.engine.aws_state). Without a current deadline (the CLI) nothing hands over:
the waits are bounded by their own timeouts, as before.

The current deadline is a context variable, set by the reconciler around each target's work (each
target gets a fair share of what is left, so one target's long wait never takes the others' time).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field

__all__ = ["MARGIN_SECONDS", "Deadline", "HandedOver", "current", "hand_over_before_sleep", "within"]

MARGIN_SECONDS = 60.0  # kept back from an invocation's end to save the report and release the lease (at most)


class HandedOver(Exception):  # noqa: N818 (not an error: the work goes on in a later reconcile)
    """A wait would run past the deadline; `waiting` says for what (the work continues in a later reconcile)."""

    def __init__(self, waiting: str):
        super().__init__(waiting)
        self.waiting = waiting


@dataclass(frozen=True)
class Deadline:
    """Work until `at`; the invocation ends at `ends` (both on `clock`, monotonic seconds)."""

    at: float
    ends: float
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic,
              margin: float = MARGIN_SECONDS) -> Deadline:
        """The deadline of an invocation with `seconds` left: work stops `margin` (at most a tenth) earlier."""
        now = clock()
        return cls(now + seconds - min(margin, seconds / 10), now + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock()

    def until_end(self) -> float:
        return self.ends - self.clock()

    def share(self, parts: int) -> Deadline:
        """This deadline for one of `parts` pieces of work still to do: an equal share of what is left."""
        now = self.clock()
        return Deadline(min(self.at, now + max(self.at - now, 0.0) / max(parts, 1)), self.ends, self.clock)


_current: ContextVar[Deadline | None] = ContextVar("greenlight_deadline", default=None)


def current() -> Deadline | None:
    return _current.get()


@contextlib.contextmanager
def within(deadline: Deadline | None) -> Iterator[None]:
    """Make `deadline` the current one while the block runs (None: no deadline)."""
    token = _current.set(deadline)
    try:
        yield
    finally:
        _current.reset(token)


def hand_over_before_sleep(waiting: str, seconds: float) -> None:
    """Raise HandedOver(waiting) if sleeping `seconds` would end past the current deadline."""
    deadline = _current.get()
    if deadline is not None and deadline.clock() + seconds > deadline.at:
        raise HandedOver(waiting)
