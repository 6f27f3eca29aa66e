"""Where Greenlight keeps local state; the only module that reads GREENLIGHT_* variables."""

from __future__ import annotations

import os
from pathlib import Path

from greenlight.errors import ConfigurationError

__all__ = ["DEFAULT_MODEL_PACKAGE_GROUP", "DEFAULT_PIPELINE_NAME", "check_home", "home"]

DEFAULT_PIPELINE_NAME = "greenlight-training"
DEFAULT_MODEL_PACKAGE_GROUP = "greenlight-models"


def home() -> Path:
    """The Greenlight home directory: GREENLIGHT_HOME, default ./.greenlight (not created here)."""
    return Path(os.environ.get("GREENLIGHT_HOME") or ".greenlight").resolve()


def check_home(path: Path) -> Path:
    """path, if it can be the Greenlight home: a directory, or nothing yet (it is created on first write).

    A read-only or full home is not refused here: reads still work there, and a write fails naming the
    condition (greenlight.os_errors).

    Raises:
        ConfigurationError: path, or a folder above it, is a file.
    """
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is a file" if candidate == path else f"lies below the file {candidate}"
                raise ConfigurationError(f"GREENLIGHT_HOME {path} {what}, not a directory: point GREENLIGHT_HOME "
                                         "at a directory (it is created when missing)")
            break
    return path
