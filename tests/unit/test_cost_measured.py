"""`--duration-ms measured` uses the serving p50 measured on the model size the user has, and says which."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from greenlight.cli import main
from greenlight.cost.loader import measured_p50
from greenlight.errors import DataError

SIZES = {  # as `make bench` records them under serving.models
    "default": {"title": "default model (diabetes, 442 × 10)", "trees": 100, "nodes": 38_078, "max_depth": 20,
                "greenlight_p50_us": 30.0},
    "50k": {"title": "50,000 × 10 CSV, default hyperparameters", "trees": 100, "nodes": 4_425_010, "max_depth": 32,
            "greenlight_p50_us": 180.0},
    "wide": {"title": "200,000 × 20 CSV, 500 trees, MaxDepth=12", "trees": 500, "nodes": 3_980_226, "max_depth": 12,
             "greenlight_p50_us": 210.0},
}


@pytest.fixture
def results(tmp_path) -> Path:
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"serving": {"models": SIZES}}))
    return path


def model_dir(tmp_path: Path, name: str, trees: int, nodes: int, depth: int) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "metadata.json").write_text(json.dumps({"forest": {"trees": trees, "nodes": nodes, "max_depth": depth}}))
    return directory


def test_without_a_model_the_default_models_figure_says_so_and_names_the_others(results):
    got = measured_p50(results)
    assert got.ms == pytest.approx(0.03)
    assert got.model.startswith("measured on default: default model (diabetes") and "the default model" in got.model
    assert "50k 0.18 ms" in got.model and "wide 0.21 ms" in got.model


def test_a_measured_size_by_name(results):
    assert measured_p50(results, "wide").ms == pytest.approx(0.21)
    assert measured_p50(results, "50k").model.startswith("measured on 50k: 50,000 × 10 CSV")


@pytest.mark.parametrize(("forest", "nearest"), [
    ((100, 5_000_000, 35), "50k"),  # fully grown trees on more rows
    ((400, 2_500_000, 11), "wide"),  # many shallow trees: as many nodes as 50k, but nearer wide
    ((50, 20_000, 15), "default"),
    ((100, 60_000_000, 45), "50k"),  # bigger than anything measured: the nearest, named as such
])
def test_a_model_directory_gets_the_nearest_measured_size(results, tmp_path, forest, nearest):
    got = measured_p50(results, str(model_dir(tmp_path, "m", *forest)))
    assert got.ms == pytest.approx(SIZES[nearest]["greenlight_p50_us"] / 1000)
    assert got.model.startswith(f"measured on {nearest}:")
    assert f"nearest yours: {forest[0]} trees, {forest[1]:,} nodes, depth {forest[2]}" in got.model
    # its metadata.json names the same model
    assert measured_p50(results, str(tmp_path / "m" / "metadata.json")) == got


def test_an_unknown_size_or_unreadable_model_is_a_data_error(results, tmp_path):
    with pytest.raises(DataError, match=r"huge is neither a measured model size \(default, 50k, wide\)"):
        measured_p50(results, "huge")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "metadata.json").write_text("{}")
    with pytest.raises(DataError, match="cannot read the forest's size"):
        measured_p50(results, str(tmp_path / "broken"))


def test_results_of_an_earlier_benchmark_serve_the_default_model_only(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"serving": {"greenlight_p50_us": 77.0}}))
    assert measured_p50(path).ms == pytest.approx(0.077) and measured_p50(path).model == "the default model"
    with pytest.raises(DataError, match="per model size"):
        measured_p50(path, "50k")


def test_the_cli_bills_the_size_asked_for_and_says_which(capsys, results, tmp_path):
    code = main(["cost", "--json", "--requests-per-day", "10000", "--duration-ms", "measured:wide",
                 "--bench-results", str(results)])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert all(r["duration_ms"] == pytest.approx(0.21) and r["duration_measured_on"].startswith("measured on wide:")
               for r in rows)
    mine = model_dir(tmp_path, "mine", 100, 4_000_000, 30)
    code = main(["cost", "--requests-per-day", "10000", "--duration-ms", f"measured:{mine}",
                 "--bench-results", str(results)])
    out = capsys.readouterr().out
    assert code == 0 and "0.18 ms measured" in out
    assert "Measured duration: the serving path's p50 measured on 50k: 50,000 × 10 CSV" in " ".join(out.split())
