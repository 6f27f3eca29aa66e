"""deploy.endpoint.slot: a staged version beside the serving one, promoted without a second load, and load
failures remembered by the artifact's digest (not the version's name). A fake loader and a fake clock: no
model, no server, no sleep."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.endpoint.loader import LoadedModel
from deploy.endpoint.slot import ModelLoadFailed, ModelSlot, ModelTarget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Loader:
    """Counts loads; a model directory named 'broken' fails to load."""

    def __init__(self) -> None:
        self.loads: list[tuple[str, str]] = []

    def __call__(self, version: str, model_dir: Path) -> LoadedModel:
        self.loads.append((version, str(model_dir)))
        if Path(model_dir).name == "broken":
            raise ValueError(f"{model_dir} does not load")
        return LoadedModel(version, Path(model_dir), code=None, model=object())


class Source:
    def __init__(self, target: ModelTarget | None) -> None:
        self.target = target

    def __call__(self) -> ModelTarget | None:
        return self.target


V1 = ModelTarget("g/1", Path("/m/one"), "sha256:1")
V2 = ModelTarget("g/2", Path("/m/two"), "sha256:2")


def slot(source: Source, loader: Loader, clock: Clock | None = None) -> ModelSlot:
    return ModelSlot(source, loader=loader, clock=clock or Clock(), idle_seconds=60, retry_seconds=30)


def test_a_staged_version_is_not_served_until_the_source_names_it_then_it_is_promoted_without_a_second_load():
    source, loader = Source(V1), Loader()
    s = slot(source, loader)
    assert s.acquire().version == "g/1"
    s.release()
    staged = s.stage(V2)
    assert s.stage(V2) is staged and loader.loads.count(("g/2", "/m/two")) == 1  # staging twice loads once
    assert s.current.version == "g/1" and s.staged_model() is staged  # live requests still get v1
    s.refresh()
    assert s.current.version == "g/1"  # the source still names v1: nothing moves
    source.target = V2
    assert s.refresh() is True and s.current is staged and s.staged_model() is None
    assert loader.loads.count(("g/2", "/m/two")) == 1  # promoted, not loaded again


def test_a_staged_version_is_promoted_only_for_exactly_its_artifact():
    source, loader = Source(V1), Loader()
    s = slot(source, loader)
    s.acquire(), s.release()
    s.stage(V2)
    source.target = V2._replace(digest="sha256:other")  # the same version name, another artifact
    assert s.refresh() is True and loader.loads[-1] == ("g/2", "/m/two")  # loaded anew
    assert s.staged_model() is not None  # the staged one was not taken for it


def test_a_cold_start_takes_the_staged_model_and_an_unpromoted_one_is_dropped_when_idle():
    source, loader, clock = Source(None), Loader(), Clock()
    s = slot(source, loader, clock)
    staged = s.stage(V1)
    source.target = V1
    assert s.acquire() is staged and len(loader.loads) == 1
    s.release()
    s.stage(V2)
    clock.now += 61
    s.tick()
    assert s.staged_model() is None and s.unstage() is False


def test_a_load_failure_is_remembered_by_artifact_so_a_repaired_artifact_is_tried_at_once():
    broken = ModelTarget("g/2", Path("/m/broken"), "sha256:bad")
    source, loader, clock = Source(broken), Loader(), Clock()
    s = slot(source, loader, clock)
    with pytest.raises(ModelLoadFailed):
        s.acquire()
    with pytest.raises(ModelLoadFailed, match="does not load"):
        s.acquire()  # the same artifact, within retry_seconds: not loaded again
    assert len(loader.loads) == 1 and s.load_error() == "/m/broken does not load"
    source.target = ModelTarget("g/2", Path("/m/repaired"), "sha256:good")  # the same version, repaired
    assert s.acquire().model_dir == Path("/m/repaired") and len(loader.loads) == 2
    s.release()


def test_a_failed_swap_keeps_serving_and_is_not_retried_for_the_same_artifact():
    source, loader, clock = Source(V1), Loader(), Clock()
    s = slot(source, loader, clock)
    s.acquire(), s.release()
    source.target = ModelTarget("g/2", Path("/m/broken"), "sha256:bad")
    assert s.refresh() is False and s.refresh() is False
    assert loader.loads.count(("g/2", "/m/broken")) == 1 and s.current.version == "g/1"
    clock.now += 31
    assert s.refresh() is False and loader.loads.count(("g/2", "/m/broken")) == 2  # retried after the delay
