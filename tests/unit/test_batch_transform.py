"""One unit of lines through a real model's own input_fn/predict_fn/output_fn (code/inference.py).

GIVEN a model trained by src/train.py, loaded the way the endpoint and the batch workers load it,
THEN every strategy gives scikit-learn's predictions bit for bit, the output encoding round-trips
float64 exactly, and refused lines are reported in line order with the model's reason.
"""

from __future__ import annotations

import numpy as np
import pytest

from deploy.batch.transform import ModelOutputError, is_client_error, transform_unit
from deploy.endpoint.loader import load_version
from tests.support.batch_models import sklearn_predict, trained_model, write_rows


@pytest.fixture(scope="module")
def model():
    model_dir = trained_model(12, 0)
    return model_dir, load_version("test/1", model_dir)


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("rows") / "rows.csv"
    values = write_rows(path, 400, seed=11)
    return path.read_bytes(), values


def run(model, data: bytes, **options):
    options = {"single_record": False, "join_input": False, "budget": 0, **options}
    return transform_unit(model[1].code, model[1].model, data, **options)


@pytest.mark.parametrize("single_record", [False, True])
@pytest.mark.parametrize("join_input", [False, True])
def test_predictions_equal_scikit_learn_bit_for_bit(model, rows, single_record, join_input):
    data, values = rows
    result = run(model, data, single_record=single_record, join_input=join_input)
    assert (result.records, result.bad) == (400, [])
    lines = result.output.decode().splitlines()
    assert len(lines) == 400
    expected = sklearn_predict(model[0], values)
    got = np.array([float(line.rsplit(",", 1)[-1]) for line in lines])
    assert np.array_equal(got, expected)  # exact: every bit
    if join_input:
        assert [line.rsplit(",", 1)[0] for line in lines] == data.decode().splitlines()


def test_output_fn_text_round_trips_float64_exactly(model):
    tricky = np.array([0.1 + 0.2, 1 / 3, 2.0 ** -1074, 1.7976931348623157e308, -0.0, 123456789.12345679,
                       np.nextafter(1.0, 2.0), 5e-324, 152.13348416289594])
    text, content_type = model[1].code.output_fn(tricky, "text/csv")
    assert content_type == "text/csv"
    parsed = np.array([float(v) for v in text.splitlines()])
    assert parsed.tobytes() == tricky.tobytes()


def test_crlf_lines_are_joined_without_the_carriage_return(model, rows):
    data = rows[0].replace(b"\n", b"\r\n")
    result = run(model, data, join_input=True)
    assert result.bad == [] and b"\r" not in result.output
    assert result.output.decode().splitlines()[0].startswith(rows[0].decode().splitlines()[0] + ",")


BAD = (b"age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n"       # line 0: a header
       b"0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1\n"
       b"\n"                                        # line 2: empty
       b"0.1,0.1,abc,0.1,0.1,0.1,0.1,0.1,0.1,0.1\n"  # line 3: not a number
       b"0.1,0.1,0.1\n"                             # line 4: three values
       b"0.2,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1\n")


@pytest.mark.parametrize("single_record", [False, True])
def test_refused_lines_are_reported_in_order_with_the_model_s_reason(model, single_record):
    result = run(model, BAD, single_record=single_record, budget=10)
    assert result.bad == [
        (0, "column 0: 'age' is not a number (send no header line)"),
        (2, "the line is empty"),
        (3, "column 2: 'abc' is not a number (send no header line)"),
        (4, "rows have 3 values; the model takes 10 (age, sex, bmi, bp, s1, s2, s3, s4, s5, s6)"),
    ]
    assert not result.exceeded and result.records == 6
    # Output line k answers input line k: a refused line leaves an empty prediction in its place.
    answers = result.output.split(b"\n")[:-1]
    assert len(answers) == 6 and [i for i, a in enumerate(answers) if a] == [1, 5]
    good = np.array([[0.1] * 10, [0.2] + [0.1] * 9])
    assert np.array_equal([float(answers[1]), float(answers[5])], sklearn_predict(model[0], good))


@pytest.mark.parametrize("single_record", [False, True])
def test_refused_lines_keep_their_place_with_the_input_joined(model, single_record):
    result = run(model, BAD.replace(b"\n", b"\r\n"), single_record=single_record, join_input=True, budget=10)
    lines = result.output.split(b"\n")[:-1]
    assert [line.rsplit(b",", 1)[0] for line in lines] == BAD.split(b"\n")[:-1]  # every input line, in order
    assert [i for i, line in enumerate(lines) if line.endswith(b",")] == [0, 2, 3, 4]  # empty predictions


@pytest.mark.parametrize("budget, last", [(0, 0), (1, 2), (2, 3)])
@pytest.mark.parametrize("single_record", [False, True])
def test_over_budget_stops_at_the_first_lines_beyond_it(model, single_record, budget, last):
    result = run(model, BAD, single_record=single_record, budget=budget)
    assert result.exceeded
    assert [offset for offset, _ in result.bad][:budget + 1][-1] == last


def test_a_short_first_row_is_blamed_on_itself_not_on_the_rows_after_it(model):
    data = b"0.1,0.1,0.1\n" + b"0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1,0.1\n" * 3
    result = run(model, data, budget=5)
    answers = result.output.split(b"\n")[:-1]
    assert [offset for offset, _ in result.bad] == [0] and len(answers) == 4
    assert answers[0] == b"" and all(answers[1:])


@pytest.mark.parametrize("blank", [b"\n", b"\r\n", b" \n", b"\t\n", b"  \r\n"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_blank_line_anywhere_in_a_large_unit_is_a_bad_row(model, rows, blank, where):
    # GIVEN a unit well over the vectorised parser's 16 KB with one blank line (newline, CR, space or
    # tab after the line break): the model's reader would skip it, so it must be caught before the fast path.
    data, _ = rows
    lines = data.split(b"\n")[:-1]
    at = {"first": 0, "middle": len(lines) // 2, "last": len(lines)}[where]
    unit = b"".join(line + b"\n" for line in lines[:at]) + blank + b"".join(line + b"\n" for line in lines[at:])
    result = run(model, unit, budget=1)
    assert result.bad == [(at, "the line is empty")] and not result.exceeded
    answers = result.output.split(b"\n")[:-1]
    assert len(answers) == len(lines) + 1 and answers[at] == b"" and all(a for i, a in enumerate(answers) if i != at)


class _Broken:
    """Serving code whose output_fn answers one line too few, or whose predict_fn has a bug."""

    def __init__(self, code, fault):
        self.code, self.fault = code, fault

    def input_fn(self, body, content_type):
        return self.code.input_fn(body, content_type)

    def predict_fn(self, data, model):
        if self.fault == "bug":
            raise KeyError("boom")
        return self.code.predict_fn(data, model)

    def output_fn(self, prediction, accept):
        text, kind = self.code.output_fn(prediction, accept)
        return (text.split("\n", 1)[1], kind) if self.fault == "short" else (text, kind)


def test_a_model_that_miscounts_or_crashes_fails_the_unit(model, rows):
    with pytest.raises(ModelOutputError, match="answered 399 lines for 400 records"):
        transform_unit(_Broken(model[1].code, "short"), model[1].model, rows[0], single_record=False,
                       join_input=False, budget=0)
    with pytest.raises(KeyError):
        transform_unit(_Broken(model[1].code, "bug"), model[1].model, rows[0], single_record=False,
                       join_input=False, budget=0)


def test_client_errors_are_4xx_payload_errors_or_plain_value_errors(model):
    payload_error = model[1].code.PayloadError("bad", "x", status_code=415)
    assert is_client_error(payload_error) and is_client_error(ValueError("old code"))
    assert not is_client_error(KeyError("bug")) and not is_client_error(type("E", (Exception,), {"status_code": 500})())
