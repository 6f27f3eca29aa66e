"""Shared fixtures. The CI=true skip policy is the plugin tests/support/ci_policy.py (pytest.ini)."""

from __future__ import annotations

import contextlib
import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch, tmp_path):
    """No test may reach AWS or read the developer's credentials or Greenlight home."""
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("GREENLIGHT_HOME", str(tmp_path / "greenlight-home"))


@pytest.fixture(autouse=True)
def _capture_left_as_found(monkeypatch):
    """A serving command or api.serve_* run in the test process turns capture on for the whole process
    (GREENLIGHT_CAPTURE, greenlight.monitor.local.enable_capture); "" (capture off, and unset for
    enable_capture) is restored after each test, so no later test or child process writes elsewhere."""
    monkeypatch.setenv("GREENLIGHT_CAPTURE", "")


@contextlib.contextmanager
def imported_src_modules(names: tuple[str, ...]) -> Iterator[types.SimpleNamespace]:
    """src/ modules imported by bare name, as the containers do; forgotten afterwards."""
    before = {name: sys.modules.get(name) for name in names}
    sys.path.insert(0, str(SRC))
    try:
        yield types.SimpleNamespace(**{name: importlib.import_module(name) for name in names})
    finally:
        sys.path.remove(str(SRC))
        for name, module in before.items():
            if module is None:
                sys.modules.pop(name, None)


@pytest.fixture(scope="session")
def models(tmp_path_factory) -> dict[str, Path]:
    """Two model versions trained, evaluated and packed by the real scripts (tests/support/models.py);
    'a_tar' and 'b_tar' are their model.tar.gz, 'a_smoke' and 'b_smoke' their smoke.json."""
    from tests.support.models import train_models

    return train_models(tmp_path_factory.mktemp("models"))

