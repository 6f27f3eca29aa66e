"""`python -m benchmarks image`: a model refresh by appending one layer, against pushing the whole image.

Against a real registry on loopback (Debian's docker-registry, as in the tests), for two models:
the default diabetes model (src/train.py's defaults on the diabetes training split) and a forest of
about 100 MB (default hyperparameters on a generated BIG_ROWS x 10 CSV, fixed seed). The real Lambda
base image cannot be pulled here, so a stand-in of realistic size is built from this machine's files
(see `stand_in_base`). Each round uses fresh repositories:

- **append** (what Greenlight does on approval): the base is already in the repository (CodeBuild
  pushed it; not timed); `append_model` reads the base manifest and config, builds the model layer
  (compression included in the time), uploads what the registry lacks and puts the manifest;
- **full push** (what `docker push` of a fresh image does): every layer, the config and the manifest
  into an empty repository; the layers are built beforehand and not timed (`docker build` made them).

Bytes are the request bodies the client sent (RegistryStats.bytes_sent). Medians of ROUNDS rounds;
ratios are append over full push in the same run. Also: the same model appended again, and the model
layer's build time and size at gzip levels 1 and 6. Writes the "image" section of BENCHMARKS.md.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, write_section
from benchmarks.serving_models import train_default_model
from deploy.image import LayerFile, RegistryClient, append_model, build_layer, model_layer_files, push_image
from deploy.image.base_tag import base_inputs
from deploy.image.layer import COMPRESS_LEVEL, directory_files
from deploy.image.model_files import MODEL_PATH

COMMAND = "python -m benchmarks image"
ROUNDS = 3
BIG_ROWS = 28_000
SRC = ROOT / "src"


def say(text: str) -> None:
    print(f"[image] {text}", flush=True)


def stand_in_base(work: Path) -> tuple[list, list, dict, list[dict]]:
    """(layers, their files, config, description): this Python's stdlib, numpy from site-packages, the code."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    std = [f for f in directory_files(stdlib, "/var/lang/lib/python3") if not
           f.image_path.startswith(("/var/lang/lib/python3/site-packages/", "/var/lang/lib/python3/test/"))]
    site = Path(np.__file__).resolve().parents[1]
    numpy_files = [f for d in sorted(site.glob("numpy*")) if d.is_dir()
                   for f in directory_files(d, f"/var/task/{d.name}")]
    code = [LayerFile(f"/var/task/{Path(rel).name}", ROOT / rel) for rel in base_inputs(ROOT) if rel.startswith("src/")]
    parts = [("stdlib", std, f"{stdlib} without site-packages/ and test/ (at /var/lang/lib/python3)"),
             ("numpy", numpy_files, f"numpy {np.__version__}: " + ", ".join(sorted(
                 d.name for d in site.glob("numpy*") if d.is_dir())) + " from site-packages (at /var/task)"),
             ("code", code, "the serving modules the Dockerfile's base stage copies (at /var/task)")]
    layers, description = [], []
    for name, files, what in parts:
        layer = build_layer(files, work / f"{name}.tar.gz")
        layers.append(layer)
        description.append({"layer": name, "what": what, "files": len(files), "bytes": layer.uncompressed_size,
                            "gzip_bytes": layer.size})
    config = {"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
              "config": {"Env": ["LAMBDA_TASK_ROOT=/var/task", "GREENLIGHT_MODEL_DIR=/opt/ml/model"],
                         "Cmd": ["lambda_function.lambda_handler"]},
              "history": [{"created_by": p[0]} for p in parts]}
    return layers, [files for _, files, _ in parts], config, description


def big_model(work: Path) -> Path:
    """Default hyperparameters (100 fully grown trees) on BIG_ROWS x 10 generated rows, seed 0."""
    sys.path.insert(0, str(SRC))
    try:
        import train
    finally:
        sys.path.remove(str(SRC))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(BIG_ROWS, 10))
    y = 3 * X[:, 0] + np.sin(2 * X[:, 1]) + X[:, 2] * X[:, 3] + rng.normal(scale=0.5, size=BIG_ROWS)
    (work / "big-data").mkdir()
    with (work / "big-data" / "train.csv").open("w") as fh:
        fh.write("target," + ",".join(f"f{i}" for i in range(10)) + "\n")
        np.savetxt(fh, np.column_stack([y, X]), delimiter=",", fmt="%.6g")
    if train.main(["--train", str(work / "big-data"), "--model-dir", str(work / "big-model")]) != 0:
        raise RuntimeError("training the big model failed")
    return work / "big-model"


def model_layer(model_dir: Path, out: Path, level: int = COMPRESS_LEVEL):
    files = [LayerFile(f"{MODEL_PATH}/{f.name}", f.path, f.sha256) for f in model_layer_files(model_dir)]
    return build_layer(files, out, compresslevel=level)


def measure(url: str, name: str, model_dir: Path, base: tuple[list, list, dict], work: Path) -> dict:
    layers, base_files, config = base
    model_files = [LayerFile(f"{MODEL_PATH}/{f.name}", f.path, f.sha256) for f in model_layer_files(model_dir)]
    rows = []
    for i in range(ROUNDS):
        setup = RegistryClient(url)
        push_image(setup, f"append-{name}-{i}", "base", layers, config)
        client = RegistryClient(url)
        started = time.perf_counter()
        result = append_model(client, f"append-{name}-{i}", "base", model_dir, "model-v1", workdir=work)
        append_s = time.perf_counter() - started
        again = RegistryClient(url)
        started = time.perf_counter()
        second = append_model(again, f"append-{name}-{i}", "base", model_dir, "model-v1", workdir=work)
        again_s = time.perf_counter() - started
        # The whole image as `docker push` sends it to an empty repository: every layer compressed, then uploaded.
        full = RegistryClient(url)
        started = time.perf_counter()
        built = [build_layer(files, work / f"full-{name}-{n}.tar.gz")
                 for n, files in enumerate([*base_files, model_files])]
        compress_s = time.perf_counter() - started
        full_digest = push_image(full, f"full-{name}-{i}", "model-v1", built,
                                 {**config, "history": [*config["history"], {"created_by": "model"}]})
        full_s = time.perf_counter() - started
        assert second.digest == result.digest and second.bytes_sent == 0 and full_digest
        assert [b.digest for b in built[:-1]] == [layer.digest for layer in layers]
        rows.append({"append_s": append_s, "append_bytes": client.stats.bytes_sent, "again_s": again_s,
                     "again_bytes": again.stats.bytes_sent, "full_s": full_s, "full_upload_s": full_s - compress_s,
                     "full_bytes": full.stats.bytes_sent})
        say(f"{name} round {i + 1}: append {append_s:.2f} s / {client.stats.bytes_sent:,} B; again {again_s:.2f} s; "
            f"full push {full_s:.2f} s (upload {full_s - compress_s:.2f} s) / {full.stats.bytes_sent:,} B")
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    forest = json.loads((model_dir / "metadata.json").read_text())
    levels = {}
    for level in (1, 6):
        started = time.perf_counter()
        layer = build_layer(model_files, work / f"{name}-l{level}.tar.gz", compresslevel=level)
        levels[level] = {"seconds": time.perf_counter() - started, "gzip_bytes": layer.size}
    return {**med, "time_ratio": med["append_s"] / med["full_s"],
            "bytes_ratio": med["append_bytes"] / med["full_bytes"],
            "model_files_bytes": sum(f.source.stat().st_size for f in model_files),
            "model_layer_gzip_bytes": levels[COMPRESS_LEVEL]["gzip_bytes"], "trees": forest["forest"]["trees"],
            "nodes": forest["forest"]["nodes"], "levels": levels, "rounds": rows}


NOTE = """Median of {rounds} rounds, fresh repositories each round, against docker-registry on 127.0.0.1
(filesystem storage in /tmp) from one process. *Append*: the base already in the repository; reading its
manifest and config, reading and hashing the model files, building the model layer (gzip), HEAD checks,
uploading the layer and the config, putting the manifest. *Full push*: what `docker push` of the image does
to an empty repository: every layer compressed (gzip level {level}, as ours), then every layer, the config and
the manifest uploaded; *upload alone* leaves the compression out. *Sent*: request bodies. *Same model
again*: the second append of an unchanged model (the files read and hashed once, uncompressed; a HEAD and a
GET find that the tag already names this image; nothing compressed or written). Loopback has no network
cost, so the time ratio understates what a refresh saves over a real link; the bytes ratio carries over."""


def render(results: dict, base: list[dict]) -> str:
    mb = 1e6
    lines = ["## Model refresh: append one layer vs push the whole image", "",
             "| Model | Model files (layer, gzip) | Refresh by append: sent / wall "
             "| Full image push: sent / wall (upload alone) | Append / full: bytes, time "
             "| Same model again: sent / wall |", "|---|---|---|---|---|---|"]
    for label, r in results.items():
        lines.append(f"| {label} ({r['trees']} trees, {r['nodes']:,} nodes) "
                     f"| {r['model_files_bytes'] / mb:.1f} MB ({r['model_layer_gzip_bytes'] / mb:.1f} MB) "
                     f"| {r['append_bytes'] / mb:.2f} MB / {r['append_s']:.2f} s "
                     f"| {r['full_bytes'] / mb:.1f} MB / {r['full_s']:.2f} s ({r['full_upload_s']:.2f} s) "
                     f"| {r['bytes_ratio']:.3f}, {r['time_ratio']:.3f} "
                     f"| {r['again_bytes']} B / {r['again_s'] * 1000:.0f} ms |")
    lines += ["", "Stand-in base image (the real `public.ecr.aws/lambda/python:3.12` cannot be pulled here):", "",
              "| Layer | What | Files | Size (gzip) |", "|---|---|---|---|"]
    lines += [f"| {b['layer']} | {b['what']} | {b['files']:,} | {b['bytes'] / mb:.1f} MB "
              f"({b['gzip_bytes'] / mb:.1f} MB) |" for b in base]
    lines += ["", f"Model layer build (part of the append's time, at level {COMPRESS_LEVEL}, the default):", "",
              "| Model | gzip level 1: time, size | gzip level 6: time, size |", "|---|---|---|"]
    for label, r in results.items():
        one, six = r["levels"][1], r["levels"][6]
        lines.append(f"| {label} | {one['seconds']:.2f} s, {one['gzip_bytes'] / mb:.1f} MB | "
                     f"{six['seconds']:.2f} s, {six['gzip_bytes'] / mb:.1f} MB |")
    return "\n".join([*lines, "", " ".join(NOTE.format(rounds=ROUNDS, level=COMPRESS_LEVEL).split())])


def main() -> None:
    from tests.support.registry import TOOLS, running_registry

    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"benchmark image: {', '.join(missing)} not installed; run `make tools`")
    work = Path(tempfile.mkdtemp(prefix="greenlight-bench-image-"))
    try:
        say("building the stand-in base image")
        layers, base_files, config, base = stand_in_base(work)
        say("training the default model, then the ~100 MB forest (about a minute)")
        (work / "default").mkdir()
        default_dir = train_default_model(work / "default")[0]
        big_dir = big_model(work)
        with running_registry(work / "registry") as registry:
            stand_in = (layers, base_files, config)
            results = {"default diabetes model": measure(registry.url, "default", default_dir, stand_in, work),
                       f"generated {BIG_ROWS:,} x 10, default hyperparameters": measure(
                           registry.url, "big", big_dir, stand_in, work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {"models": {k: {x: y for x, y in v.items() if x != "rounds"} | {"rounds": v["rounds"]}
                          for k, v in results.items()}, "base": base}
    write_section("image", render(results, base), figures, COMMAND)
    say("wrote the image section of BENCHMARKS.md")
