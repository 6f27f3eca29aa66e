"""The approval handler's package in a clean directory, as the Lambda runtime sees it: the unzipped
package (what `greenlight stack deploy` uploads, built for this interpreter's Python and platform) and,
beside it, only boto3 and its dependencies (what the runtime provides). A child interpreter started with
`python -I -S` (no site-packages, no PYTHONPATH, no user site) and those two folders first on sys.path
imports nothing else of this checkout or its virtualenv.
"""

from __future__ import annotations

import platform
import shutil
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from deploy.package import HandlerPackage, build_handler_package

__all__ = ["BOTO3", "CleanHandler", "clean_handler", "isolated_command"]

BOTO3 = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3")
ARCHITECTURES = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}


@dataclass(frozen=True)
class CleanHandler:
    package: HandlerPackage
    code: Path  # the unzipped package
    runtime: Path  # boto3 and its dependencies only


def _copy_distribution(name: str, target: Path) -> None:
    dist = metadata.distribution(name)
    for file in dist.files or []:
        if file.parts[0].endswith(".dist-info") or file.parts[0] == ".." or "__pycache__" in file.parts:
            continue
        source = Path(dist.locate_file(file))
        if source.is_file():
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / file)


def clean_handler(out: Path, cache: Path | None = None) -> CleanHandler:
    """Build the package for this interpreter, unzip it into out/code, copy boto3 & co. into out/runtime."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    package = build_handler_package(out / "zip", version, ARCHITECTURES[platform.machine()], cache=cache)
    code, runtime = out / "code", out / "runtime"
    for folder in (code, runtime):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    with zipfile.ZipFile(package.path) as archive:
        archive.extractall(code)
    for name in BOTO3:
        _copy_distribution(name, runtime)
    return CleanHandler(package, code, runtime)


def isolated_command(handler: CleanHandler | None, script: str, *args: str, runtime: Path | None = None) -> list[str]:
    """`python -I -S -c <prologue + script>`: sys.path is the package, then boto3's folder, then the stdlib."""
    folders = [str(handler.code), str(handler.runtime)] if handler else [str(runtime)]
    prologue = f"import sys; sys.path[:0] = {folders!r}\n"
    return [sys.executable, "-I", "-S", "-c", prologue + script, *args]
