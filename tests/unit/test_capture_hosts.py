"""Where local serving sends its capture records (greenlight.monitor.local), and that a serving command
turns capture on only once it serves."""

from __future__ import annotations

import os

from greenlight.cli import main
from greenlight.monitor.local import capture_dir, enable_capture


def test_enable_capture_points_at_the_groups_directory_unless_already_set(tmp_path):
    env: dict[str, str] = {}
    assert enable_capture(tmp_path, "g", env) == str(tmp_path / "capture" / "g") == env["GREENLIGHT_CAPTURE"]
    assert capture_dir(tmp_path, "g") == tmp_path / "capture" / "g"
    for already in ("off", "stdout", "/elsewhere"):
        assert enable_capture(tmp_path, "g", {"GREENLIGHT_CAPTURE": already}) == already
    assert enable_capture(tmp_path, "g", {"GREENLIGHT_CAPTURE": ""}) == str(tmp_path / "capture" / "g")


def test_a_serving_command_that_fails_its_checks_turns_nothing_on(capsys):
    # GIVEN capture off in this process (tests/conftest.py), WHEN `endpoint serve` refuses its --model
    assert main(["endpoint", "serve", "--port", "0", "--model", "/no/such/model"]) == 2
    # THEN it failed before any side effect: the process still captures nothing
    assert os.environ["GREENLIGHT_CAPTURE"] == ""
    assert "no model at /no/such/model" in capsys.readouterr().err
