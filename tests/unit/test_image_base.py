"""The Lambda base image: its CodeBuild buildspec, its Dockerfile stages, and the tag digest of its inputs."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.image.base_tag import BaseTagError, base_digest, base_inputs, base_tag, dockerfile_steps
from deploy.image.model_files import MODEL_PATH
from deploy.image.refs import TAG

ROOT = Path(__file__).resolve().parents[2]
LAMBDA = ROOT / "deploy" / "lambda"


def buildspec() -> dict:
    return yaml.safe_load((LAMBDA / "buildspec.yml").read_text())


def commands(spec: dict) -> list[str]:
    return [c for phase in spec["phases"].values() for c in phase.get("commands", [])]


def serving_code() -> tuple[str, ...]:
    for node in ast.parse((ROOT / "src" / "train.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SERVING_CODE" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("train.py has no SERVING_CODE")


def test_buildspec_builds_the_base_stage_tags_it_by_the_digest_script_and_pushes_to_ecr():
    spec = buildspec()
    assert str(spec["version"]) == "0.2"
    flat = "\n".join(commands(spec))
    # The tag comes from our digest script, run with the platform the image is built for.
    assert 'BASE_TAG=$(python3 deploy/image/base_tag.py --platform "$GREENLIGHT_BASE_PLATFORM")' in flat
    assert spec["env"]["variables"]["GREENLIGHT_BASE_PLATFORM"] == "linux/amd64"
    # ECR login with the CLI's password, repository from GREENLIGHT_ECR_REPOSITORY.
    assert "aws ecr get-login-password" in flat and "docker login --username AWS --password-stdin" in flat
    assert '--repository-names "$GREENLIGHT_ECR_REPOSITORY"' in flat
    build = next(c for c in commands(spec) if "docker build" in c)
    assert "--file deploy/lambda/Dockerfile" in build and "--target base" in build
    assert '--tag "$REPOSITORY_URI:$BASE_TAG"' in build and 'docker push "$REPOSITORY_URI:$BASE_TAG"' in build
    assert "--provenance=false" in build  # an attestation would make the push an image index, refused by Lambda
    # An unchanged base is found in ECR and not rebuilt.
    assert 'describe-images' in build and 'imageTag="$BASE_TAG"' in build
    order = [flat.index(s) for s in ("base_tag.py", "get-login-password", "docker build", "docker push")]
    assert order == sorted(order)


def test_buildspec_commands_are_valid_shell():
    for command in commands(buildspec()):
        run = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
        assert run.returncode == 0, f"{command!r}: {run.stderr}"


def test_dockerfile_has_a_base_stage_without_a_model_and_a_model_stage():
    steps = dockerfile_steps((LAMBDA / "Dockerfile").read_text())
    stages = [args for _, op, args in steps if op == "FROM"]
    assert stages == ["public.ecr.aws/lambda/python:3.12 AS base", "base AS model"]
    base = [(op, args) for stage, op, args in steps if stage == "base"]
    assert not any("MODEL_DIR" in args or MODEL_PATH in args for op, args in base if op in ("COPY", "ARG"))
    assert ("CMD", '["lambda_function.lambda_handler"]') in base
    env = next(args for op, args in base if op == "ENV")
    assert f"GREENLIGHT_MODEL_DIR={MODEL_PATH}" in env.split()  # where the appended layer puts the model
    model = [(op, args) for stage, op, args in steps if stage == "model" and op != "FROM"]
    assert model == [("ARG", "MODEL_DIR=model"), ("COPY", f"${{MODEL_DIR}}/ {MODEL_PATH}/")]


def test_base_copies_the_serving_modules_and_the_handler():
    # GIVEN the modules src/train.py ships with every model (SERVING_CODE)
    shipped = set(serving_code())
    # WHEN the base stage's COPY sources are read
    copied = {Path(p).name for p in base_inputs(ROOT) if p.startswith("src/")}
    # THEN it copies the handler and every serving module the Lambda imports; sagemaker_entry.py is
    # SageMaker's entry point (the scikit-learn container's), which the Lambda never imports.
    assert "lambda_function.py" in copied
    assert copied == shipped - {"sagemaker_entry.py"}
    assert base_inputs(ROOT) == sorted({"deploy/lambda/Dockerfile", "deploy/lambda/requirements.txt",
                                         *(f"src/{name}" for name in copied)})


def test_base_tag_is_a_valid_registry_tag_and_the_script_prints_it_with_the_stdlib_only():
    tag = base_tag(ROOT)
    assert TAG.fullmatch(tag) and tag.startswith("base-") and len(tag) == 37
    # -I: isolated mode, no site-packages and no repository on sys.path (what CodeBuild's python3 has)
    run = subprocess.run([sys.executable, "-I", str(ROOT / "deploy/image/base_tag.py"), "--root", str(ROOT)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == tag


@pytest.fixture
def tree(tmp_path) -> Path:
    """A copy of the base image's inputs (and one file that is not an input)."""
    for rel in base_inputs(ROOT):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    (tmp_path / "src" / "train.py").write_text("# not in the image\n")
    return tmp_path


def test_digest_changes_when_any_input_changes_and_only_then(tree):
    before = base_digest(tree)
    assert before == base_digest(ROOT)  # only the inputs count, not where they are
    # Files that are not inputs do not change it...
    (tree / "src" / "train.py").write_text("# changed\n")
    (tree / "README.md").write_text("new\n")
    assert base_digest(tree) == before
    # ...each input does, one at a time (and restoring it restores the digest).
    for rel in base_inputs(tree):
        original = (tree / rel).read_bytes()
        (tree / rel).write_bytes(original + b"\n# changed\n")
        assert base_digest(tree) != before, rel
        (tree / rel).write_bytes(original)
        assert base_digest(tree) == before, rel
    # ...and so does the platform.
    assert base_digest(tree, platform="linux/arm64") != before


def test_a_new_copy_in_the_base_stage_becomes_an_input(tree):
    dockerfile = tree / "deploy/lambda/Dockerfile"
    (tree / "src" / "extra.py").write_text("X = 1\n")
    text = dockerfile.read_text().replace("CMD [", "COPY src/extra.py /var/task/\nCMD [", 1)
    dockerfile.write_text(text)
    assert "src/extra.py" in base_inputs(tree)


@pytest.mark.parametrize("copy, reason", [
    ("COPY src/*.py /var/task/", "not a literal path"),
    ("COPY --from=builder /x /y", "copies from another stage"),
    ("COPY src/missing.py /var/task/", "does not exist"),
])
def test_copies_that_cannot_be_digested_are_refused(tree, copy, reason):
    dockerfile = tree / "deploy/lambda/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("CMD [", f"{copy}\nCMD [", 1))
    with pytest.raises(BaseTagError, match=reason):
        base_tag(tree)


def test_a_dockerfile_without_a_base_stage_is_refused(tree):
    dockerfile = tree / "deploy/lambda/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace(" AS base", ""))
    with pytest.raises(BaseTagError, match="no stage named 'base'"):
        base_tag(tree)
