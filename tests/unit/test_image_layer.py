"""The model layer: which files of a model directory go in, and a layer whose bytes depend on nothing else."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from deploy.image.layer import COMPRESS_LEVEL, LayerFile, build_layer, layer_diff_id
from deploy.image.model_files import MODEL_PATH, model_layer_files, stage_model_files
from greenlight.errors import DataError
from tests.unit.test_inference import target_first, train_model
from tests.conftest import imported_src_modules

from greenlight.data import default_dataset_csv


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    with imported_src_modules(("train",)) as src:
        return train_model(src.train, tmp_path_factory.mktemp("layer"), target_first(default_dataset_csv()), trees=5)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_copy(model_dir: Path, tmp_path: Path) -> Path:
    out = tmp_path / "model-copy"
    shutil.copytree(model_dir, out)
    return out


def test_model_layer_takes_metadata_and_the_forest_not_the_pickle_or_the_code(model_dir):
    files = model_layer_files(model_dir)
    meta = json.loads((model_dir / "metadata.json").read_text())
    # the forest: its manifest (forest_file) and its arrays (forest_files), each with its recorded digest
    served = {meta["forest_file"]: meta["forest_sha256"], **meta["forest_files"]}
    assert [f.name for f in files] == ["metadata.json", *sorted(served)]
    assert all(f.sha256 == served[f.name] == sha256(model_dir / f.name) for f in files[1:])
    assert (model_dir / "model.joblib").exists() and (model_dir / "code").is_dir()  # there, but left out


def test_model_layer_follows_metadata_keys(model_dir, tmp_path):
    # GIVEN a model format that splits the forest into arrays (listed under forest_files) and adds a file
    model = model_copy(model_dir, tmp_path)
    meta = json.loads((model / "metadata.json").read_text())
    (model / "forest").mkdir()
    arrays = {}
    for name in ("feature.npy", "threshold.npy"):
        (model / "forest" / name).write_bytes(name.encode() * 100)
        arrays[f"forest/{name}"] = sha256(model / "forest" / name)
    (model / "calibration.json").write_text("{}")
    meta.update(forest_files=arrays, calibration_file="calibration.json",
                calibration_sha256=sha256(model / "calibration.json"))
    (model / "metadata.json").write_text(json.dumps(meta))
    # WHEN the layer's files are chosen THEN the new files are in, with their recorded digests
    files = {f.name: f.sha256 for f in model_layer_files(model)}
    assert files == {"metadata.json": None, meta["forest_file"]: meta["forest_sha256"], **arrays,
                     "calibration.json": meta["calibration_sha256"]}


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(forest_file="missing.npz"), "names missing.npz, which is not there"),
    (lambda m: m.update(forest_file="../escape.npz"), "not a file inside the model directory"),
    (lambda m: m.update(forest_file="/etc/passwd"), "not a file inside the model directory"),
    (lambda m: m.update(forest_sha256="abc"), "not 64 lowercase hex digits"),
    (lambda m: [m.pop("forest_file"), m.pop("forest_sha256"), m.pop("forest_files")], "names no file to serve"),
])
def test_bad_metadata_is_one_clear_error(model_dir, tmp_path, change, message):
    model = model_copy(model_dir, tmp_path)
    meta = json.loads((model / "metadata.json").read_text())
    change(meta)
    (model / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=message):
        model_layer_files(model)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(DataError, match="not a trained model directory"):
        model_layer_files(tmp_path)


def test_stage_copies_the_layer_files_and_refuses_a_tampered_one(model_dir, tmp_path):
    staged = stage_model_files(model_dir, tmp_path / "staged")
    assert sorted(p.name for p in staged) == sorted(f.name for f in model_layer_files(model_dir))
    model = model_copy(model_dir, tmp_path)
    forest = model / json.loads((model / "metadata.json").read_text())["forest_file"]
    forest.write_bytes(forest.read_bytes() + b"x")
    with pytest.raises(DataError, match="refusing .*its sha256 is"):
        stage_model_files(model, tmp_path / "staged-2")


def model_layer(model: Path, out: Path):
    return build_layer([LayerFile(f"{MODEL_PATH}/{f.name}", f.path, f.sha256) for f in model_layer_files(model)], out)


def test_same_model_same_bytes_whatever_the_mtimes_modes_and_order(model_dir, tmp_path):
    first = model_layer(model_dir, tmp_path / "a.tar.gz")
    # GIVEN the same files copied elsewhere, with other mtimes and modes, listed in another order
    model = model_copy(model_dir, tmp_path)
    for path in model.iterdir():
        if path.is_file():
            os.utime(path, (1_700_000_000, 1_700_000_000))
            path.chmod(0o600)
    files = [LayerFile(f"{MODEL_PATH}/{f.name}", f.path, f.sha256) for f in reversed(model_layer_files(model))]
    second = build_layer(files, tmp_path / "b.tar.gz")
    # THEN the layer is byte for byte the same
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert (first.digest, first.diff_id, first.size) == (second.digest, second.diff_id, second.size)
    assert first.digest == "sha256:" + sha256(tmp_path / "a.tar.gz")
    assert first.diff_id == "sha256:" + hashlib.sha256(gzip.decompress((tmp_path / "a.tar.gz").read_bytes())).hexdigest()


def test_the_diff_id_without_compressing_is_the_built_layers(model_dir, tmp_path):
    files = [LayerFile(f"{MODEL_PATH}/{f.name}", f.path, f.sha256) for f in model_layer_files(model_dir)]
    assert layer_diff_id(files) == build_layer(files, tmp_path / "layer.tar.gz").diff_id
    wrong = [LayerFile(f.image_path, f.source, "0" * 64 if f.sha256 else None) for f in files]
    with pytest.raises(DataError, match="refusing"):
        layer_diff_id(wrong)


def test_layer_entries_and_gzip_header_are_fixed(model_dir, tmp_path):
    layer = model_layer(model_dir, tmp_path / "layer.tar.gz")
    raw = layer.path.read_bytes()
    # gzip: no FNAME flag, mtime 0, the fixed level (XFL 4: "fastest", for level 1)
    assert raw[:3] == b"\x1f\x8b\x08" and raw[3] == 0 and raw[4:8] == b"\0\0\0\0"
    assert COMPRESS_LEVEL == 1 and raw[8] == 4
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        served = sorted(f"opt/ml/model/{f.name}" for f in model_layer_files(model_dir))
        assert names == sorted(names) == ["opt", "opt/ml", "opt/ml/model", *served]
        for m in members:
            assert (m.uid, m.gid, m.uname, m.gname, m.mtime) == (0, 0, "root", "root", 0)
            assert m.mode == (0o755 if m.isdir() else 0o644)
        for f in model_layer_files(model_dir):
            assert tar.extractfile(f"opt/ml/model/{f.name}").read() == f.path.read_bytes()
    assert layer.files == tuple(f"/{name}" for name in served)


def test_a_file_that_differs_from_its_recorded_digest_is_refused_and_nothing_left(model_dir, tmp_path):
    files = model_layer_files(model_dir)
    wrong = [LayerFile(f"{MODEL_PATH}/{f.name}", f.path, "0" * 64 if f.sha256 else None) for f in files]
    with pytest.raises(DataError, match=r"refusing .*forest\.[a-z_]+\.npy: its sha256 is [0-9a-f]{64}, but metadata.json"):
        build_layer(wrong, tmp_path / "layer.tar.gz")
    assert not (tmp_path / "layer.tar.gz").exists()


@pytest.mark.parametrize("path", ["opt/ml/model/x", "/", "/opt/../etc/x"])
def test_layer_paths_must_be_absolute_files_inside_the_image(tmp_path, path):
    (tmp_path / "x").write_text("x")
    with pytest.raises(DataError, match="must be an absolute file path"):
        build_layer([LayerFile(path, tmp_path / "x")], tmp_path / "layer.tar.gz")


def test_a_big_file_streams_through_in_bounded_memory(tmp_path):
    # 64 MiB through the layer builder; the peak traced allocation stays a small fraction of it
    import tracemalloc

    big = tmp_path / "big.bin"
    with big.open("wb") as fh:
        for i in range(64):
            fh.write(hashlib.sha256(str(i).encode()).digest() * 32768)  # 1 MiB, not all zeros
    expected = sha256(big)
    tracemalloc.start()
    layer = build_layer([LayerFile("/opt/ml/model/big.bin", big, expected)], tmp_path / "big.tar.gz")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert layer.uncompressed_size > 64 * 2**20
    assert peak < 8 * 2**20, f"peak {peak:,} bytes"
