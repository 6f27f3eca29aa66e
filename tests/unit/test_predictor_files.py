"""The compact forest's files: mapped only once checked, refused with the reason when bad; old forest.npz still loads."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor

from tests.conftest import imported_src_modules


@pytest.fixture(scope="module")
def mods():
    with imported_src_modules(("compact_forest", "forest_files", "forest_rows", "forest_export")) as modules:
        yield modules


@pytest.fixture(scope="module")
def trained(mods, tmp_path_factory):
    X, y = load_diabetes(return_X_y=True)
    model = RandomForestRegressor(n_estimators=20, random_state=0, n_jobs=1).fit(X, y)
    directory = tmp_path_factory.mktemp("forest")
    mods.forest_export.export_forest(model, directory)
    return model, X, directory


def copy_forest(directory: Path, tmp_path: Path) -> Path:
    shutil.copytree(directory, tmp_path / "copy")
    return tmp_path / "copy"


def edit_manifest(directory: Path, change) -> None:
    manifest = json.loads((directory / "forest.json").read_text())
    change(manifest)
    (directory / "forest.json").write_text(json.dumps(manifest))


def rewrite_array(directory: Path, name: str, array: np.ndarray) -> None:
    """Replace an array file and record its new digest, as a buggy exporter would."""
    path = directory / f"forest.{name}.npy"
    np.save(path, array)

    def record(manifest):
        manifest["arrays"][name]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    edit_manifest(directory, record)


def legacy_npz(mods, model, path: Path, fmt: str = "greenlight-forest/1", drop: str | None = None) -> None:
    """forest.npz as greenlight-forest/1 exporters wrote it: breadth-first nodes, float64 thresholds, int64 children."""
    parts = [mods.forest_export._renumber(est.tree_) for est in model.estimators_]
    sizes = np.array([len(p["value"]) for p in parts], dtype=np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    arrays = {
        "format": np.array(fmt), "n_features": np.array(int(model.n_features_in_), dtype=np.int64), "roots": roots,
        "depths": np.array([est.tree_.max_depth for est in model.estimators_], dtype=np.int64),
        "feature": np.concatenate([p["feature"] for p in parts]).astype(np.int32),
        "threshold": np.concatenate([p["threshold"] for p in parts]).astype(np.float64),
        "left": np.concatenate([np.where(p["left"] >= 0, p["left"] + r, -1) for p, r in zip(parts, roots, strict=True)]),
        "value": np.concatenate([p["value"] for p in parts]).astype(np.float64),
        "missing_left": np.concatenate([p["missing_left"] for p in parts]).astype(np.bool_),
    }
    np.savez(path, **{k: v for k, v in arrays.items() if k != drop})


def test_a_legacy_forest_npz_still_loads_and_predicts_the_same(mods, trained, tmp_path):
    # GIVEN a model directory of an earlier version: forest.npz, format greenlight-forest/1
    model, X, _ = trained
    legacy_npz(mods, model, tmp_path / "forest.npz")
    # WHEN it is loaded by path, or as the directory that holds it
    for path in (tmp_path / "forest.npz", tmp_path):
        forest = mods.compact_forest.CompactForest.load(path)
        # THEN every evaluator predicts scikit-learn's values bit for bit
        expected = model.predict(X)
        for name, got in forest.predict_each_way(X).items():
            assert (got.view(np.uint64) == expected.view(np.uint64)).all(), name


@pytest.mark.parametrize(("fmt", "drop", "match"), [
    ("greenlight-forest/0", None, "format 'greenlight-forest/0' is not supported"),
    ("greenlight-forest/1", "value", r"lacks arrays \['value'\]"),
])
def test_bad_legacy_files_are_refused(mods, trained, tmp_path, fmt, drop, match):
    legacy_npz(mods, trained[0], tmp_path / "forest.npz", fmt, drop)
    with pytest.raises(mods.compact_forest.ForestFormatError, match=match):
        mods.compact_forest.CompactForest.load(tmp_path / "forest.npz")


def test_junk_files_are_refused(mods, tmp_path):
    (tmp_path / "forest.npz").write_bytes(b"not a zip file")
    (tmp_path / "forest.json").write_text("{not json")
    for name in ("forest.npz", "forest.json"):
        with pytest.raises(mods.compact_forest.ForestFormatError, match=f"cannot read {name}"):
            mods.compact_forest.CompactForest.load(tmp_path / name)


def test_an_unknown_format_is_refused_naming_it(mods, trained, tmp_path):
    bad = copy_forest(trained[2], tmp_path)
    edit_manifest(bad, lambda m: m.update(format="greenlight-forest/9"))
    with pytest.raises(mods.compact_forest.ForestFormatError,
                       match="forest format 'greenlight-forest/9' is not supported .*'greenlight-forest/2'"):
        mods.compact_forest.CompactForest.load(bad)


@pytest.mark.parametrize("victim", ["forest.threshold.npy", "forest.row_left.npy", "forest.depths.npy"])
@pytest.mark.parametrize("where", ["header", "data"])
def test_a_tampered_array_is_refused_by_its_digest(mods, trained, tmp_path, victim, where):
    bad = copy_forest(trained[2], tmp_path)
    data = bytearray((bad / victim).read_bytes())
    data[20 if where == "header" else len(data) - 3] ^= 0x04
    (bad / victim).write_bytes(bytes(data))
    with pytest.raises(mods.compact_forest.ForestIntegrityError,
                       match=f"refusing {victim}: its sha256 is [0-9a-f]{{64}}, but forest.json records"):
        mods.compact_forest.CompactForest.load(bad)


def test_indices_outside_the_forest_are_refused(mods, trained, tmp_path):
    bad = copy_forest(trained[2], tmp_path)
    child = np.load(bad / "forest.child.npy")
    child[-1] = child.size  # one past the last node
    rewrite_array(bad, "child", child)
    with pytest.raises(mods.compact_forest.ForestFormatError, match="forest.child.npy holds values .*outside the forest"):
        mods.compact_forest.CompactForest.load(bad)


@pytest.mark.parametrize(("name", "change", "match"), [
    ("threshold", lambda a: a.astype(np.float64), "expected 'forest.threshold.npy', one of \\['float32'\\]"),
    ("value", lambda a: a[:-1], "shape"),
])
def test_arrays_of_the_wrong_dtype_or_shape_are_refused(mods, trained, tmp_path, name, change, match):
    bad = copy_forest(trained[2], tmp_path)
    array = change(np.load(bad / f"forest.{name}.npy"))
    rewrite_array(bad, name, array)
    edit_manifest(bad, lambda m: m["arrays"][name].update(dtype=array.dtype.str, shape=list(array.shape)))
    with pytest.raises(mods.compact_forest.ForestFormatError, match=match):
        mods.compact_forest.CompactForest.load(bad)


def test_a_manifest_cannot_point_outside_its_files(mods, trained, tmp_path):
    bad = copy_forest(trained[2], tmp_path)
    edit_manifest(bad, lambda m: m["arrays"]["value"].update(file="../elsewhere.npy"))
    with pytest.raises(mods.compact_forest.ForestFormatError, match="'../elsewhere.npy'"):
        mods.compact_forest.CompactForest.load(bad)
    edit_manifest(bad, lambda m: m["arrays"].pop("value"))
    with pytest.raises(mods.compact_forest.ForestFormatError, match=r"lacks arrays \['value'\]"):
        mods.compact_forest.CompactForest.load(bad)


def test_a_legacy_model_directory_is_served_by_model_fn(mods, trained, tmp_path):
    # GIVEN a model directory as earlier versions wrote it: metadata.json naming forest.npz, format /1
    model, X, _ = trained
    legacy_npz(mods, model, tmp_path / "forest.npz")
    metadata = {"feature_names": [f"f{i}" for i in range(X.shape[1])], "forest_file": "forest.npz",
                "forest_format": "greenlight-forest/1",
                "forest_sha256": hashlib.sha256((tmp_path / "forest.npz").read_bytes()).hexdigest()}
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    with imported_src_modules(("inference", "payload")) as serving:
        # WHEN today's serving code loads it and answers single rows and a batch
        served = serving.inference.model_fn(str(tmp_path))
        rows = [serving.inference.predict_fn(serving.inference.input_fn(",".join(map(repr, x)), "text/csv"), served)
                for x in X[:20].tolist()]
        batch = serving.inference.predict_fn(X, served)
        # THEN it predicts what scikit-learn does, bit for bit; a tampered forest.npz is still refused
        assert np.concatenate(rows).tolist() == model.predict(X[:20]).tolist()
        assert (batch.view(np.uint64) == model.predict(X).view(np.uint64)).all()
        (tmp_path / "forest.npz").write_bytes((tmp_path / "forest.npz").read_bytes() + b"x")
        with pytest.raises(serving.inference.ModelIntegrityError, match="refusing forest.npz: its sha256 is"):
            serving.inference.model_fn(str(tmp_path))
