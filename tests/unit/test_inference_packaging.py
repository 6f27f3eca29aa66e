"""What ships with a model and into the Lambda image: every serving module, numpy only, a resolvable pin."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


from greenlight.data import default_dataset_csv

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
LAMBDA = ROOT / "deploy" / "lambda"
SIBLINGS = {p.stem for p in SRC.glob("*.py")} - {"__init__"}
SERVING_ENTRIES = ("inference", "sagemaker_entry", "lambda_function")


def serving_code() -> tuple[str, ...]:
    tree = ast.parse((SRC / "train.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "SERVING_CODE" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("train.py has no SERVING_CODE")


def top_level_imports(module: str) -> set[str]:
    """Modules imported at module level (imports inside functions are fallbacks, e.g. joblib)."""
    names = set()
    for node in ast.parse((SRC / f"{module}.py").read_text()).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names - {"__future__"}


def closure(entries) -> set[str]:
    seen, todo = set(), list(entries)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += sorted(top_level_imports(module) & SIBLINGS)
    return seen


def test_serving_code_holds_every_module_the_serving_path_imports():
    shipped = {name.removesuffix(".py") for name in serving_code()}
    assert closure(SERVING_ENTRIES) <= shipped


def test_serving_modules_import_numpy_and_stdlib_only():
    for module in closure(SERVING_ENTRIES):
        outside = top_level_imports(module) - SIBLINGS - set(sys.stdlib_module_names) - {"numpy"}
        assert not outside, f"{module}.py imports {outside} at module level"


def dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", (LAMBDA / "Dockerfile").read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile_base_code_and_model_layer_last():
    steps = dockerfile()
    assert steps[0] == ("FROM", "public.ecr.aws/lambda/python:3.12 AS base")
    # The base stage ends with the handler; the model stage adds one layer: the staged model directory.
    model_stage = steps.index(("FROM", "base AS model"))
    assert steps[model_stage - 1] == ("CMD", '["lambda_function.lambda_handler"]')
    assert steps[model_stage + 1:] == [("ARG", "MODEL_DIR=model"), ("COPY", "${MODEL_DIR}/ /opt/ml/model/")]
    steps = steps[:model_stage]
    copies = [args for op, args in steps if op == "COPY"]
    code = {Path(p).stem for args in copies for p in args.split()[:-1] if p.startswith("src/")}
    assert code == closure(["lambda_function"])
    assert code <= {name.removesuffix(".py") for name in serving_code()}
    runs = [args for op, args in steps if op == "RUN"]
    installs = [r for r in runs if "pip install" in r]
    assert len(installs) == 1 and "requirements.txt" in installs[0] and "--only-binary=:all:" in installs[0]
    compiled = {Path(p).stem for r in runs if "compileall" in r for p in r.split() if p.endswith(".py")}
    assert compiled == code  # the task root is read-only at run time: no __pycache__ written there


def requirements() -> list[str]:
    return [ln.strip() for ln in (LAMBDA / "requirements.txt").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]


def test_requirements_are_numpy_pinned():
    reqs = requirements()
    assert len(reqs) == 1 and re.fullmatch(r"numpy==\d+\.\d+\.\d+", reqs[0])


def test_requirements_resolve_on_pypi_for_the_lambda_runtime(tmp_path):
    # GIVEN the Lambda base image's interpreter (CPython 3.12, x86_64, glibc 2.34)
    # WHEN pip resolves the image's requirements against the index, wheels only, for that platform
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed",
           "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp",
           "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64",
           "--target", str(tmp_path / "target"), "--report", str(report), "-r", str(LAMBDA / "requirements.txt")]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    # THEN exactly numpy, at the pinned version, from a cp312 manylinux x86_64 wheel
    installs = json.loads(report.read_text())["install"]
    assert [(i["metadata"]["name"], i["metadata"]["version"]) for i in installs] == \
        [("numpy", requirements()[0].split("==")[1])]
    wheel = installs[0]["download_info"]["url"].rsplit("/", 1)[-1]
    assert re.search(r"-cp312-cp312-manylinux[^ ]*x86_64\.whl$", wheel), wheel


def test_image_layout_serves_a_function_url_event(tmp_path):
    # GIVEN the image's file layout: the COPYed modules in a task root, the model layer in its own directory
    before = {n: sys.modules.get(n) for n in ("train", "compact_forest")}
    sys.path.insert(0, str(SRC))
    try:
        import train
        data = tmp_path / "train.csv"
        lines = default_dataset_csv().decode().splitlines()
        data.write_text("\n".join(",".join([ln.split(",")[-1], *ln.split(",")[:-1]]) for ln in lines))
        assert train.main(["--train", str(data), "--model-dir", str(tmp_path / "trained"), "--n_estimators", "10",
                           "--n_jobs", "1"]) == 0
    finally:
        sys.path.remove(str(SRC))
        for name, module in before.items():
            if module is None:
                sys.modules.pop(name, None)
    task, model = tmp_path / "var-task", tmp_path / "opt-ml-model"
    task.mkdir()
    model.mkdir()
    steps = dockerfile()
    copies = [args.split() for op, args in steps if op == "COPY"]
    for src in (p for args in copies for p in args[:-1] if p.startswith("src/")):
        shutil.copy(ROOT / src, task)
    from deploy.image.model_files import stage_model_files

    stage_model_files(tmp_path / "trained", model)  # what `docker build` of the model stage copies
    # the layer holds metadata.json, the forest's manifest and every array it lists; not the pickle
    manifest = json.loads((tmp_path / "trained" / "forest.json").read_text())
    assert sorted(p.name for p in model.iterdir()) == sorted(
        ["metadata.json", "forest.json", *(a["file"] for a in manifest["arrays"].values())])
    event = (ROOT / "tests" / "events" / "lambda_url_predict_json.json").read_text()
    script = f"""
import json, sys
import lambda_function
r = lambda_function.lambda_handler(json.loads({event!r}), None)
print(json.dumps([r["statusCode"], json.loads(r["body"]), sorted(k for k in ("sklearn", "pandas", "joblib") if k in sys.modules)]))
"""
    env = {**os.environ, "LAMBDA_TASK_ROOT": str(task), "GREENLIGHT_MODEL_DIR": str(model),
           "AWS_LAMBDA_FUNCTION_NAME": "greenlight-test"}
    # WHEN a fresh interpreter runs the handler from the task root (as the Lambda runtime does)
    run = subprocess.run([sys.executable, "-c", script], cwd=task, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    status, body, heavy = json.loads(run.stdout.strip().splitlines()[-1])
    # THEN it answers 200 with one prediction, without scikit-learn, pandas or joblib
    assert status == 200 and len(body["predictions"]) == 1 and heavy == []
