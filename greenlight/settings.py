"""Where Greenlight keeps local state; the only module that reads GREENLIGHT_* variables."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_MODEL_PACKAGE_GROUP", "DEFAULT_PIPELINE_NAME", "home"]

DEFAULT_PIPELINE_NAME = "greenlight-training"
DEFAULT_MODEL_PACKAGE_GROUP = "greenlight-models"


def home() -> Path:
    """The Greenlight home directory: GREENLIGHT_HOME, default ./.greenlight (not created here)."""
    return Path(os.environ.get("GREENLIGHT_HOME") or ".greenlight").resolve()
