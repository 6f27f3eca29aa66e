"""The tag of the inference Lambda's base image: a digest of everything the base stage is built from.

    python3 deploy/image/base_tag.py [--platform linux/amd64] [--root .] [--inputs]

prints `base-<32 hex>` (or, with --inputs, each input with its sha256). The inputs are the Dockerfile
itself and every file its `base` stage COPYs from the build context (requirements.txt and the serving
modules), read from the Dockerfile, so a new COPY is covered without touching this file; the platform
is part of the digest too, so an arm64 base never takes an amd64 base's tag. CodeBuild runs this as a
script (stdlib only, no Greenlight installed) and tags the image it pushes with the result; Python
code imports `base_tag()` to find the base for the code it runs with.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from greenlight.errors import DataError as _ErrorBase
else:
    try:
        from greenlight.errors import DataError as _ErrorBase
    except ImportError:  # run as a script in CodeBuild: only the stdlib is there
        _ErrorBase = Exception

__all__ = ["BASE_STAGE", "DOCKERFILE", "BaseTagError", "base_digest", "base_inputs", "base_tag", "dockerfile_steps"]

DOCKERFILE = "deploy/lambda/Dockerfile"
BASE_STAGE = "base"
DIGEST_FORMAT = "greenlight-base/1"
_GLOB = re.compile(r"[*?\[$]")


class BaseTagError(_ErrorBase):
    """The Dockerfile's base stage cannot be digested (no such stage, a COPY we cannot resolve)."""


def dockerfile_steps(text: str) -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) for every instruction, continuation lines joined, comments dropped."""
    steps, stage = [], ""
    joined = re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#")))
    for line in joined.splitlines():
        if not line.strip():
            continue
        op, _, args = line.strip().partition(" ")
        op, args = op.upper(), " ".join(args.split())
        if op == "FROM":
            words = args.split()
            stage = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
        steps.append((stage, op, args))
    return steps


def base_inputs(root: Path | str = ".", dockerfile: str = DOCKERFILE) -> list[str]:
    """Repository-relative paths of the base stage's inputs (the Dockerfile and what it COPYs), sorted.

    Raises:
        BaseTagError: no `base` stage, a COPY with --from, a variable or a wildcard, or a missing file.
    """
    root = Path(root)
    steps = dockerfile_steps(_read(root / dockerfile).decode("utf-8"))
    if not any(stage == BASE_STAGE for stage, _, _ in steps):
        raise BaseTagError(f"{dockerfile} has no stage named {BASE_STAGE!r} (FROM ... AS {BASE_STAGE})")
    inputs = {dockerfile}
    for stage, op, args in steps:
        if stage != BASE_STAGE or op not in ("COPY", "ADD"):
            continue
        words = args.split()
        if any(w.startswith("--from") for w in words):
            raise BaseTagError(f"{dockerfile}: `{op} {args}` copies from another stage or image")
        for source in (w for w in words[:-1] if not w.startswith("--")):
            if _GLOB.search(source):
                raise BaseTagError(f"{dockerfile}: `{op} {args}`: {source!r} is not a literal path")
            path = root / source
            if path.is_dir():
                inputs |= {p.relative_to(root).as_posix() for p in path.rglob("*") if p.is_file()}
            elif path.is_file():
                inputs.add(Path(source).as_posix())
            else:
                raise BaseTagError(f"{dockerfile}: `{op} {args}`: {source} does not exist under {root}")
    return sorted(inputs)


def base_digest(root: Path | str = ".", platform: str = "linux/amd64", dockerfile: str = DOCKERFILE) -> str:
    """sha256 (hex) over the platform and each input's path and content digest."""
    root = Path(root)
    digest = hashlib.sha256(f"{DIGEST_FORMAT} platform={platform}\n".encode())
    for rel in base_inputs(root, dockerfile):
        digest.update(f"{rel}\0{hashlib.sha256(_read(root / rel)).hexdigest()}\n".encode())
    return digest.hexdigest()


def base_tag(root: Path | str = ".", platform: str = "linux/amd64", dockerfile: str = DOCKERFILE) -> str:
    """`base-<first 32 hex digits of base_digest>`: a valid registry tag naming this code's base image."""
    return f"base-{base_digest(root, platform, dockerfile)[:32]}"


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BaseTagError(f"cannot read {path}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the base image tag for the code under --root.")
    parser.add_argument("--root", default=".", help="repository root, the Docker build context (default: .)")
    parser.add_argument("--platform", default="linux/amd64", help="image platform (default: linux/amd64)")
    parser.add_argument("--inputs", action="store_true", help="list the inputs and their sha256 instead")
    args = parser.parse_args(argv)
    try:
        if args.inputs:
            for rel in base_inputs(args.root):
                print(hashlib.sha256(_read(Path(args.root) / rel)).hexdigest(), rel)
        else:
            print(base_tag(args.root, args.platform))
    except BaseTagError as exc:
        print(f"base_tag: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
