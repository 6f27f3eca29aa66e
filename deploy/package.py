"""The approval handler's Lambda package: a deterministic zip of our code and its few dependencies.

    build_handler_package(out_dir, python_version="3.12", platform="x86_64") -> HandlerPackage

Holds `deploy/`, the core of `greenlight/` (not the CLI, the cost model or the bundled data), the one
module of `src/` the handler path reads (serving_contract.py), and pydantic and aws-lambda-powertools
installed for the Lambda runtime's Python and architecture (`pip install --target --platform
--only-binary`). boto3 and botocore are not packed: the Lambda Python runtime provides them. Entries are
sorted with fixed timestamps and modes, so the same code gives the same bytes (and the same S3 key).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from greenlight.errors import ConfigurationError

__all__ = ["HANDLER", "HandlerPackage", "build_handler_package", "requirements"]

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
HANDLER = "deploy.handler.lambda_handler"
# (package directory, relative paths inside it that are left out)
OURS = (("deploy", ("lambda", "__pycache__")),
        ("greenlight", ("cli", "cost", "data", "__pycache__")))
SRC_FILES = ("__init__.py", "serving_contract.py")
THIRD_PARTY = ("pydantic", "aws-lambda-powertools")  # pinned to the versions installed here
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class HandlerPackage:
    path: Path
    bytes: int
    files: int
    sha256: str


def requirements() -> list[str]:
    """The third-party requirements, pinned to what this environment runs (and tests) with."""
    return [f"{name}=={metadata.version(name)}" for name in THIRD_PARTY]


def _our_files() -> list[tuple[str, Path]]:
    files = []
    for package, excluded in OURS:
        base = ROOT / package
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(base)
            if path.is_file() and not (set(rel.parts) & set(excluded)) and path.suffix != ".pyc":
                files.append((f"{package}/{rel.as_posix()}", path))
    files += [(f"src/{name}", ROOT / "src" / name) for name in SRC_FILES]
    return files


def _install_dependencies(target: Path, python_version: str, platform: str) -> None:
    if platform not in PLATFORMS:
        raise ConfigurationError(f"unknown Lambda architecture {platform!r} (expected one of: {', '.join(PLATFORMS)})")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target",
               str(target), "--only-binary=:all:", "--implementation", "cp", "--python-version", python_version,
               "--platform", PLATFORMS[platform], *requirements()]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-3:])
        raise ConfigurationError(f"cannot install the handler's dependencies for Python {python_version} "
                                 f"{platform}: {tail}")
    for junk in [*target.glob("*.dist-info"), *target.rglob("__pycache__"), target / "bin"]:
        shutil.rmtree(junk, ignore_errors=True)


def build_handler_package(out_dir: Path, python_version: str = "3.12", platform: str = "x86_64",
                          cache: Path | None = None) -> HandlerPackage:
    """Write greenlight-handler-<sha256 prefix>.zip into out_dir and describe it.

    `cache` keeps installed dependencies between builds (keyed by requirements, Python and platform).

    Raises:
        ConfigurationError: the dependencies cannot be installed for that Python and platform.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{requirements()}|{python_version}|{platform}".encode()).hexdigest()[:16]
    deps = Path(cache or out_dir / ".handler-deps") / key
    if not deps.is_dir():
        staging = deps.with_name(deps.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        log.info("installing %s for Python %s %s", ", ".join(requirements()), python_version, platform)
        _install_dependencies(staging, python_version, platform)
        staging.rename(deps)
    entries = _our_files() + [(p.relative_to(deps).as_posix(), p) for p in sorted(deps.rglob("*")) if p.is_file()]
    tmp = out_dir / ".handler.zip.partial"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, _EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    final = out_dir / f"greenlight-handler-{digest[:12]}.zip"
    tmp.replace(final)
    return HandlerPackage(final, final.stat().st_size, len(entries), digest)
