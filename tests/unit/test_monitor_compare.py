"""greenlight/monitor: capture lines read back, the drift verdict per column, and which versions are compared."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from greenlight.errors import DataError, NotFoundError, ParameterError
from greenlight.monitor.baseline import Baseline, ColumnBaseline
from greenlight.monitor.compare import Thresholds, compare_column, compare_version
from greenlight.monitor.records import CaptureRecord, parse_duration, parse_record, parse_version_label
from greenlight.monitor.service import monitor

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
GROUP = "greenlight-models"


def numeric(name: str, edges=(1.0, 2.0, 3.0), counts=(100, 100, 100, 100), mean=2.0) -> ColumnBaseline:
    return ColumnBaseline(name, "numeric", sum(counts), 0.0, mean, 1.0, tuple(counts), edges=tuple(edges))


def baseline(sha: str = "sha-1") -> Baseline:
    sex = ColumnBaseline("sex", "categorical", 400, 0.0, 0.5, 0.5, (200, 200), values=(0.0, 1.0))
    return Baseline((numeric("age"), sex, numeric("bmi")), numeric("prediction", (100.0, 150.0, 200.0)), 400, sha)


def record(rows, predictions=None, *, at=NOW, version=f"{GROUP}/1", sha="sha-1", target="endpoint", status=200,
           features=("age", "sex", "bmi"), stage=None) -> CaptureRecord:
    rows = tuple(tuple(r) for r in rows)
    spread_out = [(50.0, 125.0, 175.0, 250.0)[i % 4] for i in range(len(rows))]  # one per baseline bin
    predictions = tuple(predictions if predictions is not None else spread_out)
    return CaptureRecord(at, target, stage, version, sha, status, len(rows), tuple(features), rows, predictions)


def spread(n: int, shift: float = 0.0) -> list[list[float]]:
    """n rows whose age and bmi cover the four baseline bins evenly (plus shift), sex alternating."""
    return [[0.5 + (i % 4) + shift, float(i % 2), 0.5 + (i % 4) + shift] for i in range(n)]


class Baselines:
    def __init__(self, found: dict[int, Baseline]):
        self.found, self.asked = found, []

    def baseline(self, version):
        self.asked.append(version)
        if version not in self.found:
            raise NotFoundError(f"model version {version} of {GROUP} has no drift baseline")
        return self.found[version]

    def version_of(self, sha):
        return next((v for v, b in sorted(self.found.items(), reverse=True) if b.model_sha256 == sha), None)


# -- the verdict -------------------------------------------------------------------------------------------

def test_a_shifted_column_drifts_and_an_unchanged_one_does_not():
    moved = record([[0.5, float(i % 2), 3.5] for i in range(400)])  # age to its lowest bin, bmi to its highest
    result = compare_version(1, baseline(), [record(spread(400)), moved], Thresholds())
    by_name = {c.name: c for c in result.features}
    assert by_name["bmi"].drift and by_name["bmi"].test == "ks" and by_name["bmi"].p_value < 1e-6
    assert not by_name["sex"].drift and by_name["sex"].test == "chi-square"
    assert result.drift and [c.name for c in result.drifting] == ["age", "bmi"]


def test_drift_needs_both_psi_and_the_test_and_enough_rows():
    column = numeric("x")
    shifted = [3.5] * 60 + [0.5] * 60
    assert compare_column(column, shifted, Thresholds()).drift
    assert not compare_column(column, shifted, Thresholds(psi=5.0)).drift  # PSI below its threshold
    assert not compare_column(column, shifted, Thresholds(p_value=1e-300)).drift  # the test does not reject
    few = compare_column(column, shifted, Thresholds(min_rows=121))
    assert not few.drift and "fewer than the 121" in few.reason


def test_the_json_shape_is_exactly_the_documented_one():
    doc = compare_version(7, baseline(), [record(spread(200))], Thresholds()).to_json()
    assert list(doc) == ["version", "rows", "features", "prediction"]
    assert doc["version"] == 7 and doc["rows"] == 200
    assert [list(f) for f in doc["features"]] == [["name", "psi", "drift"]] * 3
    assert [f["name"] for f in doc["features"]] == ["age", "sex", "bmi"]
    assert {"psi", "drift"} <= set(doc["prediction"])
    json.dumps(doc)  # plain JSON


def test_features_are_matched_by_name_and_refused_requests_are_left_out():
    reordered = record([[r[2], r[0], r[1]] for r in spread(200)], features=("bmi", "age", "sex"))
    refused = record([[9.0, 9.0, 9.0]] * 300, status=400)
    result = compare_version(1, baseline(), [reordered, refused], Thresholds())
    assert not result.drift and result.records == 2 and result.rows == 200
    partial = compare_version(1, baseline(), [record([[1.0, 0.0]], features=("age", "sex"))], Thresholds())
    assert partial.notes == ("some records lack feature(s) bmi of the baseline",)


def test_missing_values_are_counted_apart():
    column = compare_column(numeric("x"), [None, float("nan"), 0.5, 2.5], Thresholds())
    assert (column.rows, column.missing) == (2, 2)


# -- which versions --------------------------------------------------------------------------------------

def run(records, found=None, **kw):
    kw.setdefault("since", NOW - timedelta(hours=1))
    kw.setdefault("until", NOW + timedelta(hours=1))
    return monitor(GROUP, records, found or Baselines({1: baseline("sha-1"), 2: baseline("sha-2")}), Thresholds(),
                   **kw)


def test_the_newest_version_in_the_window_is_compared_unless_all_are_asked_for():
    records = [record(spread(200)), record(spread(200, 3.0), version=f"{GROUP}/2", sha="sha-2")]
    result = run(records)
    assert [v.version for v in result.reported] == [2] and result.other_versions == (1,)
    assert result.drift and result.to_json()["version"] == 2
    both = run(records, all_versions=True)
    assert [d["version"] for d in both.to_json(all_versions=True)] == [2, 1]
    assert both.drift and not both.reported[1].drift


def test_a_record_without_a_version_label_is_tied_to_the_version_whose_baseline_names_its_model():
    result = run([record(spread(200), version=None, sha="sha-2"), record(spread(10), version=None, sha="other")])
    assert [v.version for v in result.reported] == [2] and result.unresolved == 1
    assert run([record(spread(200), version="another-group/5", sha="sha-1")]).reported[0].version == 1


def test_the_window_the_targets_and_the_stage_filter_records():
    old = record(spread(200, 3.0), at=NOW - timedelta(hours=3))
    assert not run([old, record(spread(200))]).drift  # the drifted traffic is outside the window
    lam = record(spread(200, 3.0), target="lambda")
    assert not run([lam, record(spread(200))], targets=["endpoint"]).drift
    staged = record(spread(200, 3.0), stage="prod")
    assert not run([staged, record(spread(200), stage="dev")], stage="dev").drift


def test_clear_errors_when_there_is_nothing_to_compare():
    with pytest.raises(NotFoundError, match="no capture records of greenlight-models since .* in /somewhere"):
        run([record(spread(5), at=NOW - timedelta(days=2))], where=" in /somewhere")
    with pytest.raises(NotFoundError, match="no capture records of lambda greenlight-models"):
        run([record(spread(5))], targets=["lambda"])
    with pytest.raises(NotFoundError, match="come from models no version's drift baseline names"):
        run([record(spread(5), version=None, sha="unknown")])
    with pytest.raises(NotFoundError, match="model version 3 of greenlight-models has no drift baseline"):
        run([record(spread(5), version=f"{GROUP}/3")])


# -- capture lines and durations ---------------------------------------------------------------------------

LINE = ('{"greenlight_capture":1,"time":"2026-12-04T12:00:00.000001Z","target":"batch","stage":null,'
        '"model_version":"greenlight-models/4","model_sha256":"abc","inference_id":"x","status":200,"error":null,'
        '"rows":1,"features":["a","b"],"inputs":[[1.5,null]],"predictions":[3.0],"sample_rate":1.0,"dropped":0}')


def test_a_capture_line_is_read_bare_or_inside_a_json_log_envelope():
    bare = parse_record(LINE)
    assert bare.time == datetime(2026, 12, 4, 12, 0, 0, 1, tzinfo=UTC) and bare.target == "batch"
    assert bare.inputs == ((1.5, None),) and bare.predictions == (3.0,) and bare.model_version.endswith("/4")
    wrapped = json.dumps({"timestamp": "2026-12-04T12:00:01Z", "level": "INFO", "message": LINE})
    assert parse_record(wrapped) == bare
    assert parse_record("2026-12-04T12:00:00Z " + LINE) == bare  # a prefix before the JSON


@pytest.mark.parametrize("line", ["", "START RequestId: 1 Version: $LATEST", '{"greenlight_capture": 2}',
                                  '{"greenlight_capture":1,"time":"yesterday"}', LINE[:-20]])
def test_other_lines_are_not_records(line):
    assert parse_record(line) is None


def test_the_reader_fills_in_the_target_a_line_lacks():
    line = LINE.replace('"target":"batch",', "")
    assert parse_record(line, "lambda").target == "lambda"


def test_version_labels_name_a_version_of_the_group_only():
    assert parse_version_label("greenlight-models/12", GROUP) == 12
    assert parse_version_label("Greenlight-Models/3", GROUP) == 3
    assert parse_version_label("other/3", GROUP) is None and parse_version_label(None, GROUP) is None


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("7d", 604800),
                                           ("1h30m", 5400), ("1.5h", 5400), ("1w", 604800), (" 5 m ", 300)])
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "yesterday", "10", "5 minutes", "-5m", "0s", "2h later"])
def test_bad_durations_name_the_flag_and_the_forms(text):
    with pytest.raises(ParameterError, match="bad --since .* give a duration such as|must be longer than zero"):
        parse_duration(text)


def test_a_baseline_that_is_not_a_dict_is_refused():
    with pytest.raises(DataError, match="not a greenlight-baseline/1 baseline"):
        Baseline.parse([1, 2], "v1")
