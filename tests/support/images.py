"""Images for the registry tests: a small base built from local files, trained models, reading back.

The base stands in for the Lambda base image: a "runtime" layer of two files and a layer with the
real serving modules at /var/task (the files the Dockerfile's base stage copies), with the Lambda
image's environment; no network pull.
"""

from __future__ import annotations

import json
from pathlib import Path

from deploy.image import LayerFile, RegistryClient, build_layer, push_image
from deploy.image.base_tag import base_inputs
from deploy.image.manifest import ACCEPT, OCI_INDEX, OCI_MANIFEST, canonical_json
from greenlight.data import default_dataset_csv
from tests.conftest import imported_src_modules
from tests.unit.test_inference import target_first, train_model

__all__ = ["BASE", "REPO", "ROOT", "base_config", "base_layers", "client", "pull", "push_base", "push_index",
           "trained_models"]

ROOT = Path(__file__).resolve().parents[2]
REPO = "greenlight-inference"
BASE = "base-test"


def client(url: str, **options) -> RegistryClient:
    return RegistryClient(url, timeout=10, sleep=lambda _s: None, **options)


def trained_models(tmp: Path) -> dict[str, Path]:
    """Two small diabetes forests (10 and 4 trees) trained by src/train.py: models "a" and "b"."""
    csv = target_first(default_dataset_csv())
    with imported_src_modules(("train",)) as src:
        return {"a": train_model(src.train, tmp, csv, "a", trees=10), "b": train_model(src.train, tmp, csv, "b", trees=4)}


def base_layers(tmp: Path) -> list:
    """A stand-in runtime layer and the serving-code layer (the files the Dockerfile's base stage copies)."""
    runtime = tmp / "runtime"
    runtime.mkdir(exist_ok=True)
    (runtime / "bootstrap").write_text("#!/bin/sh\nexec python3 -m awslambdaric \"$@\"\n")
    (runtime / "bootstrap").chmod(0o755)
    (runtime / "os-release").write_text("NAME=stand-in\n")
    files = [LayerFile("/var/runtime/bootstrap", runtime / "bootstrap", executable=True),
             LayerFile("/etc/os-release", runtime / "os-release")]
    code = [LayerFile(f"/var/task/{Path(rel).name}", ROOT / rel) for rel in base_inputs(ROOT) if rel.startswith("src/")]
    return [build_layer(files, tmp / "runtime.tar.gz"), build_layer(code, tmp / "code.tar.gz")]


def base_config(arch: str = "amd64") -> dict:
    return {"architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",
            "config": {"Env": ["LAMBDA_TASK_ROOT=/var/task", "GREENLIGHT_MODEL_DIR=/opt/ml/model"],
                       "Cmd": ["lambda_function.lambda_handler"], "WorkingDir": "/var/task"},
            "history": [{"created_by": "stand-in runtime"}, {"created_by": "COPY src/... /var/task/"}]}


def push_base(c: RegistryClient, tmp: Path, repo: str = REPO, tag: str = BASE, **kw):
    layers = base_layers(tmp)
    return push_image(c, repo, tag, layers, base_config(kw.pop("arch", "amd64")), **kw), layers


def push_index(c: RegistryClient, tmp: Path, repo: str, tag: str = BASE) -> tuple[str, str]:
    """An OCI image index at `repo:tag` of an amd64 and an arm64 base (each also tagged by its arch); their
    digests."""
    amd64, _ = push_base(c, tmp, repo=repo, tag="amd64", media_type=OCI_MANIFEST)
    arm64, _ = push_base(c, tmp, repo=repo, tag="arm64", media_type=OCI_MANIFEST, arch="arm64")
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": len(c.manifest(repo, d, ACCEPT)[1]),
         "platform": {"os": "linux", "architecture": arch}} for d, arch in ((amd64, "amd64"), (arm64, "arm64"))]}
    c.put_manifest(repo, tag, OCI_INDEX, canonical_json(index))
    return amd64, arm64


def pull(c: RegistryClient, repo: str, ref: str, dest: Path) -> tuple[str, dict, dict, list[Path]]:
    """(media type, manifest, config, layer files) read back with our client, each digest checked."""
    media_type, body, _ = c.manifest(repo, ref, ACCEPT)
    manifest = json.loads(body)
    config = json.loads(c.blob(repo, manifest["config"]["digest"]))
    dest.mkdir(parents=True, exist_ok=True)
    blobs = []
    for layer in manifest["layers"]:
        path = dest / layer["digest"].replace(":", "-")
        assert c.download_blob(repo, layer["digest"], path) == layer["size"]
        blobs.append(path)
    return media_type, manifest, config, blobs
