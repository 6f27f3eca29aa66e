"""The real inference handler (`lambda_function.py`) of one model version, loaded as Lambda would run it.

    loaded = load_function("3", model_dir)          # model_dir/code/lambda_function.py + model_dir
    response = loaded.invoke(event)                 # the handler's answer to a payload-2.0 event

The handler comes from the model version's own `code/` directory (train.py ships it there with its
siblings `inference`, `payload`, `serving_contract`, `compact_forest`), imported once per directory
and content under its own module name (`greenlight_lambda_<hash>`), the way deploy.endpoint.loader
imports inference.py: two versions' handlers live side by side during an alias move, and neither
sees the other's module-level state. The handler imports its siblings by bare name; while it is
imported, any module of those names already loaded (another version's, or src/'s) is set aside and
put back afterwards, so each version gets exactly its own code.

The model is loaded through that version's `inference.model_fn`, and a model that fails its checks
is kept as a load error, as the handler's own `load_model` does in Lambda: every request then gets
the handler's 503 `model_unavailable` with the reason.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from deploy.endpoint.loader import forget, import_isolated
from greenlight.errors import NotFoundError

__all__ = ["CODE_DIR", "HANDLER_MODULE", "LoadedFunction", "import_handler", "load_function"]

log = logging.getLogger(__name__)

CODE_DIR = "code"
HANDLER_MODULE = "lambda_function"


@dataclass(frozen=True)
class LoadedFunction:
    """One function version ready to answer events: its handler module and its model (or why it has none)."""

    version: str  # the function version, as text (the key a ModelSlot serves it under)
    model_dir: Path
    module: ModuleType
    model: Any = None
    load_error: str | None = None
    load_seconds: float = field(default=0.0, compare=False)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """The handler's answer to one payload-2.0 event (it never raises; faults are its 500)."""
        module = self.module
        limit = module.LAMBDA_MAX_PAYLOAD_BYTES
        max_bytes = module.inference.max_payload_bytes(limit) if hasattr(module.inference, "max_payload_bytes") \
            else limit
        return module.handle(event, self.model, max_bytes=max_bytes, load_error=self.load_error)


def import_handler(code_dir: Path) -> ModuleType:
    """Import `code_dir/lambda_function.py` with its own siblings, under a name unique to directory and content
    (deploy.endpoint.loader.import_isolated, which imports inference.py the same way).

    Raises:
        NotFoundError: no lambda_function.py there, or it lacks `handle` or its `inference` module.
    """
    entry = Path(code_dir).resolve() / f"{HANDLER_MODULE}.py"
    if not entry.is_file():
        raise NotFoundError(f"no {CODE_DIR}/{HANDLER_MODULE}.py in {entry.parent.parent}: this model version has no "
                            "Lambda handler (trained by an older Greenlight?)")
    module, new = import_isolated(entry.parent, HANDLER_MODULE, "greenlight_lambda")
    inference = getattr(module, "inference", None)
    if new and (not callable(getattr(module, "handle", None)) or not callable(getattr(inference, "model_fn", None))):
        forget(module)
        raise NotFoundError(f"{entry} does not define handle() over an inference module with model_fn")
    return module


def load_function(version: str, model_dir: Path, code_dir: Path | None = None) -> LoadedFunction:
    """Import the version's handler and load its model through its inference.model_fn (a cold start).

    The handler comes from `code_dir`, by default the model directory's own code/ (an image unpacked
    by a test keeps it at /var/task instead).

    Raises:
        NotFoundError: there is no Lambda handler there.
    """
    started = time.perf_counter()
    model_dir = Path(model_dir)
    module = import_handler(model_dir / CODE_DIR if code_dir is None else Path(code_dir))
    inference = module.inference
    refused = tuple(t for t in (getattr(inference, "ModelIntegrityError", None), OSError) if t is not None)
    try:
        model, error = inference.model_fn(str(model_dir)), None
    except refused as exc:  # what the handler's own load_model catches: every request answers 503 with it
        model, error = None, f"{type(exc).__name__}: {exc}"
        log.error("function version %s: cannot load the model from %s: %s", version, model_dir, error)
    seconds = time.perf_counter() - started
    log.info("loaded function version %s from %s in %.3f s (handler module %s)", version, model_dir, seconds,
             module.__name__)
    return LoadedFunction(version, model_dir, module, model, error, seconds)
