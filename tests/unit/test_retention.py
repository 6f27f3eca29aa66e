"""deploy.engine.retention: the one retention rule every target's prune applies (pure)."""

from __future__ import annotations

from deploy.engine.retention import doomed, retained


def test_held_kept_and_the_newest_others_stay_and_the_rest_go_oldest_first():
    items = {f"m{v}": v for v in range(1, 8)} | {"c3": 3, "c6": 6}  # two kinds of item may hold one version
    assert retained(items, {"m2"}, {7}, retention=2) == {"m2", "m5", "c6", "m6", "m7"}
    assert doomed(items, {"m2"}, {7}, retention=2) == ["m1", "c3", "m3", "m4"]


def test_a_held_item_keeps_every_item_of_its_version_and_unknown_held_names_are_ignored():
    items = {"config-a": 4, "model-a": 4, "model-b": 1}
    assert doomed(items, {"config-a", "not-listed"}, set(), retention=0) == ["model-b"]


def test_nothing_goes_when_retention_covers_everything_or_there_is_nothing():
    assert doomed({"a": 1, "b": 2}, set(), set(), retention=5) == []
    assert doomed({}, {"x"}, {1}, retention=0) == []
    assert doomed({"a": 1}, set(), set(), retention=-3) == ["a"]  # a negative count keeps nothing extra
