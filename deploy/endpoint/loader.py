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

__all__ = ["CODE_DIR", "ENTRY_MODULE", "LoadedModel", "import_inference_code", "load_version"]

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

    def parse(self, body: bytes, content_type: str, max_bytes: int | None = None):
        """input_fn(body, content_type), with the caller's body limit where the code takes one.

        The endpoint's --max-body-bytes must win over the serving code's own default (4 MiB);
        serving code older than the `max_bytes` parameter keeps its own limit.
        """
        if max_bytes is not None and _takes_max_bytes(self.code.input_fn):
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


def import_inference_code(code_dir: Path) -> ModuleType:
    """Import `code_dir/inference.py` under a name unique to the directory and its content (once).

    Raises:
        NotFoundError: there is no inference.py, or it lacks one of the four handlers.
    """
    code_dir = Path(code_dir).resolve()
    entry = code_dir / f"{ENTRY_MODULE}.py"
    if not entry.is_file():
        raise NotFoundError(f"no {CODE_DIR}/{ENTRY_MODULE}.py in {code_dir.parent}: not a SageMaker model directory")
    key = _code_digest(code_dir)
    with _import_lock:
        module = _modules.get(key)
        if module is not None:
            return module
        name = f"greenlight_inference_{key[:16]}"
        spec = importlib.util.spec_from_file_location(name, entry)
        module = importlib.util.module_from_spec(spec)
        before = set(sys.modules)
        sys.modules[name] = module  # dataclasses and pickle look classes up by module name
        sys.path.insert(0, str(code_dir))
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        finally:
            sys.path.remove(str(code_dir))
            for added in set(sys.modules) - before - {name}:
                origin = getattr(sys.modules[added], "__file__", None) or ""
                if origin and Path(origin).resolve().is_relative_to(code_dir):
                    del sys.modules[added]  # the module object keeps its own reference
        missing = [h for h in _HANDLERS if not callable(getattr(module, h, None))]
        if missing:
            sys.modules.pop(name, None)
            raise NotFoundError(f"{entry} does not define {', '.join(missing)}")
        _modules[key] = module
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
    return LoadedModel(version, model_dir, code, model, seconds)
