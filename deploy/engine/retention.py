"""Retention, decided once for every target (pure: no boto3, no disk).

Each adapter lists what earlier deployments left (function versions, SageMaker Models and endpoint
configs, model image tags), each item named and labelled with the model version it holds, and says
which items it must never delete (what serves now, the version a rollback returns to, an image a
kept version runs). `retained` keeps:

- every held item,
- every item of a model version in `keep` (what the reconcile runs and what it wants),
- every item of a model version a held item holds,
- every item of the `retention` newest other model versions;

everything else may go, oldest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["doomed", "retained"]


def retained(items: Mapping[str, int], held: Iterable[str], keep: Iterable[int], retention: int) -> frozenset[str]:
    """The names of `items` (name -> model version) that stay (module docstring)."""
    held = frozenset(h for h in held if h in items)
    keep_versions = set(keep) | {items[name] for name in held}
    others = sorted({v for v in items.values()} - keep_versions, reverse=True)
    keep_versions |= set(others[:max(0, retention)])
    return frozenset(name for name, version in items.items() if name in held or version in keep_versions)


def doomed(items: Mapping[str, int], held: Iterable[str], keep: Iterable[int], retention: int) -> list[str]:
    """The names of `items` that go, oldest model version first (then by name)."""
    stay = retained(items, held, keep, retention)
    return [name for name, _ in sorted(items.items(), key=lambda item: (item[1], item[0])) if name not in stay]
