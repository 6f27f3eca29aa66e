"""Load one model version: import its `code/inference.py` and call `model_fn`, as SageMaker does.

Each model directory's code is imported once, under its own module name
(`greenlight_inference_<hash of directory and code>`), so two versions' code lives side by
side during a hot swap. Versions are not merged even when their code is identical: serving
code may keep module-level state (an earlier inference.py remembered the schema of the model it
loaded last), which must not leak from the incoming version into requests still on the old one.
Sibling modules that `inference.py` imports by bare name from `code/` are taken out of
`sys.modules` after the import, so the next version gets its own siblings too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from greenlight.errors import NotFoundError

__all__ = ["CODE_DIR", "ENTRY_MODULE", "LoadedModel", "forget", "import_inference_code", "import_isolated",
           "load_version"]

logger = logging.getLogger(__name__)

CODE_DIR = "code"
ENTRY_MODULE = "inference"
_HANDLERS = ("model_fn", "input_fn", "predict_fn", "output_fn")

_modules: dict[str, ModuleType] = {}
_import_lock = threading.Lock()


@dataclass(frozen=True)
class LoadedModel:
    """A model version ready to serve: its label, directory, inference code and loaded model."""

    version: str
    model_dir: Path
    code: ModuleType
    model: object
    load_seconds: float = field(default=0.0, compare=False)
    takes_max_bytes: bool = field(default=False, compare=False)  # input_fn has `max_bytes` (read once, at load)

    def parse(self, body: bytes, content_type: str, max_bytes: int | None = None):
        """input_fn(body, content_type), with the caller's body limit where the code takes one.

        The endpoint's --max-body-bytes must win over the serving code's own default (4 MiB);
        serving code older than the `max_bytes` parameter keeps its own limit.
        """
        if max_bytes is not None and self.takes_max_bytes:
            return self.code.input_fn(body, content_type, max_bytes=max_bytes)
        return self.code.input_fn(body, content_type)

    def finish(self, data, accept: str) -> tuple[bytes, str]:
        """predict_fn -> output_fn on already parsed input."""
        code = self.code
        out, out_type = code.output_fn(code.predict_fn(data, self.model), accept)
        return (out.encode("utf-8") if isinstance(out, str) else bytes(out)), out_type


def _takes_max_bytes(input_fn) -> bool:
    try:
        return "max_bytes" in inspect.signature(input_fn).parameters
    except (TypeError, ValueError):
        return False


def _code_digest(code_dir: Path) -> str:
    digest = hashlib.sha256(str(code_dir).encode() + b"\0")
    for path in sorted(code_dir.rglob("*.py")):
        digest.update(str(path.relative_to(code_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def import_isolated(code_dir: Path, entry: str, prefix: str) -> tuple[ModuleType, bool]:
    """Import `code_dir/<entry>.py` under `<prefix>_<hash of directory and content>`, once; (module, new).

    The entry imports its siblings by bare name: while it is imported, modules of those names already
    loaded (another version's, or src/'s) are set aside and put back afterwards, `code_dir` is on
    sys.path only during the import, and the siblings it loaded are taken out of sys.modules again (the
    module keeps its own references), so each version gets exactly its own code. The caller checks the
    module's interface (`new` tells it the module has not been checked yet) and may `forget` it.
    """
    code_dir = Path(code_dir).resolve()
    key = f"{prefix}_{_code_digest(code_dir)[:16]}"
    with _import_lock:
        module = _modules.get(key)
        if module is not None:
            return module, False
        path = code_dir / f"{entry}.py"
        siblings = {p.stem for p in code_dir.glob("*.py")} - {entry}
        set_aside = {n: sys.modules.pop(n) for n in siblings if n in sys.modules}
        spec = importlib.util.spec_from_file_location(key, path)
        if spec is None or spec.loader is None:  # only for a path without a .py suffix
            raise ImportError(f"cannot import {path}: not a Python source file")
        module = importlib.util.module_from_spec(spec)
        before = set(sys.modules)
        sys.modules[key] = module  # dataclasses and pickle look classes up by module name
        sys.path.insert(0, str(code_dir))
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(key, None)
            raise
        finally:
            sys.path.remove(str(code_dir))
            for added in set(sys.modules) - before - {key}:
                origin = getattr(sys.modules[added], "__file__", None) or ""
                if origin and Path(origin).resolve().is_relative_to(code_dir):
                    del sys.modules[added]  # the module object keeps its own reference
            sys.modules.update(set_aside)
        _modules[key] = module
        return module, True


def forget(module: ModuleType) -> None:
    """Drop a module import_isolated made (its interface check failed)."""
    with _import_lock:
        _modules.pop(module.__name__, None)
        sys.modules.pop(module.__name__, None)


def import_inference_code(code_dir: Path) -> ModuleType:
    """Import `code_dir/inference.py` under a name unique to the directory and its content (once).

    Raises:
        NotFoundError: there is no inference.py, or it lacks one of the four handlers.
    """
    entry = Path(code_dir).resolve() / f"{ENTRY_MODULE}.py"
    if not entry.is_file():
        raise NotFoundError(f"no {CODE_DIR}/{ENTRY_MODULE}.py in {entry.parent.parent}: not a SageMaker model "
                            "directory")
    module, new = import_isolated(entry.parent, ENTRY_MODULE, "greenlight_inference")
    if new:
        missing = [h for h in _HANDLERS if not callable(getattr(module, h, None))]
        if missing:
            forget(module)
            raise NotFoundError(f"{entry} does not define {', '.join(missing)}")
    return module


def load_version(version: str, model_dir: Path) -> LoadedModel:
    """Import the version's inference code and run its model_fn (a cold start)."""
    started = time.perf_counter()
    model_dir = Path(model_dir)
    code = import_inference_code(model_dir / CODE_DIR)
    model = code.model_fn(str(model_dir))
    seconds = time.perf_counter() - started
    logger.info("loaded model version %s from %s in %.3f s (code module %s)", version, model_dir, seconds,
                code.__name__)
    return LoadedModel(version, model_dir, code, model, seconds, _takes_max_bytes(code.input_fn))
